"""The scenarios of scenarios/*.toml, one test family each: every scenario of a family
boots for real and is checked against what its data and the board file say.

  forwarding   each guest probes SCMI through its own agent; nobody else is heard
  permissions  passed-through devices are granted to the guest's agent and usable;
               devices it merely names stay DENIED; dom0 keeps its own
  reset        destroying a guest resets its agent; its resources return to defaults
  isolation    a guest ringing an id it was not given gets nothing forwarded
  bad-config   Xen refuses a broken SCMI config with the exact line, and dom0 still runs

and, on scenarios with xl guests, xl's own behaviour: `xl reboot` resets the agent
and the new domain probes again; bad agent ids are refused with the exact message.

The tests of one scenario share its boot (shared_boot): the read-only families run
first, the destructive ones (reset: destroy) last, in this file's order.
"""
import dataclasses
import re
import shlex
import time

import pytest

from harness.checks import checks
from harness.machine.console import ConsoleFailure
from harness.errors import HarnessError
from harness.plan.scenario import load_scenario
from harness.images.scmi import trace
from harness.plan.xl import GUEST_DIR, xl_config

pytestmark = [pytest.mark.boot, pytest.mark.multiagent, pytest.mark.timeout(600)]


def has_xl_guest(sc) -> bool:
    """An xl guest with its own agent, on a multi-agent SUT (agent ids, resets)."""
    return "multiagent" in sc.needs and any(checks.rings_own_agent(g) for g in sc.spec.xl)


def alive(s, g) -> bool:
    """g's domain exists (a dom0less guest by its boot-time domid, an xl guest by name)."""
    if g.name in [d.name for d in s.spec.dom0less]:
        return s.shell(f"xl list {s.domid(g.name)}", check=False)[1] == 0
    return s.shell(f"xl domid {shlex.quote(g.name)}", check=False)[1] == 0


def has_foreign_linux_guest(sc) -> bool:
    """A Linux guest ringing an id it was not given."""
    return any(g.image == "linux" and not checks.rings_own_agent(g) for g in sc.guests())


@pytest.fixture(scope="module")
def name(request):
    """The scenario's name; module-scoped so pytest runs each scenario's tests together."""
    return request.param


def start(boot, harness_builder, xen_build, name, record_property=None, shared=True):
    """Boot scenario `name` on the builder's SUT (skipped, saying why, when the SUT cannot
    do what it needs) and create its xl guests (once per boot: boot is shared_boot when
    shared, else the per-test boot); returns (scenario, system, trace mark taken before
    each guest was created). The system's spec is the scenario's for that SUT."""
    sc = load_scenario(name, harness_builder.board)
    sut = harness_builder.sut
    if sc.unmet(sut):
        pytest.skip(sc.unmet(sut))
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    sc = dataclasses.replace(sc, spec=sc.spec_for(sut))

    def create_guests(s):
        for g in sc.spec.xl:
            s.xl_create(g)
    if shared:
        s = boot(sc.spec, create_guests)
    else:
        s = boot(sc.spec)
        create_guests(s)
    if record_property:
        from harness.plan.scenario import shared_pages
        for i, note in enumerate(shared_pages(sc, harness_builder.board)):
            record_property(f"shared_page_{i}", note)
        for stage, secs in {"prepare": s.prepare_seconds, **s.timings()}.items():
            record_property(f"time_{sc.spec.name}_{stage}", secs)
    return sc, s, s.marks


@pytest.mark.scenarios("forwarding")
def test_forwarding(shared_boot, harness_builder, xen_build, record_property, known_broken, name):
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    board = harness_builder.board
    for g in sc.guests():
        if g.image == "linux" and checks.rings_own_agent(g):
            with known_broken("guest-scmi"):
                checks.guest_probed_scmi(s, g)
    dom0 = board.agent("dom0")
    if dom0 is not None and not sc.spec.dom0_scmi:
        # dom0less guests print on the same UART ("(XEN) DOMn: ..."): only dom0's own lines count
        probed = [line for line in s.shell("dmesg | grep 'SCMI Protocol'", check=False)[0].splitlines()
                  if "SCMI Protocol" in line and "(XEN)" not in line]
        assert not probed, f"a thin dom0 must not probe SCMI: {probed}"
        nodes, _ = s.shell("find /proc/device-tree -name compatible | xargs grep -l 'arm,scmi' 2>/dev/null",
                           check=False)
        assert not nodes.strip(), f"a thin dom0's DT must have no SCMI node or shmem:\n{nodes}"
        if not any(g.agent == dom0.name for g in sc.guests()):    # (single-agent passthrough: a domU's now)
            assert not trace.messages(s.trace.text, agent=dom0.id), "a thin dom0 must not talk SCMI"
    checks.only_expected_agents(s, sc.spec)
    known_broken.conclude()


