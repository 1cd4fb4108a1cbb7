"""The hypervisor's device-tree assign path without an IOMMU: XEN_DOMCTL_assign_device for
an access-controlled device, which is where the series' SCI layer sends
BASE_SET_DEVICE_PERMISSIONS for a domain's agent. xl cannot reach it on QEMU virt (libxl
refuses `dtdev` when Xen reports no IOMMU: test_scenarios.py's
test_xl_dtdev_is_refused_without_an_iommu), so our dom0 tool xen-assign-dt
(images/dom0-tools/) calls it through libxenctrl, as libxl would.

What each revision does is its record (records/<name>.toml, [assign-domctl], [assign-denied]):
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
import re
import shlex

import pytest

from harness.checks import checks, records
from harness.plan.scenario import load_scenario
from harness.images.scmi import trace
from harness.data.spec import Fault
from harness.machine.system import Guest

pytestmark = [pytest.mark.boot, pytest.mark.multiagent, pytest.mark.timeout(600)]

from harness.images.build.dom0tools import ASSIGN_RESULT as RESULT, ASSIGN_TOOL as TOOL


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


@pytest.mark.needs("multiagent")
def test_assign_domctl_without_an_iommu(boot, harness_builder, xen_build, recorded, record_property):
    """The domctl's errno, whether Xen granted the device first (SET_DEVICE_PERMISSIONS flags=1
    answered SUCCESS), the errno of a DT path that does not exist (nothing sent), and whether
    destroying the domain takes the grant back: observed, and asserted as the SUT's record has
    them (records/<name>.toml [assign-domctl.<board>])."""
    sut, board = harness_builder.sut, harness_builder.board
    s, g, domid, agent, device = assignee(boot, harness_builder, xen_build, "assign-domctl")
    mgmt = board.management.id
    obs = {}

    # the device: the domctl's errno and what reached the firmware
    mark = s.trace.mark()
    errno, name, out = assign(s, domid, device.node)
    record_property("assign_domctl", out.strip().splitlines()[-1])
    s.settle(quiet=0.5, timeout=5)
    sent = grants_of(s.trace.text_since(mark), mgmt, agent.id, device.id)
    obs["errno"] = errno
    obs["grants"] = bool(sent) and sent[-1].ok and sent[-1].params.get("flags") == 1
    changes = permission_changes(s.trace.text_since(mark), agent.id, device.id)
    assert changes == ([1] if obs["grants"] else []), \
        f"the server's grants of {device.name} to agent {agent.id} after the domctl: {changes}"

    # a path that does not exist: refused, nothing sent
    mark = s.trace.mark()
    obs["missing_node_errno"], _, out = assign(s, domid, "/no-such-node@0")
    s.settle(quiet=0.5, timeout=5)
    assert not trace.messages(s.trace.text_since(mark), agent=mgmt), \
        "a DT path that does not exist must send nothing to the firmware"

    # destroy: the agent is reset with the profile's flags; the grant goes only if they revoke
    mark = s.trace.mark()
    checks.destroy(s, g)
    checks.agent_reset(s, g, mark, sut.profile)
    revoked = permission_changes(s.trace.text_since(mark), agent.id, device.id)
    obs["revoked_on_destroy"] = revoked == [0]
    recorded("assign-domctl", board.name, obs)

    # the toolstack still works: xl create and destroy on the same agent
    again = dataclasses.replace(g, name="assignee-again")
    s.xl_create(again, paused=True)
    checks.destroy(s, again)
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"


@pytest.mark.needs("multiagent")
def test_assign_domctl_refused_by_the_firmware(boot, harness_builder, xen_build, recorded, record_property):
    """The firmware answers the grant DENIED (a fault: our server refuses Xen's first
    SET_DEVICE_PERMISSIONS): the domctl's errno and Xen's lines are the SUT's record
    (records/<name>.toml [assign-denied.<board>]); nothing may be granted, and the domain, its
    agent and the toolstack stay usable (the next assign, which the firmware grants, does as
    the unrefused one: [assign-domctl])."""
    sut = harness_builder.sut
    board = harness_builder.board
    refuse = Fault(agent=board.management.name, target=assignee_agent(board).name, message="SET_DEVICE_PERMISSIONS",
                   status="DENIED", times=1)
    s, g, domid, agent, device = assignee(boot, harness_builder, xen_build, "assign-denied", [refuse])
    mark, since = s.trace.mark(), s.console.mark()
    errno, name, out = assign(s, domid, device.node)
    record_property("assign_denied", out.strip().splitlines()[-1])
    assert trace.faults(s.trace.text_since(mark)), "the refusal never fired: the domctl asked the firmware nothing"
    assert permission_changes(s.trace.text_since(mark), agent.id, device.id) == [], "a refused grant changes nothing"
    s.settle(quiet=0.5, timeout=5)
    context = {"domid": domid, "agent": agent.id, "device": device.id}
    text = s.console.text_since(since)
    # a printk without '\n' is joined by what dom0 prints next (v5's refusal line)
    joined = any(re.search(r"\(XEN\) .*\(-\d+\)\S*\s*\S", line) for line in text.splitlines())
    recorded("assign-denied", board.name, {"errno": errno, "xen_lines": records.notable(text, context),
                                           "xen_line_unterminated": joined}, text=text, context=context)
    # nothing left half-done: the firmware grants the second request
    mark = s.trace.mark()
    errno2, _, out = assign(s, domid, device.node)
    unrefused = records.entry(records.sut_record(sut), "assign-domctl", board.name)
    if unrefused:
        assert errno2 == unrefused["errno"], \
            f"the second assign (granted) was recorded as errno {unrefused['errno']}:\n{out}"
    s.settle(quiet=0.5, timeout=5)
    assert permission_changes(s.trace.text_since(mark), agent.id, device.id) == \
        ([1] if not unrefused or unrefused["grants"] else [])
    checks.destroy(s, g)
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"
