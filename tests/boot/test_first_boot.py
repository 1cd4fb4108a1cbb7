"""First boots: firmware with our SCMI server, Xen (upstream single-agent and the
multi-agent SUT), dom0 probing SCMI; the server's trace attributes every message."""
import re

import pytest

from harness.scmi import trace
from harness.system import BootSpec

pytestmark = [pytest.mark.boot, pytest.mark.timeout(600)]

SCMI_PROBED = r"SCMI Protocol v2\.0 'XenHarness:{board}'"


def dom0_probed_scmi(system, board):
    out, _ = system.shell("dmesg | grep 'arm-scmi'")
    assert re.search(SCMI_PROBED.format(board=board.name), out), f"Linux did not probe SCMI:\n{out}"
    return out


@pytest.mark.any_sut
def test_native_linux_probes_the_server(boot, harness_builder):
    """Baseline without Xen: Linux as BL33 talks to the server on dom0's agent."""
    board = harness_builder.board
    s = boot(BootSpec("native", xen=None, profile="single"))
    dom0_probed_scmi(s, board)
    msgs = trace.messages(s.trace.text)
    dom0 = board.agent("dom0").id
    assert msgs, "no SCMI message reached the server"
    assert {m.agent for m in msgs} == {dom0}
    assert trace.messages(msgs, message="PROTOCOL_VERSION", status="SUCCESS")


def test_upstream_xen_forwards_dom0s_smc(boot, harness_builder, xen_build):
    """Single-agent Xen (CONFIG_SCMI_SMC, SUTs such as upstream-4.20): dom0's SMCs reach
    the server on dom0's agent."""
    prof = harness_builder.sut.profile
    if prof.multiagent or not prof.can("dom0-scmi"):
        pytest.skip(f"SUT {harness_builder.sut.name} ({prof.name}) is not a single-agent dom0 forwarder "
                    f"(the upstream-4.20 SUT is)")
    xen_build("upstream", needs=("CONFIG_SCMI_SMC",))
    board = harness_builder.board
    dom0 = board.agent("dom0")
    s = boot(BootSpec("upstream-single", xen="upstream", profile="single"))
    s.console.expect(rf"\(XEN\) Using SCMI with SMC ID: {dom0.func_id:#x}", since=0, timeout=1)
    dom0_probed_scmi(s, board)
    msgs = trace.messages(s.trace.text)
    assert msgs and {m.agent for m in msgs} == {dom0.id}, "every message must come from dom0's agent"
    # the Xen console: CTRL-a x3 to Xen, a debug key, and back to dom0's shell
    dump = s.xen_debug_key("q", expect=r"General information for domain 0")
    assert "'q' pressed -> dumping domain info" in dump
    assert s.shell("echo back in dom0")[0] == "back in dom0"


@pytest.mark.multiagent
@pytest.mark.parametrize("cells", [3, 2], ids=["agent-ids-in-dt", "agent-ids-discovered"])
def test_multiagent_management_probe_and_dom0_agent(boot, harness_builder, xen_build, needs, cells):
    """The SUT: Xen's management agent probes the server, dom0 uses its own agent (v5:
    dom0_scmi_agent_id=, v10: xen,dom0-sci-agent-id), and every message is attributed
    to the right agent."""
    needs("multiagent", "dom0-scmi")
    sut = harness_builder.sut
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    board = harness_builder.board
    mgmt, dom0 = board.management, board.agent("dom0")
    s = boot(BootSpec(f"{sut.name}-cells{cells}", xen=sut.variant, profile=sut.profile.name, secondary_cells=cells))
    dom0_probed_scmi(s, board)
    log = trace.parse_log(s.trace.text)
    msgs = trace.messages(log)

    # Xen asks "who am I" on its management channel, then the agent count
    first = msgs[0]
    assert (first.agent, first.name, first.params.get("query")) == (mgmt.id, "DISCOVER_AGENT", 0xFFFFFFFF)
    attrs = trace.messages(msgs, agent=mgmt.id, message="PROTOCOL_ATTRIBUTES")
    assert attrs and attrs[0].results["agents"] == len(board.agents)
    s.console.expect(rf"scmi: Got agent count {len(board.agents)}", since=0, timeout=1)
    for a in board.agents:
        if a.role != "management":
            s.console.expect(rf"scmi: Agent {a.id} SMC {a.func_id:X} addr {a.shmem:x}", since=0, timeout=1)

    # with 2 cells Xen discovers each secondary agent's id on that agent's own channel
    discovered = {m.agent for m in trace.messages(msgs, message="DISCOVER_AGENT")
                  if m.params.get("query") == 0xFFFFFFFF and m.agent != mgmt.id}
    expected = {a.id for a in board.agents if a.role != "management"} if cells == 2 else set()
    assert discovered == expected

    # dom0's Linux used dom0's agent, and nobody else's; only Xen used the management agent
    linux = [m for m in msgs if m.name == "PROTOCOL_VERSION"]
    assert linux and {m.agent for m in linux} == {dom0.id}
    senders = {m.agent for m in msgs}
    assert senders <= {dom0.id, mgmt.id} | expected, f"unexpected agents in the trace: {senders}"
    assert not trace.messages(msgs, agent=dom0.id, message="SET_DEVICE_PERMISSIONS")

    # every device with access-controllers stays with dom0, so Xen grants it to dom0's
    # agent; all but the UART Xen keeps for its own console (/chosen/stdout-path)
    import fdt
    host = fdt.parse_dtb((s.machine.workdir / "host.dtb").read_bytes())
    xen_console = host.get_property("stdout-path", "/chosen").value.split(":")[0]
    grants = trace.messages(msgs, agent=mgmt.id, message="SET_DEVICE_PERMISSIONS", status="SUCCESS")
    assert {(m.params["target"], m.params["device"], m.params["flags"]) for m in grants} == \
        {(dom0.id, d.id, 1) for d in board.devices if d.node != xen_console}
