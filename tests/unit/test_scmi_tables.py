"""harness/images/scmi/tables.py and tfa.py: generated tables, fingerprint, install."""
from __future__ import annotations

import pytest

from harness.data.board import load_board
from harness.errors import HarnessError
from harness.images.scmi import SERVER_DIR, install_server, render_tables, server_fingerprint
from harness.images.scmi.tables import c_str
from harness.images.scmi.tfa import DEST, EDITS, portable_sources
from scmi_helpers import UNIT_BOARD, variant



@pytest.fixture
def board():
    return load_board(UNIT_BOARD)


def test_render_tables_default_board(board):
    t = render_tables(board)
    assert set(t) == {"scmi_board.h", "scmi_board.c", "scmi_protocols.h"}
    h, c = t["scmi_board.h"], t["scmi_board.c"]
    assert "#define SCMI_BOARD_NUM_AGENTS   5" in h
    assert "#define SCMI_BOARD_SHMEM_BASE 0x47ff0000" in h
    assert "#define SCMI_BOARD_SHMEM_SIZE 0x10000" in h
    assert "#define SCMI_BOARD_AGENT_ID_0_DEVIATION 0" in h
    assert '.id = 1, .name = "xen", .func_id = 0x82000003U, .shmem = 0x47ff1000ULL, .privileged = 1' in c
    assert "static const uint8_t agent0_boot[] = { 0, 1 };" in c          # uart, rtc
    assert "static const uint64_t clock2_rates[] = { 25000000ULL, 50000000ULL, 100000000ULL };" in c
    assert '.type = 2, .scale = -3, .value = 45000LL' in c
    assert ".num_res = { 1, 1, 1, 0 }, .res = { device2_clocks, device2_resets, device2_power_domains, 0 }" in c
    assert str(board.path) not in h + c          # content only: stable cache keys


def test_tables_sort_rates_and_boot_devices_by_index():
    def change(data):
        data["scmi"]["clocks"][2]["rates_hz"] = [100000000, 25000000, 50000000]
        data["scmi"]["agents"][2]["devices"] = ["guest_dev", "uart"]
    c = render_tables(variant(change))["scmi_board.c"]
    assert "clock2_rates[] = { 25000000ULL, 50000000ULL, 100000000ULL }" in c
    assert "agent2_boot[] = { 3, 0 };" in c


def test_board_without_sensors_renders_placeholder():
    def strip(data):
        data["scmi"].pop("sensors")
        data["scmi"]["devices"][1].pop("sensors")
    t = render_tables(variant(strip))
    assert "#define SCMI_BOARD_NUM_SENSORS  0" in t["scmi_board.h"]
    assert "scmi_sensors[SCMI_DIM(SCMI_BOARD_NUM_SENSORS)] = {\n\t{ 0 },\n};" in t["scmi_board.c"]


def test_resource_ids_must_be_dense():
    def gap(data):
        data["scmi"]["clocks"][3]["id"] = 7
        data["scmi"]["devices"][3]["clocks"] = [7]
    with pytest.raises(HarnessError) as e:
        render_tables(variant(gap))
    assert "scmi.clocks[].id" in str(e.value) and "0..3" in str(e.value)
    assert "scmi-unit.toml" in str(e.value)


def test_unknown_sensor_unit():
    def unit(data):
        data["scmi"]["sensors"][0]["unit"] = "furlongs"
    with pytest.raises(HarnessError, match=r"scmi.sensors\[0\].unit.*furlongs.*millicelsius"):
        render_tables(variant(unit))


def test_c_str_escapes():
    assert c_str('a"b\\c') == '"a\\"b\\\\c"'
    assert c_str("x\ny") == '"x\\012y"'


def test_fingerprint_tracks_board_and_sources(board, tmp_path, monkeypatch):
    fp = server_fingerprint(board)
    assert fp == server_fingerprint(load_board(UNIT_BOARD)) and len(fp) == 64

    def rate(data):
        data["scmi"]["clocks"][3]["default_rate_hz"] = 48000000
    assert server_fingerprint(variant(rate)) != fp

    # a change in any server source file changes the key
    import harness.images.scmi.tfa as tfa
    copy = tmp_path / "server"
    import shutil
    shutil.copytree(SERVER_DIR, copy)
    monkeypatch.setattr(tfa, "SERVER_DIR", copy)
    assert tfa.server_fingerprint(board) == fp
    (copy / "scmi_clock.c").write_text((copy / "scmi_clock.c").read_text() + "\n")
    assert tfa.server_fingerprint(board) != fp


# Anchor text as in TF-A 2.12.1 (the real tree is exercised by the QEMU proof).
FAKE = {
    "plat/qemu/qemu/platform.mk":
        "PLAT_QEMU_PATH\t\t:=      plat/qemu/qemu\n\ninclude plat/qemu/common/common.mk\n\n"
        "QEMU_USE_GIC_DRIVER\t:= QEMU_GICV2\n",
    "plat/qemu/qemu/include/platform_def.h":
        "#define MAX_MMAP_REGIONS\t\t(13 + MAX_MMAP_REGIONS_SPMC)\n"
        "#define MAX_XLAT_TABLES\t\t\t(6 + MAX_XLAT_TABLES_SPMC)\n"
        "#define PLAT_QEMU_BOOT_UART_BASE\tUART0_BASE\n"
        "#define PLAT_QEMU_BOOT_UART_CLK_IN_HZ\tUART0_CLK_IN_HZ\n"
        "#define PLAT_QEMU_CRASH_UART_BASE\tUART1_BASE\n",
    "plat/qemu/common/qemu_common.c":
        '#include <plat/common/platform.h>\n#include "qemu_private.h"\n\n'
        "#ifdef IMAGE_BL2\nstatic const mmap_region_t plat_qemu_mmap[] = {\n\tMAP_FLASH0,\n};\n#endif\n"
        "#ifdef IMAGE_BL31\nstatic const mmap_region_t plat_qemu_mmap[] = {\n\tMAP_SHARED_RAM,\n\t{0}\n};\n#endif\n",
}


