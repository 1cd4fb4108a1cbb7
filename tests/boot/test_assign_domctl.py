"""The hypervisor's device-tree assign path without an IOMMU: XEN_DOMCTL_assign_device for
an access-controlled device, which is where the series' SCI layer sends
BASE_SET_DEVICE_PERMISSIONS for a domain's agent. xl cannot reach it on QEMU virt (libxl
refuses `dtdev` when Xen reports no IOMMU: test_scenarios.py's
test_xl_dtdev_is_refused_without_an_iommu), so our dom0 tool xen-assign-dt
(images/dom0-tools/) calls it through libxenctrl, as libxl would.

What each revision does is its profile's record (harness/profiles.py, Profile.assign_domctl):
  v5   the IOMMU step returns -ENXIO (patch 0005), SCI then grants: the domctl succeeds;
       its flags-0 reset on destroy leaves the grant in place
  v10  SCI first (SET_DEVICE_PERMISSIONS flags=1 SUCCESS), then iommu_do_domctl() refuses the
       domain without an IOMMU: EOPNOTSUPP, and the grant is NOT rolled back until the domain
       is destroyed (a v10 defect worth reporting upstream; the test records it as
       `sut_defect`)
Both: a DT path that does not exist is ESRCH and nothing is sent; xl create and destroy
still work afterwards (no domctl lock left held).
"""
import dataclasses
import shlex

import pytest

from harness import checks
from harness.scenario import load_scenario
from harness.scmi import trace
from harness.spec import Fault
from harness.system import Guest

pytestmark = [pytest.mark.boot, pytest.mark.multiagent, pytest.mark.timeout(600)]

from harness.build.dom0tools import ASSIGN_RESULT as RESULT, ASSIGN_TOOL as TOOL


def assign(s, domid: int, path: str) -> tuple[int, str, str]:
    """Run the tool in dom0: (errno, its errno name, its whole output)."""
    out, rc = s.shell(f"{TOOL} {domid} {shlex.quote(path)} 2>&1", check=False, timeout=30)
    m = RESULT.search(out)
    assert m, f"{TOOL} printed no result line (exit {rc}):\n{out}"
    assert rc == (0 if m.group(4) == "0" else 1), f"{TOOL} exited {rc} for:\n{out}"
    return int(m.group(4)), m.group(5), out


def grants_of(text: str, mgmt: int, agent: int, device: int) -> list:
    return [m for m in trace.messages(text, agent=mgmt, message="SET_DEVICE_PERMISSIONS")
            if m.params.get("target") == agent and m.params.get("device") == device]


def permission_changes(text: str, agent: int, device: int) -> list[int]:
    """The server's granted= values for (agent, device) in text, in order."""
    return [st.fields["granted"] for st in trace.states(text, device=device, agent=agent) if "granted" in st.fields]


def outcome_of(sut):
    outcome = sut.profile.assign_domctl
    if outcome is None:
        pytest.fail(f"profile {sut.profile.name} records no outcome of the DT assign domctl without an IOMMU "
                    f"(Profile.assign_domctl in harness/profiles.py): run this test, read what Xen did on the "
                    f"consoles and record it", pytrace=False)
    return outcome


def assignee_agent(board):
    """The guest agent the assignee runs on: one with no device at firmware boot."""
    return next(a for a in board.guests if not a.devices)


def assignee(boot, harness_builder, xen_build, name: str, faults=()):
    """Boot dom0 keeping a device with an SCMI power domain that no agent holds at boot
    (xen,passthrough, so only the domctl grants it) and create a paused domain on
    assignee_agent(): (system, guest, domid, agent, device)."""
    sut, board = harness_builder.sut, harness_builder.board
    agent = assignee_agent(board)
    held = {d for a in board.agents for d in a.devices}
    device = next(d for d in board.devices if d.name not in held and d.power_domains)
    base = load_scenario("xl-domu", board).spec_for(sut)
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    s = boot(dataclasses.replace(base, name=f"{sut.name}-{name}", xl=(), passthrough=(device.name,),
                                 faults=tuple(faults)))
    g = Guest("assignee", agent=agent.name)
    s.xl_create(g, paused=True)
    return s, g, s.domid(g.name), agent, device


