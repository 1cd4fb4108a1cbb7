"""Xen against a misbehaving firmware: each scenario of the "fault" family makes our SCMI
server misbehave on purpose for one boot ([[faults]]: a table QEMU loads, no TF-A rebuild)
and Xen's reaction is asserted as the SUT's profile records it (Profile.fault_outcomes):
a named crash, or the exact lines Xen printed, whether dom0 keeps SCMI, and for the reset
fault what happens to the domain and its agent. A profile that records nothing for a
fault skips with the reason (its behaviour is not known yet: observe it, then record it).

These are where a hypervisor's error paths live: `harness coverage` shows which lines of
the multi-agent driver they reach.
"""
import re
import shlex

import pytest

from harness import checks
from harness.console import ConsoleFailure
from harness.scenario import load_scenario
from harness.scmi import trace

pytestmark = [pytest.mark.boot, pytest.mark.multiagent, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def name(request):
    """The scenario's name; module-scoped so pytest runs each scenario's tests together."""
    return request.param


def line_with(text: str, what: str) -> str:
    """The line of a command's output that says `what` (for the JUnit record)."""
    return next((line.strip() for line in text.splitlines() if what in line), text.strip()[-200:])[:200]


def outcome_for(harness_builder, xen_build, record_property, name):
    """The scenario's boot spec and the profile's record of it, the hypervisor built, the
    record's defect noted; skips where the SUT cannot run it or has no record."""
    sc = load_scenario(name, harness_builder.board)
    sut = harness_builder.sut
    if sc.unmet(sut):
        pytest.skip(sc.unmet(sut))
    out = sut.profile.fault_outcome(name)
    if out is None:
        pytest.skip(f"profile {sut.profile.name} records no outcome for {name} (Profile.fault_outcomes in "
                    f"harness/profiles.py): boot it (harness boot --scenario {name}), read Xen's console, record it")
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    if out.defect:
        record_property("sut_defect", out.defect)
    return sc.spec_for(sut), out


@pytest.mark.scenarios("fault", lambda sc: not sc.name.startswith("fault-reset-"))   # those act: below
def test_xen_against_a_faulty_firmware(shared_boot, harness_builder, xen_build, record_property, name):
    spec, out = outcome_for(harness_builder, xen_build, record_property, name)
    sut = harness_builder.sut
    if out.crash:
        with pytest.raises(ConsoleFailure) as failed:
            shared_boot(spec)
        f = failed.value.failure
        report = "\n".join(f.console.lines(max(0, f.line - 80), f.line + 1))
        record_property("known_crash", f"{f.console.name} line {f.line + 1}: {f.text.strip()}")
        assert f.console.name == "uart0" and re.search(out.crash, report), \
            f"SUT {sut.name}: Xen was recorded to crash with /{out.crash}/ on {name}; it failed otherwise:\n{failed.value}"
        assert trace.faults(f.console.group["uart1"].text), "the fault never fired"
        return
    s = shared_boot(spec)
    for pattern in out.xen_lines:
        m = s.console.expect(pattern.format(**checks.misconfig_context(harness_builder.board, spec)), since=0,
                             timeout=10)
        record_property(f"xen_line_{out.xen_lines.index(pattern)}", m.group(0))
    fired = trace.faults(s.trace.text)
    assert fired, f"{name}: the fault never fired: nothing asked the firmware what it refuses"
    record_property("fault_fired", fired[0].line)
    dom0 = harness_builder.board.agent("dom0")
    # dom0's Linux starts with PROTOCOL_VERSION (Xen's own probe, on dom0's channel too with
    # cells = 2, only asks DISCOVER_AGENT)
    heard = trace.messages(s.trace.text, agent=dom0.id, message="PROTOCOL_VERSION")
    assert bool(heard) == out.dom0_scmi, \
        f"{name}: dom0's SCMI was recorded to {'work' if out.dom0_scmi else 'be gone'}; the server heard " \
        f"{len(heard)} PROTOCOL_VERSION from dom0's agent"
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"


@pytest.mark.scenarios("fault", lambda sc: sc.name.startswith("fault-reset-"))
def test_a_failed_reset_and_the_agent_after_it(shared_boot, harness_builder, xen_build, record_property, name):
    """Xen's RESET_AGENT_CONFIGURATION on destroy fails (answered GENERIC_ERROR, or its doorbell
    SMC refused): what xl destroy says, whether the reset reached the firmware, whether the
    domain and its agent are freed, whether a new domain can take the agent, and what a
    second destroy does. Each is a fact of the profile's record (Profile.fault_outcomes)."""
    spec, out = outcome_for(harness_builder, xen_build, record_property, name)
    sut = harness_builder.sut
    s = shared_boot(spec, lambda s: [s.xl_create(g) for g in spec.xl])
    g = spec.xl[0]
    agent = checks.agent_of(harness_builder.board, g)
    mgmt = harness_builder.board.management.id
    checks.guest_probed_scmi(s, g)
    domid, since, mark = s.domid(g.name), s.trace.mark(), s.console.mark()
    text, rc = s.shell(f"xl destroy {shlex.quote(g.name)} 2>&1", check=False, timeout=60)
    assert trace.faults(s.trace.text_since(since)), "the reset fault never fired"
    for pattern in out.xen_lines:
        s.console.expect(pattern, since=mark, timeout=10)
    resets = trace.messages(s.trace.text_since(since), agent=mgmt, message="RESET_AGENT_CONFIGURATION")
    if out.fact("reset_not_taken"):
        assert not resets, f"the refused SMC was recorded to leave the firmware without the reset; it heard {resets}"
    if out.fact("destroy_fails"):
        assert rc != 0 and out.fact("destroy_fails") in text, f"xl destroy was recorded to fail; it said:\n{text}"
        record_property("destroy_after_failed_reset", line_with(text, out.fact("destroy_fails")))
    else:
        assert rc == 0, text
        assert s.shell(f"xl list {domid}", check=False)[1] != 0, f"d{domid} was recorded to be destroyed"
    if out.fact("agent_taken"):
        mark = s.console.mark()
        text, rc = s.shell(f"xl create /guests/{g.name}.cfg 2>&1", check=False, timeout=60)
        assert rc != 0, f"a new domain on agent {agent.id} was recorded to be refused:\n{text}"
        s.console.expect(re.escape(out.fact("agent_taken").format(agent=agent.id)), since=mark, timeout=10)
    if out.fact("agent_free"):        # the agent goes to the next domain as the last one left it
        s.shell(f"xl create /guests/{g.name}.cfg", timeout=60)
        domid = s.domid(g.name)
        record_property("agent_reused_without_reset", f"d{domid} on agent {agent.id}")
    since = s.trace.mark()
    text, rc = s.shell(f"xl destroy {domid} 2>&1", check=False, timeout=60)
    if out.fact("second_destroy_fails"):    # the management channel is left busy by the refused SMC
        assert rc != 0 and out.fact("second_destroy_fails") in text, \
            f"the next destroy was recorded to fail with {out.fact('second_destroy_fails')!r}; it said:\n{text}"
        assert s.shell(f"xl list {domid}", check=False)[1] == 0, f"d{domid} was recorded to stay"
        record_property("second_destroy", line_with(text, out.fact("second_destroy_fails")))
    if out.fact("second_destroy_frees"):
        assert rc == 0, text
        checks.agent_reset(s, g, since, sut.profile)
        assert s.shell(f"xl list {domid}", check=False)[1] != 0, f"d{domid} must be gone after the second destroy"
        s.shell(f"xl create /guests/{g.name}.cfg", timeout=60)
        assert s.shell(f"xl domid {shlex.quote(g.name)}", check=False)[1] == 0, "the agent must be free again"
