"""Real builds of every image through the cache (marker `build`): slow on a cold
cache, seconds when warm. They check the artifacts themselves, not only that a
command exited 0."""
import struct
import subprocess

import pytest

from harness.images.build import Builder, BuildOptions
from harness.images.build.xen import has_option
from harness.plan.xl import GUEST_KERNEL

pytestmark = [pytest.mark.build, pytest.mark.timeout(3600)]

ARM64_IMAGE_MAGIC = b"ARM\x64"     # at offset 56 of an arm64 Linux/Xen Image


@pytest.fixture(scope="module")
def builder():
    return Builder(BuildOptions.from_env())


def is_arm64_image(path):
    with open(path, "rb") as f:
        head = f.read(64)
    return head[56:60] == ARM64_IMAGE_MAGIC


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    assert head[:4] == b"\x7fELF", f"{path} is not ELF"
    return struct.unpack_from("<H", head, 18)[0]   # 183 = EM_AARCH64


def test_upstream_xen_has_single_agent_scmi(builder):
    xen = builder.build(["xen-upstream"])["xen-upstream"]
    assert is_arm64_image(xen / "xen")
    assert has_option(xen, "CONFIG_SCMI_SMC") and not has_option(xen, "CONFIG_SCMI_SMC_MA")


def test_multiagent_xen_has_the_driver(builder):
    if builder.series is None:
        pytest.skip("no Xen patch series (../shared/sut absent and --xen-patches not given)")
    xen = builder.build(["xen-multiagent"])["xen-multiagent"]
    assert is_arm64_image(xen / "xen")
    assert has_option(xen, "CONFIG_SCMI_SMC_MA") and not has_option(xen, "CONFIG_SCMI_SMC")
    # the same source without the series: no driver in its Kconfig, and another key (the
    # series is part of it); its tree is unpacked, not built (a hypervisor build less)
    from harness.images.build.xen import kconfig_symbols, source_tree
    pristine = Builder(BuildOptions.from_env(sut=builder.sut.name, xen_patches="none"))
    tree = source_tree(pristine)
    assert "CONFIG_SCMI_SMC_MA" not in kconfig_symbols(tree / "tree")
    assert "CONFIG_SCMI_SMC_MA" in kconfig_symbols(source_tree(builder) / "tree")
    assert xen.manifest["inputs"]["source_tree"] != tree.key, "the series must be part of the key"


def test_a_profile_that_does_not_fit_the_tree_is_refused(builder):
    """A multi-agent tree run with another revision's profile (v5's on a v10/v11 tree, v10's
    on a v5 tree) or on its single-agent build stops before any boot, naming the profile whose
    binding the tree does implement (v11 before v10: libxl.h tells them apart)."""
    import dataclasses
    from harness.images.build.xen import check_profile
    from harness.errors import HarnessError
    from harness.data.profiles import profile
    right = builder.sut.profile.name
    if not builder.sut.profile.multiagent:
        pytest.skip(f"needs a multi-agent SUT (this run's is {builder.sut.name})")
    wrong, marker = ("v10", "xen,dom0-sci-agent-id") if right == "v5" else ("v5", "dom0_scmi_agent_id")
    xen = builder.build(["xen-multiagent"])["xen-multiagent"]
    check_profile(builder, xen)                                   # the right profile passes
    builder.sut = dataclasses.replace(builder.sut, profile=profile(wrong))
    try:
        with pytest.raises(HarnessError, match=rf"profile {wrong} does not fit its tree.*{marker}"
                           rf"(?s:.*)set profile = '{right}'"):
            check_profile(builder, xen)
        upstream = builder.build(["xen-upstream"])["xen-upstream"]
        with pytest.raises(HarnessError, match="has no CONFIG_SCMI_SMC_MA"):
            check_profile(builder, upstream)
    finally:
        builder.sut = dataclasses.replace(builder.sut, profile=profile(right))


def test_debug_xen(builder):
    if builder.series is None:
        pytest.skip("no Xen patch series")
    xen = builder.build(["xen-multiagent-debug"])["xen-multiagent-debug"]
    assert has_option(xen, "CONFIG_DEBUG") and has_option(xen, "CONFIG_SCMI_SMC_MA")


def test_toolstack_is_arm64(builder):
    tools = builder.build(["xen-tools"])["xen-tools"] / "install"
    for rel in ("usr/sbin/xl", "usr/sbin/xenstored", "usr/sbin/xenconsoled", "usr/lib/xen/bin/init-dom0less"):
        assert elf_machine(tools / rel) == 183, rel


def test_tfa_flash_image(builder):
    tfa = builder.build(["tf-a"])["tf-a"]
    flash = tfa / "flash.bin"
    assert flash.stat().st_size == 64 << 20
    with open(flash, "rb") as f:
        f.seek(0x40000)
        assert f.read(4) == b"\x01\x00\x64\xaa", "no FIP (TOC header 0xaa640001) at 0x40000"
    assert elf_machine(tfa / "bl31.elf") == 183


def test_kernel_and_modules(builder):
    k = builder.build(["kernel"])["kernel"]
    assert is_arm64_image(k / "Image")
    assert "CONFIG_XEN=y" in (k / "config").read_text()
    order = (k / "modules.dom0").read_text().split()
    assert order.index("xen-privcmd") < order.index("xenfs"), "dependencies load first"


def cpio_listing(path):
    return subprocess.run(["cpio", "-it"], stdin=open(path, "rb"), capture_output=True, text=True,
                          check=True).stdout.split()


def test_rootfs_images(builder):
    got = builder.build(["rootfs-domu", "rootfs-dom0"])
    domu = cpio_listing(got["rootfs-domu"] / "rootfs.cpio")
    assert {"init", "usr/bin/busybox", "dev/console"} <= set(domu)
    dom0 = set(cpio_listing(got["rootfs-dom0"] / "rootfs.cpio"))
    assert {"init", "usr/sbin/xl", "usr/sbin/xenstored", "lib/modules/xenfs.ko",
            GUEST_KERNEL.lstrip("/"), "guests/domu.cpio"} <= dom0
    assert not any("/gconv/" in p or p.startswith("usr/include/") or p.endswith(".a") for p in dom0), \
        "left out of dom0's rootfs: iconv modules, headers, static libraries"
    assert any(p.endswith("ld-linux-aarch64.so.1") for p in dom0)
    assert any("libxenlight.so" in p for p in dom0)