def test_assign_domctl_without_an_iommu(boot, harness_builder, xen_build, needs, record_property):
    needs("multiagent")
    sut, board = harness_builder.sut, harness_builder.board
    outcome = outcome_of(sut)
    s, g, domid, agent, device = assignee(boot, harness_builder, xen_build, "assign-domctl")
    mgmt = board.management.id

    # the device: the domctl's errno and what reached the firmware are the profile's record
    mark = s.trace.mark()
    errno, name, out = assign(s, domid, device.node)
    record_property("assign_domctl", out.strip().splitlines()[-1])
    s.settle(quiet=0.5, timeout=5)
    sent = grants_of(s.trace.text_since(mark), mgmt, agent.id, device.id)
    assert errno == outcome.errno, f"{sut.profile.name}: the assign domctl of {device.node} to d{domid} " \
                                   f"was recorded as errno {outcome.errno}, it gave:\n{out}"
    if outcome.grants:
        assert sent and sent[-1].ok and sent[-1].params.get("flags") == 1, \
            f"Xen was to send SET_DEVICE_PERMISSIONS target={agent.id} device={device.id} flags=0x1 for " \
            f"d{domid} before answering errno {errno}: {[m.line for m in sent] or 'nothing sent'}"
    else:
        assert not sent, f"Xen sent {[m.line for m in sent]} for a domctl it refused"
    if outcome.defect:
        record_property("sut_defect", outcome.defect)
    assert permission_changes(s.trace.text_since(mark), agent.id, device.id) == ([1] if outcome.grants else []), \
        "the grant must stand until the domain is destroyed (nothing rolls it back)"

    # a path that does not exist: refused, nothing sent
    mark = s.trace.mark()
    errno, _, out = assign(s, domid, "/no-such-node@0")
    assert errno == outcome.missing_node_errno, out
    s.settle(quiet=0.5, timeout=5)
    assert not trace.messages(s.trace.text_since(mark), agent=mgmt), \
        "a DT path that does not exist must send nothing to the firmware"

    # destroy: the agent is reset with the profile's flags; the grant goes only if they revoke
    mark = s.trace.mark()
    checks.destroy(s, g)
    checks.agent_reset(s, g, mark, sut.profile)
    revoked = permission_changes(s.trace.text_since(mark), agent.id, device.id)
    if outcome.grants:
        assert revoked == ([0] if outcome.revoked_on_destroy else []), \
            f"{sut.profile.name}: destroying d{domid} was recorded to " \
            f"{'revoke' if outcome.revoked_on_destroy else 'keep'} its agent's grant of {device.name}; " \
            f"the server changed it to {revoked}"

    # the toolstack still works: xl create and destroy on the same agent
    again = dataclasses.replace(g, name="assignee-again")
    s.xl_create(again, paused=True)
    checks.destroy(s, again)
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"


def test_assign_domctl_refused_by_the_firmware(boot, harness_builder, xen_build, needs, record_property):
    """The firmware answers the grant DENIED (a fault: our server refuses Xen's first
    SET_DEVICE_PERMISSIONS): the domctl must fail with the profile's errno and Xen's line,
    nothing granted, and the domain, its agent and the toolstack stay usable (the next
    assign, which the firmware grants, works)."""
    needs("multiagent")
    sut = harness_builder.sut
    outcome = outcome_of(sut)
    if outcome.denied is None:
        pytest.skip(f"profile {sut.profile.name} records no outcome of a refused grant (AssignOutcome.denied in "
                    f"harness/profiles.py): run this test, read Xen's console, record it")
    board = harness_builder.board
    refuse = Fault(agent=board.management.name, target=assignee_agent(board).name, message="SET_DEVICE_PERMISSIONS",
                   status="DENIED", times=1)
    s, g, domid, agent, device = assignee(boot, harness_builder, xen_build, "assign-denied", [refuse])
    mark, since = s.trace.mark(), s.console.mark()
    errno, name, out = assign(s, domid, device.node)
    record_property("assign_denied", out.strip().splitlines()[-1])
    assert trace.faults(s.trace.text_since(mark)), "the refusal never fired: the domctl asked the firmware nothing"
    want_errno, line = outcome.denied
    assert errno == want_errno, f"{sut.profile.name}: a refused grant was recorded as errno {want_errno}; got:\n{out}"
    m = s.console.expect(line + r"(.*)", since=since, timeout=10)
    record_property("xen_line", m.group(0))
    if m.group(1).strip():     # v5: the printk has no '\n', dom0's next output joins Xen's line
        record_property("sut_defect", f"Xen's refusal line has no newline: {m.group(0)[:160]!r}")
    assert permission_changes(s.trace.text_since(mark), agent.id, device.id) == [], "a refused grant changes nothing"
    # nothing left half-done: the firmware grants the second request
    mark = s.trace.mark()
    errno, _, out = assign(s, domid, device.node)
    assert errno == outcome.errno, f"the second assign (granted) was recorded as errno {outcome.errno}:\n{out}"
    s.settle(quiet=0.5, timeout=5)
    assert permission_changes(s.trace.text_since(mark), agent.id, device.id) == ([1] if outcome.grants else [])
    checks.destroy(s, g)
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"
