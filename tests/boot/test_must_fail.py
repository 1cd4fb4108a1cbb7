"""The suite can fail: every family's checks, run on a real system where the behaviour
they look for is absent, report a failure. A check that cannot fail would make a
silent pass possible; these tests keep each family honest. (The forwarding check's
must-fail case shares the isolation scenario's boot: test_scenarios.py::test_probe_check_can_fail.)"""
import dataclasses
import time

import pytest

from harness.checks import checks
from harness.machine.console import ConsoleTimeout
from harness.plan.scenario import load_scenario

pytestmark = [pytest.mark.boot, pytest.mark.multiagent, pytest.mark.timeout(600)]


def boot_scenario(boot, harness_builder, xen_build, name):
    if harness_builder.board.name not in load_scenario(name).boards:
        pytest.skip(f"scenario {name} is written for another board than {harness_builder.board.name}")
    sc = load_scenario(name, harness_builder.board)
    sut = harness_builder.sut
    if sc.unmet(sut):
        pytest.skip(sc.unmet(sut))
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    sc = dataclasses.replace(sc, spec=sc.spec_for(sut))
    s = boot(sc.spec)
    for g in sc.spec.xl:
        s.xl_create(g)
    return sc, s


@pytest.mark.needs(*load_scenario("dom0less-driver-domain").needs)
def test_checks_fail_when_permissions_resets_and_refusals_are_absent(boot, harness_builder, xen_build):
    sut = harness_builder.sut
    sc, s = boot_scenario(boot, harness_builder, xen_build, "dom0less-driver-domain")
    driver = sc.spec.dom0less[0]
    passed, named = driver.passthrough[0], next(d for d in driver.uses if d not in driver.passthrough)
    checks.guest_probed_scmi(s, driver)

    # permissions: a device that was not passed through was neither granted nor usable,
    # and the passed one was not denied
    with pytest.raises(AssertionError, match="never sent SET_DEVICE_PERMISSIONS"):
        checks.device_granted(s, driver, named)
    with pytest.raises(AssertionError, match="never powered"):
        checks.device_power_used(s, driver, named, timeout=2)
    with pytest.raises((AssertionError, ConsoleTimeout)):
        checks.device_power_denied(s, driver, passed, timeout=2)

    # forwarding: without the driver domain in the scenario, its agent is a stranger
    thin = dataclasses.replace(sc.spec, dom0less=())
    with pytest.raises(AssertionError, match="that nobody was given"):
        checks.only_expected_agents(s, thin)

    # bad-config: a good configuration shows no refusal line
    with pytest.raises(ConsoleTimeout):
        s.console.expect(r"scmi: Invalid #scmi-secondary-agents-cells", since=0, timeout=1)

    # reset: destroying the driver resets its agent, not another one
    other = dataclasses.replace(driver, agent=next(a.name for a in harness_builder.board.guests
                                                  if a.name != driver.agent))
    since = s.trace.mark()
    checks.destroy(s, driver)
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=rf"never reset agent .*reset instead:\n.*target="
                       rf"{checks.agent_of(harness_builder.board, driver).id} "):
        checks.agent_reset(s, other, since, sut.profile)
    assert time.monotonic() - t0 < checks.RESET_GRACE + 5, "a wrong reset must fail within seconds"
    checks.agent_reset(s, driver, since, sut.profile)        # ... while the real one is there