@pytest.mark.scenarios("forwarding", lambda sc: bool(sc.spec.xl))
def test_xl_console_reaches_the_domu(shared_boot, harness_builder, xen_build, name):
    """`xl console NAME` in dom0 attaches to the domU's console (xenconsole takes a lock
    in /var/lock: a dom0 without it prints "Could not open /var/lock/xenconsole.N")."""
    sc, s, _ = start(shared_boot, harness_builder, xen_build, name)
    g = sc.spec.xl[0]
    out, _ = s.shell(f"timeout 2 xl console {shlex.quote(g.name)} </dev/null 2>&1", check=False, timeout=30)
    assert "Could not open" not in out and "domU" in out, f"xl console {g.name} printed:\n{out}"


@pytest.mark.scenarios("forwarding", lambda sc: "single-passthrough" in sc.needs and sc.spec.xl)
def test_single_passthrough_refuses_a_second_domain(shared_boot, harness_builder, xen_build, record_property,
                                                   known_broken, name):
    """scmi-smc-passthrough gives SCMI to one domain only: while the first holds it, a
    second domU asking for it (arm_sci = "type=scmi_smc") is refused by Xen (-EEXIST),
    nothing is left behind, and the first goes on."""
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    holder = sc.spec.xl[0]
    with known_broken("guest-scmi"):
        checks.guest_probed_scmi(s, holder)
    agent = checks.agent_of(harness_builder.board, holder)
    cfg = f"{GUEST_DIR}/second.cfg"
    s.put_file(cfg, xl_config("second", agent, profile=harness_builder.sut.profile,
                              device_tree=f"{GUEST_DIR}/{holder.name}.dtb").encode())
    mark = s.trace.mark()
    out, rc = s.shell(f"xl create {shlex.quote(cfg)} 2>&1", check=False, timeout=60)
    assert rc != 0, f"a second SCMI domain must be refused:\n{out}"
    assert SECOND_DOMAIN_REFUSAL in out, out
    record_property("refusal_second_domain", out.strip().splitlines()[-1][:200])
    assert s.shell("xl domid second", check=False)[1] != 0, "a domain was left behind"
    assert not trace.messages(s.trace.text_since(mark), agent=agent.id, message="PROTOCOL_VERSION")
    assert s.shell(f"xl domid {shlex.quote(holder.name)}")[1] == 0
    known_broken.conclude()


SECOND_DOMAIN_REFUSAL = "libxl__domain_make: domain creation fail: File exists"   # Xen's -EEXIST


@pytest.mark.scenarios("permissions")
def test_permissions(shared_boot, harness_builder, xen_build, record_property, name):
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    board = harness_builder.board
    for g in sc.guests():
        agent = checks.agent_of(board, g)
        for dev in g.passthrough:
            checks.device_granted(s, g, dev)
            checks.device_power_used(s, g, dev)
        for dev in g.uses:
            if dev not in g.passthrough and dev not in agent.devices:
                record_property(f"denied_{g.name}_{dev}", checks.device_power_denied(s, g, dev))
    # dom0 keeps what no guest took (Xen grants dom0 every device left in its DT)
    dom0 = board.agent("dom0")
    taken = {d for g in sc.guests() for d in g.passthrough}
    if sc.spec.dom0_scmi and dom0 is not None:
        grants = {m.params["device"] for m in trace.messages(s.trace.text, agent=board.management.id,
                                                               message="SET_DEVICE_PERMISSIONS", status="SUCCESS")
                  if m.params.get("target") == dom0.id}
        assert not grants & {board.device(d).id for d in taken}, "a passed-through device was granted to dom0"


