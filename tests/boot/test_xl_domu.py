"""An xl-created domU with its own SCMI agent: its Linux probes SCMI through that
agent only, and `xl destroy` makes Xen's management agent send
BASE_RESET_AGENT_CONFIGURATION for it, which returns its resources to their defaults."""
import dataclasses
import time

import pytest

from harness.dt import guest_partial_dt
from harness.scmi import trace
from harness.system import BootSpec
from harness.xl import GUEST_DIR, xl_config

pytestmark = [pytest.mark.boot, pytest.mark.multiagent, pytest.mark.timeout(600)]

RESET_FLAGS_V5 = 0x0     # the v5 series resets without revoking permissions (v9+ sends 1)


def start_domu(boot, board, name="domu", dt_agent=None, probe=True):
    """Boot the SUT, create an xl domU on the first guest agent (its partial DT describing
    dt_agent's channel, normally the same agent); return (system, guest, trace mark)."""
    guest = board.guests[0]
    owned = tuple(d.name for d in board.devices if d.name in guest.devices)
    s = boot(BootSpec(f"xl-{name}", xen="multiagent", profile="v5", passthrough=owned))
    s.put_file(f"{GUEST_DIR}/{name}.dtb", guest_partial_dt(board, dt_agent or guest))
    s.put_file(f"{GUEST_DIR}/{name}.cfg", xl_config(name, guest).encode())
    mark = s.trace.mark()
    s.shell(f"xl create {GUEST_DIR}/{name}.cfg", timeout=60)
    if probe:
        s.trace.expect(rf"SCMI: agent={guest.id} proto=0x10 msg=0x0 PROTOCOL_VERSION -> SUCCESS", timeout=90)
    return s, guest, mark


def guest_log(s, name, until, timeout=90):
    """The domU's console log (kept by xenconsoled in dom0) once it shows `until`."""
    deadline = time.monotonic() + timeout
    while True:
        log, _ = s.shell(f"cat /var/log/xen/console/guest-{name}.log", check=False)
        if until in log or time.monotonic() > deadline:
            assert until in log, f"the domU never printed {until!r}; its console:\n{log[-3000:]}"
            return log
        time.sleep(1)


def expect_reset(s, board, guest, mark):
    """Xen's management agent resets the guest's agent (after trace position mark);
    returns the state lines that restored its resources."""
    reset = s.trace.expect(rf"SCMI: agent={board.management.id} proto=0x10 msg=0xb RESET_AGENT_CONFIGURATION "
                           rf"target={guest.id} flags=(0x[0-9a-f]+) -> SUCCESS", timeout=30)
    assert int(reset.group(1), 16) == RESET_FLAGS_V5
    return trace.states(s.trace.text_since(mark), by=board.management.id, reset_of=guest.id)


def test_xl_domu_uses_its_agent_and_is_reset_on_destroy(boot, harness_builder, xen_build):
    xen_build("multiagent", needs=("CONFIG_SCMI_SMC_MA",))
    board = harness_builder.board
    guest = board.guests[0]
    owned = [d for d in board.devices if d.name in guest.devices]
    assert owned, f"{board.path}: the first guest agent needs a device granted at boot for this test"
    clocks = {c for d in owned for c in d.clocks}
    pds = {p for d in owned for p in d.power_domains}

    # the domU's Linux probes SCMI on its own agent, and turns off what it does not use
    s, guest, created = start_domu(boot, board)
    for clk in clocks:
        s.trace.expect(rf"SCMI-STATE: clock={clk} enabled=0 by agent={guest.id}", timeout=60)
    log, _ = s.shell("cat /var/log/xen/console/guest-domu.log")
    assert "SCMI Protocol v2.0" in log, log[-2000:]
    assert {m.agent for m in trace.messages(s.trace.text_since(created))} == {guest.id}, \
        "only the domU's agent may talk while it boots"

    # destroy: Xen resets the domU's agent, the server returns its resources to their defaults
    mark = s.trace.mark()
    s.shell("xl destroy domu", timeout=60)
    restored = expect_reset(s, board, guest, mark)
    defaults = {c.id: c.enabled for c in board.clocks}
    for clk in clocks:
        assert any(st.fields.get("clock") == clk and st.fields.get("enabled") == int(defaults[clk])
                   for st in restored), f"clock {clk} not restored: {restored}"
    pd_defaults = {p.id: p.on for p in board.power_domains}
    for pd in pds:
        if pd_defaults[pd]:
            assert any(st.fields.get("power") == pd and st.fields.get("on") == 1 for st in restored), \
                f"power domain {pd} not restored: {restored}"


def test_xl_domu_reboot_resets_its_agent_and_it_probes_again(boot, harness_builder, xen_build):
    """`xl reboot`: the guest reboots itself (on_reboot = restart), Xen resets its agent
    while the old domain dies, and the new domain probes SCMI again on the same agent."""
    xen_build("multiagent", needs=("CONFIG_SCMI_SMC_MA",))
    board = harness_builder.board
    s, guest, _ = start_domu(boot, board)
    s.trace.expect(rf"SCMI-STATE: clock=\d+ enabled=0 by agent={guest.id}", timeout=60)   # Linux is up
    first_id = s.shell("xl domid domu")[0]
    mark = s.trace.mark()
    s.shell("xl reboot domu", timeout=30)
    expect_reset(s, board, guest, mark)
    s.trace.expect(rf"SCMI: agent={guest.id} proto=0x10 msg=0x0 PROTOCOL_VERSION -> SUCCESS", timeout=90)
    second_id = s.shell("xl domid domu")[0]
    assert second_id != first_id, "xl must have restarted the domain"


def test_domu_ringing_another_agents_function_id_is_not_forwarded(boot, harness_builder, xen_build):
    """Isolation (and proof that the probe assertions can fail): a domU configured for
    agent 2 whose DT rings agent 3's function id gets no SCMI at all, and the server
    sees nothing from either agent."""
    xen_build("multiagent", needs=("CONFIG_SCMI_SMC_MA",))
    board = harness_builder.board
    other = board.guests[1]
    wrong = dataclasses.replace(board.guests[0], func_id=other.func_id)
    s, guest, mark = start_domu(boot, board, name="wrongid", dt_agent=wrong, probe=False)
    log = guest_log(s, "wrongid", "HARNESS: domU ready")
    assert "SCMI Protocol v2.0" not in log, "the domU must not reach the server"
    assert "unable to communicate with SCMI" in log, "Xen must refuse the SMC (SMCCC not supported)"
    seen = {m.agent for m in trace.messages(s.trace.text_since(mark))}
    assert not seen & {guest.id, other.id}, f"the server heard agents {seen} from the domU"
