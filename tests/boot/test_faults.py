"""Xen against a misbehaving firmware: each scenario of the "fault" family makes our SCMI
server misbehave on purpose for one boot ([[faults]]: a table QEMU loads, no TF-A rebuild)
and Xen's reaction is observed and asserted as the SUT's record has it (records/<name>.toml,
section [fault]): whether the boot crashes, the exact lines Xen printed, whether dom0 keeps
SCMI, and for the reset faults what happens to the domain and its agent. A record that
lacks the scenario fails, saying how to record it (pytest --record).

These are where a hypervisor's error paths live: `harness coverage` shows which lines of
the multi-agent driver they reach.
"""
import re
import shlex

import pytest

from harness.checks import checks, records
from harness.machine.console import ConsoleFailure
from harness.plan.scenario import load_scenario
from harness.images.scmi import trace

pytestmark = [pytest.mark.boot, pytest.mark.multiagent, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def name(request):
    """The scenario's name; module-scoped so pytest runs each scenario's tests together."""
    return request.param


def scenario_for(harness_builder, xen_build, name):
    """The scenario's boot spec on the SUT, its hypervisor built; skips where the SUT cannot run it."""
    sc = load_scenario(name, harness_builder.board)
    sut = harness_builder.sut
    if sc.unmet(sut):
        pytest.skip(sc.unmet(sut))
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    return sc, sc.spec_for(sut)


@pytest.mark.scenarios("fault", lambda sc: not sc.name.startswith("fault-reset-"))   # those act: below
def test_xen_against_a_faulty_firmware(shared_boot, harness_builder, xen_build, recorded, record_property, name):
    """What Xen does when the firmware misbehaves so, as the SUT's record has it: whether the
    boot crashes, Xen's SCMI lines that say what failed (a crash's headline too), and whether
    dom0 keeps SCMI."""
    sc, spec = scenario_for(harness_builder, xen_build, name)
    context = {"dom0_func_id": checks.misconfig_context(harness_builder.board, spec)["dom0_func_id"]}
    try:
        s = shared_boot(spec)
    except ConsoleFailure as failed:
        f = failed.failure
        record_property("crash", f"{f.console.name} line {f.line + 1}: {f.text.strip()}")
        assert trace.faults(f.console.group["uart1"].text), "the fault never fired"
        obs, report = checks.xen_crash(failed, name, context, sc.expect_watch)
        recorded("fault", name, obs, text=report, context=context)
        return
    fired = trace.faults(s.trace.text)
    assert fired, f"{name}: the fault never fired: nothing asked the firmware what it refuses"
    record_property("fault_fired", fired[0].line)
    assert s.shell("echo dom0 runs")[0] == "dom0 runs"
    recorded("fault", name, checks.xen_refusal(s, harness_builder.board, context, sc.expect_watch),
             text=s.console.text, context=context)


def outcome(text: str, rc: int, context: dict, what: str = "failed") -> str:
    """"ok", or the line of a command's output that says why it failed (as a record
    template): libxc's root cause ("xc_domain_destroy failed: Input/output error") when
    libxl quotes it, else the last line that says `what` (libxl's warnings about a dying
    domain's xenstore entries are not the cause)."""
    if rc == 0:
        return "ok"
    m = re.search(r"xc_\w+ failed: [^\n]*", text)
    line = m.group(0) if m else next((line.strip() for line in reversed(text.splitlines())
                                      if what in line and "xenstore read failed" not in line), text.strip()[-160:])
    return records.template(line[:200], context)


@pytest.mark.scenarios("fault", lambda sc: sc.name.startswith("fault-reset-"))
def test_a_failed_reset_and_the_agent_after_it(shared_boot, harness_builder, xen_build, recorded, name):
    """Xen's RESET_AGENT_CONFIGURATION on destroy fails (answered GENERIC_ERROR, or its doorbell
    SMC refused). One sequence, each step's outcome observed and compared with the record:
    xl destroy (and whether the reset reached the firmware, whether the domain stays), xl
    create of a new domain on the same agent (refused while the old one holds it?), a second
    xl destroy of whichever domain is left (does it free it, reset the agent?)."""
    sc, spec = scenario_for(harness_builder, xen_build, name)
    s = shared_boot(spec, lambda s: [s.xl_create(g) for g in spec.xl])
    g = spec.xl[0]
    agent = checks.agent_of(harness_builder.board, g)
    mgmt = harness_builder.board.management.id
    checks.guest_probed_scmi(s, g)
    domid, since, mark = s.domid(g.name), s.trace.mark(), s.console.mark()
    context = {"agent": agent.id, "domid": domid}
    obs = {}
    text, rc = s.shell(f"xl destroy {shlex.quote(g.name)} 2>&1", check=False, timeout=60)
    assert trace.faults(s.trace.text_since(since)), "the reset fault never fired"
    obs["destroy"] = outcome(text, rc, context)
    obs["reset_reached_firmware"] = bool(trace.messages(s.trace.text_since(since), agent=mgmt,
                                                        message="RESET_AGENT_CONFIGURATION"))
    obs["domain_stays"] = s.shell(f"xl list {domid}", check=False)[1] == 0
    # a new domain on the same agent
    text, rc = s.shell(f"xl create /guests/{g.name}.cfg 2>&1", check=False, timeout=60)
    obs["recreate"] = outcome(text, rc, context, "fail")
    if rc == 0:
        domid = s.domid(g.name)
    # a second destroy of the domain that is left: the old one, or the new one on the agent
    since = s.trace.mark()
    text, rc = s.shell(f"xl destroy {domid} 2>&1", check=False, timeout=60)
    obs["second_destroy"] = outcome(text, rc, context)
    obs["second_domain_stays"] = s.shell(f"xl list {domid}", check=False)[1] == 0
    if rc == 0:     # the agent after it: reset, and free for the next domain
        checks.agent_reset(s, g, since, spec.profile)
        text, rc = s.shell(f"xl create /guests/{g.name}.cfg 2>&1", check=False, timeout=60)
        obs["agent_free_after"] = rc == 0
    obs["xen_lines"] = records.notable(s.console.text_since(mark), context, watch=sc.expect_watch)
    recorded("fault", name, obs, text=s.console.text_since(mark), context=context)
