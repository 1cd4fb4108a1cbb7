"""Issue 10, rule 1 on a real boot: with the default board's spec-conformant numbering
(DEN0056 4.1.2: agent id 0 is the platform, real agents 1..N; qemu-virt: xen 1,
guest2..guest4 2..4, dom0 5), a guest's Linux and the bare-metal scmi-probe see the
platform at id 0 and every agent at its board id, through Xen's multi-agent driver."""
import pytest

from harness.checks import checks
from harness.images.scmi import trace
from harness.machine.system import BootSpec, Guest

pytestmark = [pytest.mark.boot, pytest.mark.multiagent, pytest.mark.timeout(600)]

LINUX = Guest("domu", agent="guest2", uses=("guest_dev",))
PROBE = Guest("probe", agent="guest4", image="scmi-probe",
              ops=("discover", "discover:0", "discover:{dom0}", "discover:{xen}", "attrs"))


@pytest.mark.needs("multiagent", "guest-scmi")
def test_guests_see_the_platform_at_agent_0_and_agents_from_1(boot, harness_builder, xen_build):
    sut, board = harness_builder.sut, harness_builder.board
    if board.allow_agent_id_0:
        pytest.skip(f"board {board.name} opts in to a real agent 0 (allow_agent_id_0): not conformant by choice")
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    ids = sorted(a.id for a in board.agents)
    assert ids == list(range(1, len(ids) + 1)), f"board {board.name}: agent ids {ids} are not 1..N"
    s = boot(BootSpec(f"{sut.name}-scmi-numbering", xen=sut.variant, profile=sut.profile.name,
                      dom0less=(LINUX, PROBE)))

    boot_line = next(e for e in trace.parse_log(s.trace.text) if isinstance(e, trace.Boot))
    assert "deviation" not in boot_line.fields and boot_line.fields["agents"] == len(ids)

    # the bare-metal probe on guest4: itself, the platform, dom0 and xen by their board ids
    guest4, dom0, xen = board.agent_named("guest4"), board.agent("dom0"), board.management
    ops = checks.probe_results(s, PROBE)
    got = [(o.status_name, o.get("agent"), o.get("name")) for o in ops if o["op"] == "discover"]
    assert got == [("SUCCESS", guest4.id, guest4.name), ("SUCCESS", 0, "platform"),
                   ("SUCCESS", dom0.id, dom0.name), ("SUCCESS", xen.id, xen.name)], got
    attrs = next(o for o in ops if o["op"] == "attrs")
    assert attrs.status_name == "SUCCESS"
    heard = trace.messages(s.trace.text, agent=guest4.id, message="DISCOVER_AGENT")
    assert [(m.params["query"], m.results.get("id"), m.results.get("name")) for m in heard] == \
        [(0xFFFFFFFF, guest4.id, guest4.name), (0, 0, "platform"), (dom0.id, dom0.id, dom0.name),
         (xen.id, xen.id, xen.name)]

    # the Linux guest on guest2 probed SCMI on its own agent; whatever agent ids its base
    # protocol asked about, id 0 came back as the platform and every other as the board's
    checks.guest_probed_scmi(s, LINUX)
    guest2 = board.agent_named("guest2")
    asked = trace.messages(s.trace.text, agent=guest2.id, message="DISCOVER_AGENT", status="SUCCESS")
    names = {0: "platform", **{a.id: a.name for a in board.agents}}
    for m in asked:
        q = m.params["query"]
        want = guest2.id if q == 0xFFFFFFFF else q
        assert (m.results["id"], m.results["name"]) == (want, names[want]), m.line
    # Linux's base protocol init walks ids 0..num_agents-1 (so it never asks for the last
    # agent, N, when agents are 1..N: Linux's reading, harmless here)
    assert 0 in {m.params["query"] for m in asked}, f"Linux on guest2 never asked for agent 0: {asked}"

    # nobody on the wire is agent 0
    assert 0 not in {m.agent for m in trace.messages(s.trace.text)}
    assert not any("deviation" in m.results for m in trace.messages(s.trace.text))
