"""Board files: the default board loads; every invalid field names file, key and fix."""
import re

import pytest

from harness.data.board import BOARDS_DIR, load_board
from harness.errors import HarnessError

DEFAULT = (BOARDS_DIR / "qemu-virt.toml").read_text()


def test_default_board_models_the_seed_layout():
    b = load_board("qemu-virt")
    assert b.management.func_id == 0x82000003 and b.management.shmem == 0x47ff1000
    assert b.agent("dom0").func_id == 0x82000002 and b.agent("dom0").shmem == 0x47ff0000
    assert [a.func_id for a in b.guests] == [0x82000004, 0x82000005, 0x82000006]
    assert b.device("rtc").clocks == (1,)


def variant(tmp_path, old, new, count=1):
    assert old in DEFAULT, old
    p = tmp_path / "bad.toml"
    p.write_text(DEFAULT.replace(old, new, count))
    return p


@pytest.mark.parametrize("old,new,field,reason", [
    ("func_id = 0x82000005", "func_id = 0x82000004", "scmi.agents[3].func_id", "duplicate func_id 0x82000004"),
    ("id = 3\nname = \"guest3\"", "id = 2\nname = \"guest3\"", "scmi.agents[3].id", "duplicate id"),
    ("shmem = 0x47ff3000", "shmem = 0x47ff3800", "scmi.agents[3].shmem", "not page aligned"),
    ("shmem = 0x47ff4000", "shmem = 0x48000000", "scmi.agents[4].shmem", "outside the carve-out"),
    ("shmem_base = 0x47ff0000", "shmem_base = 0x37ff0000", "scmi.shmem_base", "outside RAM"),
    ("clocks = [3]", "clocks = [9]", "scmi.devices[3].clocks", "unknown clock id 9"),
    ("role = \"guest\"", "role = \"gust\"", "scmi.agents[2].role", "unknown"),
    ("role = \"management\"", "role = \"guest\"", "scmi.agents", "exactly one agent"),
    ("devices = [\"uart\", \"rtc\"]", "devices = [\"uart\", \"rtx\"]", "scmi.agents[0].devices", "not defined"),
    ("memory_mib = 2048", "memory_mib = 1024", "memory.ram_size", "does not match"),
    ("smp = 2", "smp = \"2\"", "qemu.smp", "expected int"),
    ("func_id = 0x82000006", "func_id = 0x84000006", "scmi.agents[4].func_id", "SiP"),
    ("name = \"guest4\"", "name = \"a-very-long-agent-name\"", "scmi.agents[4].name", "15"),
    ("ram_base = 0x40000000", "ram_base = 0x80000000", "memory.ram_base", "QEMU's virt machine"),
])
def test_invalid_fields(tmp_path, old, new, field, reason):
    with pytest.raises(HarnessError) as e:
        load_board(variant(tmp_path, old, new))
    assert e.value.field == field
    assert reason in str(e.value)
    assert str(tmp_path / "bad.toml") in str(e.value) and e.value.fix


def test_missing_section_and_bad_toml(tmp_path):
    p = tmp_path / "b.toml"
    p.write_text(re.sub(r"\[qemu\][^[]*", "", DEFAULT))
    with pytest.raises(HarnessError, match="qemu: missing section"):
        load_board(p)
    p.write_text("[board\n")
    with pytest.raises(HarnessError, match="not valid TOML"):
        load_board(p)


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(HarnessError, match="qemu-virt"):
        load_board("no-such-board")


@pytest.mark.parametrize("old,new,field,near", [
    ("[memory]", "[memroy]", "memroy", "memory"),
    ('name = "qemu-virt"', 'name = "qemu-virt"\ndescripton = "x"', "board.descripton", "description"),
    ("ram_size = 0x80000000", "ram_size = 0x80000000\nram_sise = 1", "memory.ram_sise", "ram_size"),
    ("shmem_size = 0x10000", "shmem_size = 0x10000\nshmem_szie = 1", "scmi.shmem_szie", "shmem_size"),
    ('name = "periph_rst"\nasserted', 'name = "periph_rst"\nasserts', "scmi.resets[0].asserts", "asserted"),
    ('name = "pd_periph"\non = false', 'name = "pd_periph"\nonn = false', "scmi.power_domains[0].onn", "on"),
    ('unit = "millicelsius"', 'units = "millicelsius"', "scmi.sensors[0].units", "unit"),
    ("clocks = [3]", "clcoks = [3]", "scmi.devices[3].clcoks", "clocks"),
])
def test_unknown_keys_name_the_table_and_the_nearest_key(tmp_path, old, new, field, near):
    with pytest.raises(HarnessError) as e:
        load_board(variant(tmp_path, old, new))
    assert e.value.field == field and f"did you mean {near!r}?" in str(e.value)
    assert str(tmp_path / "bad.toml") in str(e.value) and near in e.value.fix


def test_carveout_must_avoid_the_dtb_and_bl33_but_not_the_gap_above(tmp_path):
    from harness.data.board import BL33_BASE, BL33_ROOM
    last = BL33_BASE + BL33_ROOM - 0x10000                       # its last 64 KiB are still BL33's
    with pytest.raises(HarnessError, match=r"scmi.shmem_base: carve-out .* overlaps Xen or Linux \(BL33\)"):
        load_board(variant(tmp_path, "0x47ff", f"{last >> 16:#x}", count=-1))
    b = load_board(variant(tmp_path, "0x47ff", f"{(BL33_BASE + BL33_ROOM) >> 16:#x}", count=-1))
    assert b.shmem_base == BL33_BASE + BL33_ROOM


def test_agent_devices_are_a_list_of_names(tmp_path):
    with pytest.raises(HarnessError, match=r"scmi.agents\[0\].devices: holds 1, expected strings"):
        load_board(variant(tmp_path, 'devices = ["uart", "rtc"]', 'devices = ["uart", 1]'))
