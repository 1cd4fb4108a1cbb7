"""The boot plan (harness/plan/plan.py) composed from scenario data without booting: QEMU only
dumps its base DTB (as the runner does); the images are stand-in files of the right kind."""
import dataclasses

import fdt
import pytest

from harness.data.board import load_board
from harness.plan.plan import compose, write_out
from harness.plan.scenario import load_scenario
from harness.images.sut import get

from test_dt import base_dtb  # noqa: F401  (QEMU's own DTB, dumped once)


@pytest.fixture
def images(tmp_path):
    out = {}
    for name, size in (("bl33", 2 << 20), ("kernel", 8 << 20), ("rootfs", 4 << 20), ("rootfs-domu", 1 << 20),
                       ("scmi-probe", 64 << 10)):
        out[name] = tmp_path / "images" / name
        out[name].parent.mkdir(exist_ok=True)
        out[name].write_bytes(b"\0" * size)
    return out


def plan_for(scenario, profile, base_dtb, images, tmp_path):
    board = load_board("qemu-virt")
    sc = load_scenario(scenario, board)
    sut = dataclasses.replace(get("v5"), profile=__import__("harness.data.profiles").data.profiles.profile(profile))
    return board, compose(board, sc.spec_for(sut), images, base_dtb, tmp_path / "boot")


def test_v5_xl_guest_plan(base_dtb, images, tmp_path):
    board, plan = plan_for("xl-domu", "v5", base_dtb, images, tmp_path)
    assert "dom0_scmi_agent_id=5" in plan.xen_cmdline and "dom0_mem=768M" in plan.xen_cmdline
    tree = fdt.parse_dtb(plan.host_dtb)
    assert tree.exist_node("/chosen/xen,config/scmi")
    cfg = plan.xl_configs["domu"]
    assert 'arm_sci = "type=scmi_smc_multiagent,agent_id=2"' in cfg
    assert f'"{board.agent_named("guest2").shmem >> 12:x},1@' in cfg
    guest = fdt.parse_dtb(plan.xl_dtbs["domu"])
    assert guest.get_property("arm,smc-id", "/passthrough/firmware/scmi").value == board.agent_named("guest2").func_id


def test_v10_dom0less_plan_uses_the_v10_binding(base_dtb, images, tmp_path):
    board, plan = plan_for("dom0less-driver-domain", "v10", base_dtb, images, tmp_path)
    tree = fdt.parse_dtb(plan.host_dtb)
    assert tree.get_property("compatible", "/chosen/xen/xen_scmi_config").value == "xen,sci"
    assert not tree.exist_property("xen,dom0-sci-agent-id", "/chosen/xen/xen_scmi_config"), "a thin dom0"
    assert tree.get_property("xen,sci-agent-id", "/chosen/driver").value == board.agent_named("guest3").id
    assert "dom0_scmi_agent_id" not in plan.xen_cmdline
    assert set(plan.guest_dtbs) == {"driver"} and (tmp_path / "boot" / "driver.dtb").is_file()


def test_loads_never_overlap_and_keep_off_the_carveout(base_dtb, images, tmp_path):
    board, plan = plan_for("dom0less-guests", "v5", base_dtb, images, tmp_path)
    spans = sorted((addr, addr + path.stat().st_size) for path, addr in plan.loaders)
    for (a0, a1), (b0, _) in zip(spans, spans[1:]):
        assert a1 <= b0, f"{a0:#x}..{a1:#x} overlaps {b0:#x}"
    for lo, hi in spans:
        assert hi <= board.shmem_base or lo >= board.shmem_base + board.shmem_size


def test_write_out_gives_a_reviewer_every_piece(base_dtb, images, tmp_path):
    _, plan = plan_for("xl-domu", "v5", base_dtb, images, tmp_path)
    written = {p.name for p in write_out(plan, tmp_path / "out")}
    assert {"host.dts", "domu.dts", "domu.cfg", "cmdlines.txt", "loaders.txt"} <= written
    assert "xen:    console=dtuart" in (tmp_path / "out" / "cmdlines.txt").read_text()