@pytest.fixture
def tree(tmp_path):
    for rel, text in FAKE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_install_server(tree, board):
    assert install_server(tree, board) == []
    dest = tree / DEST
    assert (dest / "scmi_base.c").is_file() and (dest / "tfa" / "scmi_sip_svc.c").is_file()
    assert (dest / "tfa" / "scmi_server.mk").is_file()
    assert not (dest / "host").exists()
    assert (dest / "scmi_board.c").read_text() == render_tables(board)["scmi_board.c"]
    mk = (tree / "plat/qemu/qemu/platform.mk").read_text()
    assert "include plat/qemu/common/common.mk\n\n# xen-scmi-harness" in mk
    assert "include plat/qemu/common/scmi_server/tfa/scmi_server.mk\n" in mk
    pd = (tree / "plat/qemu/qemu/include/platform_def.h").read_text()
    assert "#define PLAT_QEMU_BOOT_UART_BASE\tUART1_BASE" in pd
    assert "#define PLAT_QEMU_BOOT_UART_CLK_IN_HZ\tUART1_CLK_IN_HZ" in pd
    assert "(14 + MAX_MMAP_REGIONS_SPMC)" in pd and "(8 + MAX_XLAT_TABLES_SPMC)" in pd
    c = (tree / "plat/qemu/common/qemu_common.c").read_text()
    bl31 = c[c.index("#ifdef IMAGE_BL31"):]
    assert "MAP_REGION_FLAT(SCMI_BOARD_SHMEM_BASE, SCMI_BOARD_SHMEM_SIZE,\n\t\t\tMT_DEVICE | MT_RW | MT_NS)" in bl31
    assert "MAP_REGION_FLAT(SCMI" not in c[:c.index("#ifdef IMAGE_BL31")]
    assert '#include "scmi_board.h"' in c
    assert (dest / "scmi_protocols.h").read_text() == render_tables(board)["scmi_protocols.h"]
    # one source list: the TF-A makefile includes sources.mk, the host build reads it,
    # and it names every portable .c file, each copied into the tree
    assert "include $(SCMI_SERVER_DIR)/sources.mk" in (dest / "tfa" / "scmi_server.mk").read_text()
    assert (dest / "sources.mk").read_text() == (SERVER_DIR / "sources.mk").read_text()
    assert portable_sources() == sorted(p.name for p in SERVER_DIR.glob("scmi_*.c"))
    for src in portable_sources():
        assert (dest / src).is_file()


def test_protocol_ids_come_from_one_table():
    """The C ids, the trace names and the DT protocol nodes all come from harness/images/scmi/protocols.py."""
    from harness.plan import dt
    from harness.images.scmi import protocols, trace
    h = protocols.render_c_header()
    for p in protocols.PROTOCOL_TABLE:
        assert f"#define SCMI_PROTO_{p.name:<8} 0x{p.id:02x}U" in h
        assert trace.PROTOCOLS[p.id] == p.name
        assert dt.PROTOCOLS[p.id] == (p.dt_name, p.cells)
    assert [p.id for p in protocols.PROTOCOL_TABLE] == sorted(protocols.BY_ID)
    # the server's own sources define no protocol id: they come from the generated header
    for src in SERVER_DIR.rglob("*.[ch]"):
        assert "#define SCMI_PROTO_" not in src.read_text(), src


def test_agent_id_0_needs_the_opt_in():
    def zero(data):
        data["scmi"]["agents"][0]["id"] = 0
    with pytest.raises(HarnessError, match="platform's"):
        variant(zero)

    def opt_in(data):
        zero(data)
        data["scmi"]["allow_agent_id_0"] = True
    assert "#define SCMI_BOARD_AGENT_ID_0_DEVIATION 1" in render_tables(variant(opt_in))["scmi_board.h"]


def test_install_twice_is_refused(tree, board):
    install_server(tree, board)
    with pytest.raises(HarnessError, match="already installed"):
        install_server(tree, board)


def test_missing_anchor_leaves_tree_untouched(tree, board):
    pd = tree / "plat/qemu/qemu/include/platform_def.h"
    pd.write_text(pd.read_text().replace("UART0_BASE", "UART2_BASE"))
    before = {rel: (tree / rel).read_text() for rel in FAKE}
    with pytest.raises(HarnessError) as e:
        install_server(tree, board)
    assert "platform_def.h" in str(e.value) and "found 0 times" in str(e.value)
    assert {rel: (tree / rel).read_text() for rel in FAKE} == before
    assert not (tree / DEST).exists()


def test_not_a_tfa_tree(tmp_path, board):
    with pytest.raises(HarnessError, match="no plat/qemu"):
        install_server(tmp_path, board)


def test_every_edit_is_marked():
    assert all("xen-scmi-harness" in e.repl for e in EDITS)
