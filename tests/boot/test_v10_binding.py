"""What v10's documentation and code disagree on (../shared/sut/v10-binding.md): the
docs (0004's commit message, arm-scmi.rst) show `access-controllers = <&scmi N>` with
`scmi` = the host's /firmware/scmi node; the code (sci_assign_dt_device) acts only on
phandles to the management node inside the xen,sci container, and booting.txt agrees
with the code. This test asserts what Xen does; the day Xen starts honouring the
documented form it goes red, and the docs/code disagreement is settled."""
import dataclasses

import pytest

from harness.checks import checks
from harness.plan.scenario import load_scenario
from harness.images.scmi import trace

pytestmark = [pytest.mark.boot, pytest.mark.multiagent, pytest.mark.timeout(600)]


@pytest.mark.needs("multiagent", "dom0-agent-in-dt")
def test_access_controllers_on_firmware_scmi_are_ignored(boot, harness_builder, xen_build):
    sut = harness_builder.sut
    sc = load_scenario("dom0less-driver-domain", harness_builder.board)
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    spec = dataclasses.replace(sc.spec_for(sut), name=f"{sut.name}-access-controllers-on-firmware-scmi",
                               access_controller="/firmware/scmi", firmware_scmi=True)
    s = boot(spec)
    driver = sc.spec.dom0less[0]
    checks.guest_probed_scmi(s, driver)          # the domain and its agent work ...
    grants = trace.messages(s.trace.text, message="SET_DEVICE_PERMISSIONS")
    assert not grants, "Xen acted on access-controllers pointing at /firmware/scmi (v10's docs say it " \
                       "should; its code did not): " + "; ".join(m.line for m in grants)
    # ... but the device was never granted, so the driver domain's use of it is DENIED
    checks.device_power_denied(s, driver, driver.passthrough[0])
