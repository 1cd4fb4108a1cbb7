"""The device trees the plan generates (host DT, dom0less and xl guests' partial DTs),
validated against Linux's own SCMI binding with dtschema's dt-validate: a dom0 or guest
Linux reads /firmware/scmi by Documentation/devicetree/bindings/firmware/arm,scmi.yaml.

The binding comes from the source of the kernel we boot: Debian's `linux` source of the
lock's [kernel] version, read from the build cache. Not there: the test skips, saying how
to fetch it once (HARNESS_FETCH_LINUX_SOURCE=1, about 150 MB, verified by sha256)."""
import dataclasses
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import fdt
import pytest

from harness.data.board import load_board
from harness.images.cache import Cache
from harness.images.lock import LockEntry, load_lock
from harness.plan.plan import compose
from harness.data.profiles import profile
from harness.plan.scenario import load_scenario
from harness.images.sut import get

from test_dt import base_dtb  # noqa: F401  (QEMU's own DTB, dumped once)
from test_plan import images  # noqa: F401  (stand-in images of the right sizes)

# Debian's source of the kernel that images/sources.lock.toml pins as a binary package (same
# version: test_the_bindings_are_the_booted_kernels fails when the lock moves without it).
LINUX_SOURCE = LockEntry("linux-source", "source", "trixie", "linux", "6.12.107-1",
                         "pool/main/l/linux/linux_6.12.107.orig.tar.xz",
                         "efc76d3c78a5d65f42724118c437d11db1c9f6309a5f024ee9a8b1978fdc6919", 151398592)
FETCH_ENV = "HARNESS_FETCH_LINUX_SOURCE"
# arm,scmi.yaml and the schemas it $refs. Not the whole bindings tree: QEMU's own nodes are not
# ours to judge (pl011@..., intc@... break the bindings' node-name rules), and processing all of
# it takes minutes; dtschema's core schemas come with it.
BINDINGS = ("firmware/arm,scmi.yaml", "firmware/nxp,imx95-scmi.yaml", "firmware/nxp,imx95-scmi-pinctrl.yaml",
            "regulator/regulator.yaml", "pinctrl/pinctrl.yaml", "pinctrl/pincfg-node.yaml",
            "pinctrl/pinmux-node.yaml")
CASES = [("xl-domu", "v5"), ("dom0less-guests", "v5"), ("dom0less-driver-domain", "v10"),
         ("xl-domu", "v10"), ("passthrough-xl", "scmi-smc-passthrough"), ("passthrough-dom0less", "scmi-smc-passthrough")]