@pytest.mark.scenarios("isolation")
def test_isolation(shared_boot, harness_builder, xen_build, record_property, name):
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    board = harness_builder.board
    for g in sc.guests():
        if g.image == "scmi-probe":
            if checks.rings_own_agent(g):
                checks.probe_denied_privileged(s, g)
            else:
                checks.probe_not_forwarded(s, g, marks[g.name])
            continue
        if checks.rings_own_agent(g):
            continue
        rung = board.agent_named(g.dt_agent)
        log = s.wait_guest(g.name, checks.READY)
        assert checks.SCMI_PROBED not in log, f"{g.name} must not reach the server"
        assert "unable to communicate with SCMI" in log, f"{g.name}: Xen must refuse the SMC (SMCCC not supported)"
        heard = {m.agent for m in trace.messages(s.trace.text_since(marks[g.name]))}
        given = {checks.agent_of(board, g).id} if g.agent else set()
        assert not heard & ({rung.id} | given), f"the server heard agents {heard} from {g.name}"


def bad_agent_ids(profile, board, busy: int) -> dict[str, tuple[int, str]]:
    """case -> (the id the xl config gives, the refusal xl or Xen prints), from the profile:
    ids outside its range (xl's parser), an id no channel exists for (-ENOENT) and one a
    running guest holds (-EEXIST)."""
    free = next(i for i in profile.agent_ids if i not in {a.id for a in board.agents})
    cases = {f"agent-id-{i}-out-of-range": (i, profile.xl_bad_agent_id.format(id=i))
             for i in profile.bad_agent_ids()}
    cases["agent-id-without-channel"] = (free, profile.channel_refusal.format(id=free, err=-2))
    cases["agent-id-in-use"] = (busy, profile.channel_refusal.format(id=busy, err=-17))
    return cases


@pytest.mark.scenarios("forwarding", has_xl_guest)
def test_xl_refuses_bad_agent_ids(shared_boot, harness_builder, xen_build, record_property, name):
    """While a guest holds its agent, each bad id is refused exactly (xl's parser message
    or Xen's log line), no domain is left behind, and the guest and dom0 go on."""
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    prof = harness_builder.sut.profile
    holder = next(g for g in sc.spec.xl if checks.rings_own_agent(g))
    checks.guest_probed_scmi(s, holder)
    busy = checks.agent_of(harness_builder.board, holder).id
    for case, (agent_id, refusal) in bad_agent_ids(prof, harness_builder.board, busy).items():
        cfg = f"{GUEST_DIR}/{case}.cfg"
        bad = dataclasses.replace(checks.agent_of(harness_builder.board, holder), id=agent_id)
        s.put_file(cfg, xl_config(case, bad, profile=prof, device_tree=f"{GUEST_DIR}/{holder.name}.dtb").encode())
        mark = s.console.mark()
        out, rc = s.shell(f"xl create {shlex.quote(cfg)} 2>&1", check=False, timeout=60)
        assert rc != 0, f"{case}: xl create must fail:\n{out}"
        s.console.expect(re.escape(refusal), since=mark, timeout=5)
        assert s.shell(f"xl domid {shlex.quote(case)}", check=False)[1] != 0, f"{case}: a domain was left behind"
        record_property(f"refusal_{case}", refusal)
    assert s.shell(f"xl domid {shlex.quote(holder.name)}")[1] == 0
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"


@pytest.mark.scenarios("forwarding", has_xl_guest)
def test_xl_single_agent_type_is_refused_by_a_multiagent_xen(shared_boot, harness_builder, xen_build, record_property,
                                                             name):
    """arm_sci = "type=scmi_smc" (the single-agent type) given to a multi-agent Xen: libxl
    passes it to the createdomain domctl, the driver's sanitise_config refuses it (-EINVAL),
    xl create fails, no domain is left, nothing reaches the firmware, and the guest that holds
    its agent goes on. (The one error path of the driver's domain creation a user can reach
    with a wrong xl.cfg.)"""
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    holder = next(g for g in sc.spec.xl if checks.rings_own_agent(g))
    free = next(a for a in harness_builder.board.guests if a.name != holder.agent)
    cfg = f"{GUEST_DIR}/single-type.cfg"
    s.put_file(cfg, xl_config("single-type", free, profile="scmi-smc-passthrough",
                              device_tree=f"{GUEST_DIR}/{holder.name}.dtb").encode())
    mark = s.trace.mark()
    out, rc = s.shell(f"xl create {shlex.quote(cfg)} 2>&1", check=False, timeout=60)
    record_property("single_type_refusal", f"exit {rc}: {out.strip().splitlines()[-1] if out.strip() else ''}")
    assert rc != 0, f"a multi-agent Xen took arm_sci = \"type=scmi_smc\":\n{out}"
    assert "libxl__domain_make: domain creation fail" in out, out
    assert s.shell("xl domid single-type", check=False)[1] != 0, "a domain was left behind"
    assert not trace.messages(s.trace.text_since(mark), agent=free.id), "nothing may reach the firmware"
    assert s.shell(f"xl domid {shlex.quote(holder.name)}")[1] == 0
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"


@pytest.mark.scenarios("forwarding", has_xl_guest)
def test_xl_dtdev_is_refused_without_an_iommu(shared_boot, harness_builder, xen_build, recorded, record_property,
                                              name):
    """Passing an access-controlled device to an xl guest (dtdev) needs an IOMMU in libxl;
    QEMU virt here has none, so xl refuses before Xen's SCI code is reached: xl's error line
    and exit status are the SUT's record (records/<name>.toml [xl-dtdev.<board>]; v5 and v10
    alike), nothing reaches the firmware, no domain is left and dom0 goes on. The
    hypervisor's own assign path is test_assign_domctl.py's (through libxenctrl). This test
    turns red the day libxl lets dtdev through without an IOMMU."""
    prof = harness_builder.sut.profile
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    board = harness_builder.board
    holder = next(g for g in sc.spec.xl if checks.rings_own_agent(g))
    device = next(d for d in board.devices if d.name not in checks.agent_of(board, holder).devices)
    free = next(a for a in board.guests if a.name != holder.agent)
    cfg = f"{GUEST_DIR}/dtdev.cfg"
    s.put_file(cfg, xl_config("dtdev", free, profile=prof, dtdev=[device.node],
                              device_tree=f"{GUEST_DIR}/{holder.name}.dtb").encode())
    mark = s.trace.mark()
    out, rc = s.shell(f"xl create {shlex.quote(cfg)} 2>&1", check=False, timeout=60)
    errors = [line.strip() for line in out.splitlines() if line.startswith(("libxl: error", "xl: error"))]
    record_property("xl_dtdev_refusal", f"exit {rc}: {out.strip().splitlines()[-1] if out.strip() else ''}")
    assert rc != 0, f"{prof.name}: xl create with dtdev {device.node} worked without an IOMMU:\n{out}"
    assert not trace.messages(s.trace.text_since(mark), message="SET_DEVICE_PERMISSIONS")
    assert s.shell("xl domid dtdev", check=False)[1] != 0, "a domain was left behind"
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"
    recorded("xl-dtdev", board.name, {"status": rc, "xl_errors": errors})


@pytest.mark.scenarios("bad-config")
def test_bad_config_is_refused(shared_boot, harness_builder, xen_build, recorded, record_property, name):
    """Xen refuses the broken configuration and dom0 runs. The scenario's own lines
    ([expect] xen_log) must show; a misconfiguration ([expect] misconfig) is asserted as the
    SUT's record has it (records/<name>.toml [bad-config]): whether Xen crashes on it (v5: two
    channels with one agent id -> Data Abort in scmi_probe) and the exact lines Xen printed
    (v10: "Could not create channel for agent 5: -17", dom0's SMCs unhandled). A record that
    lacks it fails, saying how to record it (pytest --record)."""
    sc = load_scenario(name, harness_builder.board)
    if sc.unmet(harness_builder.sut):
        pytest.skip(sc.unmet(harness_builder.sut))
    context = {"dom0_func_id": checks.misconfig_context(harness_builder.board, sc.spec)["dom0_func_id"]}
    try:
        sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    except ConsoleFailure as failed:
        if not sc.expect_misconfig:
            raise
        f = failed.failure
        record_property("crash", f"{f.console.name} line {f.line + 1}: {f.text.strip()}")
        obs, report = checks.xen_crash(failed, name, context, sc.expect_watch)
        recorded("bad-config", name, obs, text=report, context=context)
        return
    for line in sc.expect_xen_log:
        s.console.expect(r"\(XEN\) " + re.escape(line), since=0, timeout=1)
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"
    assert not trace.messages(s.trace.text, message="SET_DEVICE_PERMISSIONS"), \
        "Xen must not act on a configuration it refused"
    if sc.expect_misconfig:
        recorded("bad-config", name, checks.xen_refusal(s, harness_builder.board, context, sc.expect_watch),
                 text=s.console.text, context=context)