def tool(name: str) -> str | None:
    """A dtschema command: next to this Python (the .venv), else on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.is_file() else shutil.which(name)


@pytest.fixture(scope="module")
def scmi_schema(tmp_path_factory) -> Path:
    """The binding files from the pinned Linux source, processed by dt-mk-schema."""
    if not (tool("dt-validate") and tool("dt-mk-schema")):
        pytest.skip("dtschema is not installed: .venv/bin/pip install -e '.[test]'")
    if not shutil.which("dtc"):
        pytest.skip("dtc is missing (dtschema needs it): apt-get install device-tree-compiler (scripts/setup)")
    cache = Cache()
    tarball = cache.download_path(LINUX_SOURCE)
    if not tarball.is_file():
        if os.environ.get(FETCH_ENV) != "1":
            pytest.skip(f"the Linux {LINUX_SOURCE.version} source with the DT bindings is not in the build cache "
                        f"({tarball}): run once with {FETCH_ENV}=1 to fetch it (about 150 MB)")
        tarball = cache.download(LINUX_SOURCE)
    elif cache.download_damage(LINUX_SOURCE):
        pytest.fail(f"{cache.download_damage(LINUX_SOURCE)}: delete it and run with {FETCH_ENV}=1 to fetch it again")
    out = tmp_path_factory.mktemp("bindings")
    want = {f"Documentation/devicetree/bindings/{b}": out / "bindings" / b for b in BINDINGS}
    with tarfile.open(tarball, "r|xz") as tar:            # streamed: Documentation/ comes early
        for member in tar:
            dest = want.pop(member.name.split("/", 1)[-1], None)
            if dest is not None:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(tar.extractfile(member).read())
            if not want:
                break
    assert not want, f"{tarball} has no {sorted(want)}: update BINDINGS to that Linux's layout"
    r = subprocess.run([tool("dt-mk-schema"), "-j", str(out / "bindings")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"dt-mk-schema failed on {BINDINGS}:\n{r.stderr}"
    (out / "schema.json").write_text(r.stdout)
    return out / "schema.json"


def linux_view(dtb: bytes) -> bytes:
    """The DT as Linux's bindings see it: Xen's own parts taken out. Xen consumes them and
    never hands them to a Linux, and no Linux binding describes them: /chosen's nodes (Xen's
    SCMI config /chosen/xen,config or /chosen/xen, its multiboot modules, dom0less domains)
    and every xen,* property (xen,passthrough on devices, xen,*-bootargs)."""
    tree = fdt.parse_dtb(dtb)
    if tree.exist_node("/chosen"):
        for node in list(tree.get_node("/chosen").nodes):
            tree.remove_node(node.name, "/chosen")
    for path, _, props in tree.walk():
        for p in [p for p in props if p.name.startswith("xen,")]:
            tree.remove_property(p.name, path)
    return tree.to_dtb(version=17)


def generated_dts(scenario: str, prof: str, base: bytes, images: dict, tmp: Path) -> dict[str, bytes]:
    board = load_board("qemu-virt")
    sut = dataclasses.replace(get("v5"), profile=profile(prof))
    plan = compose(board, load_scenario(scenario, board).spec_for(sut), images, base, tmp / "boot")
    return {"host": plan.host_dtb, **plan.guest_dtbs, **plan.xl_dtbs}


def dt_validate(schema: Path, dtbs: dict[str, bytes], tmp: Path) -> str:
    """dt-validate's complaints ("" when none). -l: only the Linux schemas loaded here
    (arm,scmi); dtschema's core would also report every property no loaded binding types,
    i.e. all of QEMU's own nodes."""
    files = []
    for name, dtb in dtbs.items():
        files.append(tmp / f"{name}.dtb")
        files[-1].write_bytes(linux_view(dtb))
    r = subprocess.run([tool("dt-validate"), "-l", "arm,scmi", "-s", str(schema), *map(str, files)],
                       capture_output=True, text=True, timeout=300)
    return (r.stdout + r.stderr).strip() + (f"\n(exit status {r.returncode})" if r.returncode else "")


@pytest.mark.parametrize("scenario, prof", CASES, ids=[f"{p}-{s}" for s, p in CASES])
def test_generated_dts_follow_linuxs_scmi_binding(scmi_schema, base_dtb, images, tmp_path, scenario, prof):
    dtbs = generated_dts(scenario, prof, base_dtb, images, tmp_path)
    assert any(fdt.parse_dtb(d).exist_node(n) for d in dtbs.values()
               for n in ("/firmware/scmi", "/passthrough/firmware/scmi")), "no SCMI node to validate"
    assert dt_validate(scmi_schema, dtbs, tmp_path) == ""


def test_the_validation_sees_a_broken_scmi_node(scmi_schema, base_dtb, images, tmp_path):
    """The filter leaves Linux's nodes alone: the old generator's #thermal-sensor-cells = <0>
    is found (this test's reason to exist), and so is a missing arm,smc-id."""
    tree = fdt.parse_dtb(generated_dts("xl-domu", "v5", base_dtb, images, tmp_path)["host"])
    tree.set_property("#thermal-sensor-cells", 0, "/firmware/scmi/protocol@15")
    tree.remove_property("arm,smc-id", "/firmware/scmi")
    said = dt_validate(scmi_schema, {"host": tree.to_dtb(version=17)}, tmp_path)
    assert "protocol@15:#thermal-sensor-cells: 1 was expected" in said and "'arm,smc-id' is a required" in said


def test_the_bindings_are_the_booted_kernels():
    kernel = load_lock()["kernel"]
    assert kernel.version == LINUX_SOURCE.version, (
        f"images/sources.lock.toml [kernel] is {kernel.version}, the DT bindings of {__file__} are Linux "
        f"{LINUX_SOURCE.version}'s: pin LINUX_SOURCE to Debian's linux source of {kernel.version}")