@pytest.mark.scenarios("reset", has_xl_guest)
def test_xl_reboot_resets_the_agent_and_the_guest_probes_again(shared_boot, harness_builder, xen_build,
                                                               record_property, name):
    """`xl reboot`: the guest reboots itself (on_reboot = restart), Xen resets its agent
    while the old domain dies, and the new domain probes SCMI again on the same agent."""
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    g = next(g for g in sc.spec.xl if checks.rings_own_agent(g))
    checks.guest_probed_scmi(s, g)
    first_id, since = s.domid(g.name), s.trace.mark()
    s.shell(f"xl reboot {shlex.quote(g.name)}", timeout=30)

    def reborn():
        """The old domain is gone once xl has restarted it (a new domid) or nothing has its name."""
        out, rc = s.shell(f"xl domid {shlex.quote(g.name)}", check=False)
        if rc != 0:
            return f"no domain is named {g.name} any more"
        ids = [line.strip() for line in out.splitlines() if line.strip().isdigit()]   # Xen's lines may interleave
        return f"d{first_id} was replaced by d{ids[-1]}" if ids and ids[-1] != str(first_id) else None
    checks.agent_reset(s, g, since, sc.spec.profile, evidence=reborn)
    agent = checks.agent_of(harness_builder.board, g)
    s.trace.expect(rf"SCMI: agent={agent.id} proto=0x10 msg=0x0 PROTOCOL_VERSION -> SUCCESS", since=since,
                   timeout=90)
    assert s.domid(g.name) != first_id, "xl must have restarted the domain"


@pytest.mark.scenarios("reset")
def test_reset_on_destroy(shared_boot, harness_builder, xen_build, record_property, name):
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    for g in sc.guests():
        if g.image == "linux" and checks.rings_own_agent(g):
            checks.guest_probed_scmi(s, g)      # up, and done changing its resources
            s.settle(quiet=1.0, timeout=10)
            domid, since = s.domid(g.name), s.trace.mark()
            checks.destroy(s, g)
            checks.agent_reset(s, g, since, sc.spec.profile)
            assert s.shell(f"xl list {domid}", check=False)[1] != 0, f"{g.name} (d{domid}) must be gone"


@pytest.mark.scenarios("permissions")
def test_permission_is_gone_after_destroy(shared_boot, harness_builder, xen_build, record_property, request, name):
    """Destroy the guest that held a passed-through device (test_reset_on_destroy, just
    before on the same boot, did; run alone, this test does), create a new domain on the
    same agent that names the device without having it passed: its use must be DENIED.
    A SUT that resets without revoking (v5: flags=0) is a strict xfail on that one
    assertion (checks.PermissionKept); any other failure is a failure."""
    board = harness_builder.board
    prof = harness_builder.sut.profile
    if prof.reset_flags is not None and not prof.can("reset-revokes-permissions"):
        request.applymarker(pytest.mark.xfail(
            strict=True, raises=checks.PermissionKept,
            reason=f"SUT {harness_builder.sut.name} ({prof.name}): Xen resets the agent with flags="
                   f"{prof.reset_flags:#x} and never revokes a device permission, so the agent keeps the "
                   f"device after its domain is destroyed (v10 resets with flags=1)"))
    used = [(g, d) for g in load_scenario(name).guests() for d in g.passthrough if board.device(d).power_domains]
    if not used:
        pytest.skip(f"{name}: no passed-through device with an SCMI power domain on {board.name}; "
                    f"the guest's Linux can show a permission only through one")
    sc, s, marks = start(shared_boot, harness_builder, xen_build, name, record_property)
    g, dev = used[0]
    since_console = s.console.mark()
    if alive(s, g):
        checks.device_power_used(s, g, dev)
        since = s.trace.mark()
        checks.destroy(s, g)
        checks.agent_reset(s, g, since, prof)
    again = dataclasses.replace(g, name=f"{g.name}-again", passthrough=(), uses=(dev,))
    since = s.trace.mark()
    try:
        s.xl_create(again)
    except HarnessError as e:
        # SUT race (v5): libxl creates the new domain, finds its domid "recent", destroys it
        # and creates again at once; Xen frees the agent's channel only when the destroyed
        # domain is finally freed (arch_domain_destroy, after RCU), so the retry can find
        # the channel still taken. A second xl create a moment later works.
        if "Failed to acquire SCMI channel for agent_id" not in s.console.text_since(since_console):
            raise
        record_property("sut_race_channel_busy_after_destroy", str(e).splitlines()[-1][:200])
        time.sleep(3)
        s.shell(f"xl create {shlex.quote(f'{GUEST_DIR}/{again.name}.cfg')}", timeout=60)
    checks.guest_probed_scmi(s, again)
    record_property("denied_after_destroy", checks.device_power_denied(s, again, dev, since=since))
