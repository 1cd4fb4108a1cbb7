"""Every board file in boards/: it loads and validates, its server tables render,
the TF-A server's table types can hold it (and the server, built natively, serves
it), it fits where BL31 and the boot flow leave room, and its host DT pieces
compose on QEMU virt's own DTB. Plus the facts the real-board files take from
their sources (boards/rcar-gen4-like.toml, boards/rpi5-like.toml), so an edit
that drifts from the real topology fails here."""
from __future__ import annotations

import re
import subprocess

import fdt
import pytest

from harness.data.board import BL33_BASE, BL33_ROOM, BOARDS_DIR, MODULES_FROM, PAGE, check_board, load_board
from harness.plan.dt import HostDT, guest_partial_dt, xen_cmdline_scmi
from harness.images.scmi.tables import render_tables
from harness.images.scmi.tfa import SERVER_DIR
from scmi_helpers import Builds, needs_gcc

BOARD_FILES = sorted(BOARDS_DIR.glob("*.toml"))
BOARD_NAMES = [p.stem for p in BOARD_FILES]
REAL_BOARDS = ("rcar-gen4-like", "rpi5-like")

BASE, POWER, CLOCK, RESET = 0x10, 0x11, 0x14, 0x16
SUCCESS, NOT_FOUND = 0, -4
OWN = 0xFFFFFFFF


@pytest.fixture(params=BOARD_NAMES)
def board(request):
    return load_board(request.param)


def test_the_shipped_boards_are_all_here():
    assert set(REAL_BOARDS) | {"qemu-virt"} <= set(BOARD_NAMES)


def test_board_loads_validates_and_renders(board):
    check_board(board)
    tables = render_tables(board)
    h, c = tables["scmi_board.h"], tables["scmi_board.c"]
    assert f"#define SCMI_BOARD_NUM_AGENTS   {len(board.agents)}" in h
    assert f"#define SCMI_BOARD_SHMEM_BASE {board.shmem_base:#x}" in h
    for a in board.agents:
        assert f".id = {a.id}, .name = \"{a.name}\", .func_id = {a.func_id:#x}U, .shmem = {a.shmem:#x}ULL" in c
    assert str(board.path) not in h + c


def test_board_file_starts_with_its_story(board):
    """Every board says, in a header comment, what it models (and real boards their sources)."""
    text = board.path.read_text()
    assert text.startswith("#"), f"{board.path}: start with a comment saying what the board models"
    if board.name in REAL_BOARDS:
        head = text.split("\n[", 1)[0]
        assert "Sources" in head and "INVENTED" in head


# --- what the firmware and the boot flow need ---------------------------------------------

def test_carveout_fits_qemu_ram_bl31_and_the_boot_flow(board):
    base, end = board.shmem_base, board.shmem_base + board.shmem_size
    assert board.ram_base <= base and end <= board.ram_base + board.ram_size
    assert base % PAGE == 0 and board.shmem_size % PAGE == 0
    # clear of QEMU's DTB (at RAM base) and of the BL33 image that TF-A jumps to
    assert base >= BL33_BASE + BL33_ROOM, f"{base:#x} is in the DTB/BL33 window"   # load_board checks it too
    # BL31 maps it with one more L2 + L3 table pair (harness/images/scmi/tfa.py EDITS): one 1 GiB
    # block, one 2 MiB block, unless it is made of whole 2 MiB blocks
    if base % (2 << 20) or board.shmem_size % (2 << 20):
        assert base >> 21 == (end - 1) >> 21, "the carve-out crosses a 2 MiB block: BL31 needs more xlat tables"
    assert base >> 30 == (end - 1) >> 30
    # modules are placed from RAM + MODULES_FROM upwards, skipping the carve-out
    assert end <= board.ram_base + MODULES_FROM or base >= board.ram_base + MODULES_FROM


def test_tfa_jumps_where_the_board_check_puts_bl33():
    from harness.images.build.tfa import BL33_BASE as TFA_BL33_BASE
    assert TFA_BL33_BASE == BL33_BASE


def _c_fields() -> dict[str, str]:
    """field name -> C type in scmi_tables.h (e.g. 'num_rates' -> 'uint8_t')."""
    text = (SERVER_DIR / "scmi_tables.h").read_text()
    return {m.group(2): m.group(1)
            for m in re.finditer(r"^\s*(?:const\s+)?(u?int\d+_t)\s*\*?\s*(\w+)(?:\[\d+\])?;", text, re.M)}


def _c_max(ctype: str) -> int:
    bits = int(re.search(r"\d+", ctype).group())
    return (1 << bits) - 1 if ctype.startswith("u") else (1 << (bits - 1)) - 1


def test_tfa_server_table_types_hold_the_board(board):
    """scmi_tables.h stores resource ids, counts and device indexes in fixed-width fields:
    the board must fit them (read from the header, so a change of type moves the limit)."""
    f = _c_fields()
    res_id, num_res = _c_max(f["res"]), _c_max(f["num_res"])
    for d in board.devices:
        for kind in ("clocks", "resets", "power_domains", "sensors"):
            ids = getattr(d, kind)
            assert len(ids) <= num_res and all(i <= res_id for i in ids), (d.name, kind)
        assert d.id <= _c_max(f["id"])
    for c in board.clocks:
        assert len(set(c.rates_hz)) <= _c_max(f["num_rates"])
    for a in board.agents:
        assert len(a.devices) <= _c_max(f["num_boot_devices"])
        assert len(board.devices) - 1 <= _c_max(f["boot_devices"])    # device index
        assert a.id <= _c_max(f["id"]) and a.func_id <= _c_max(f["func_id"])
        assert a.shmem + PAGE - 1 <= _c_max(f["shmem"])
    # Base PROTOCOL_ATTRIBUTES carries the agent count in 8 bits (DEN0056 4.2.2.3)
    assert len(board.agents) <= 0xFF


def test_every_device_stands_on_its_own_node(board):
    """access-controllers is one property per node: two devices on one node would overwrite."""
    nodes = [d.node for d in board.devices]
    assert len(nodes) == len(set(nodes))


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    return Builds(tmp_path_factory.mktemp("real-boards-host"))


@needs_gcc
def test_tfa_server_built_natively_serves_the_topology(board, builds):
    """The server's C code, with this board's tables (-Werror, ASan+UBSan): every agent's
    doorbell reaches its own channel, the agent count is right, the highest id of every
    resource kind answers and the next one is NOT_FOUND."""
    srv = builds.server(board)
    try:
        mgmt = board.management.id
        r = srv.call(mgmt, BASE, 0x1)                     # PROTOCOL_ATTRIBUTES
        assert r.status == SUCCESS and (r.words()[0] >> 8) & 0xFF == len(board.agents)
        for a in board.agents:
            r = srv.call(a.id, BASE, 0x7, OWN)            # DISCOVER_AGENT: who am I
            assert r.status == SUCCESS and r.words()[0] == a.id and r.name(4) == a.name
        unused = max(a.func_id for a in board.agents) + 1
        assert srv.smc(unused, hdr=0x10 << 10).ret == -1  # SMC_UNK
        # *_ATTRIBUTES: the name follows attributes (and, for resets, latency)
        for proto, pool, at in ((CLOCK, board.clocks, 4), (RESET, board.resets, 8),
                                (POWER, board.power_domains, 4)):
            if pool:
                top = max(x.id for x in pool)
                r = srv.call(mgmt, proto, 0x3, top)
                assert r.status == SUCCESS and r.name(at) == next(x.name for x in pool if x.id == top)
                assert srv.call(mgmt, proto, 0x3, top + 1).status == NOT_FOUND
        if board.devices:
            top = max(board.devices, key=lambda d: d.id)
            guest = board.guests[-1].id
            assert srv.call(mgmt, BASE, 0x9, guest, top.id, 1).status == SUCCESS   # SET_DEVICE_PERMISSIONS
    finally:
        srv.close()


# --- host DT --------------------------------------------------------------------------------

_DUMPS: dict[tuple, bytes] = {}


@pytest.fixture(scope="module")
def qemu_dtb(tmp_path_factory):
    """QEMU virt's own DTB for a board's machine arguments, dumped by the real emulator
    (as tests/unit/test_dt.py and the runner do); one dump per distinct machine."""
    def dump(board):
        key = (board.qemu.machine, board.qemu.cpu, board.qemu.memory_mib, board.qemu.smp)
        if key not in _DUMPS:
            d = tmp_path_factory.mktemp("base")
            bios = d / "bios.bin"
            bios.write_bytes(b"\0" * 4096)
            r = subprocess.run(["qemu-system-aarch64", "-machine", f"{board.qemu.machine},dumpdtb={d / 'base.dtb'}",
                                "-cpu", board.qemu.cpu, "-m", str(board.qemu.memory_mib),
                                "-smp", str(board.qemu.smp), "-bios", str(bios), "-nographic", "-nic", "none"],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                pytest.skip(f"qemu-system-aarch64 cannot dump a DTB here: {r.stderr.strip()}")
            _DUMPS[key] = (d / "base.dtb").read_bytes()
        return _DUMPS[key]
    return dump


def _reg_by_phandle(tree):
    out = {}
    for _, _, props in tree.walk():
        names = {p.name: p for p in props}
        if "phandle" in names and "reg" in names:
            reg = list(names["reg"].data)
            if len(reg) == 4:                  # the 2+2-cell sram nodes the composer adds
                out[names["phandle"].value] = (reg[0] << 32) | reg[1]
    return out


def test_devices_stand_on_qemu_virt_nodes(board, qemu_dtb):
    tree = fdt.parse_dtb(qemu_dtb(board))
    missing = [(d.name, d.node) for d in board.devices if not tree.exist_node(d.node)]
    assert not missing, f"{board.path}: not in QEMU virt's DT: {missing}"
    # the secure world's nodes (UART1 = the server's trace, secure GPIO) are disabled for the OS
    secure = [(d.name, d.node) for d in board.devices
              if tree.exist_property("status", d.node) and tree.get_property("status", d.node).value == "disabled"]
    assert not secure, f"{board.path}: devices on nodes the normal world does not own: {secure}"


@pytest.mark.parametrize("profile", ["v5", "v9"])
def test_host_dt_composes(board, qemu_dtb, profile):
    dom0 = board.agent("dom0")
    dt = HostDT(qemu_dtb(board), board)
    dt.add_carveout()
    if dom0:
        dt.add_firmware_scmi(dom0)
    dt.add_sci_config(profile, dom0_agent=dom0)
    tree = fdt.parse_dtb(dt.dtb())            # the composed blob is a valid DTB

    rm = f"/reserved-memory/scmi-shmem@{board.shmem_base:x}"
    assert list(tree.get_property("reg", rm).data) == [0, board.shmem_base, 0, board.shmem_size]
    cfg = "/chosen/xen,config" if profile == "v5" else "/chosen/xen/xen_scmi_config"
    cells = list(tree.get_property("scmi-secondary-agents", cfg).data)
    regs = _reg_by_phandle(tree)
    triples = [(cells[i], regs[cells[i + 1]], cells[i + 2]) for i in range(0, len(cells), 3)]
    assert triples == [(a.func_id, a.shmem, a.id) for a in board.agents if a.role != "management"]
    assert tree.get_property("arm,smc-id", f"{cfg}/scmi").value == board.management.func_id
    controller = tree.get_property("phandle", f"{cfg}/scmi").value
    for d in board.devices:
        assert list(tree.get_property("access-controllers", d.node).data) == [controller, d.id]
    if dom0:
        assert tree.get_property("arm,smc-id", "/firmware/scmi").value == dom0.func_id
        assert regs[tree.get_property("shmem", "/firmware/scmi").value] == dom0.shmem
        if profile == "v9":
            assert tree.get_property("xen,dom0-sci-agent-id", cfg).value == dom0.id
        else:
            assert xen_cmdline_scmi("v5", dom0) == [f"dom0_scmi_agent_id={dom0.id}"]
    # a guest's devices can be kept from dom0 for it
    owned = [n for g in board.guests for n in g.devices]
    dt.reserve_for_guests(owned)
    for name in owned:
        assert dt.tree.exist_property("xen,passthrough", board.device(name).node)


def test_guest_partial_dts_compose(board):
    for g in board.guests:
        t = fdt.parse_dtb(guest_partial_dt(board, g))
        assert t.get_property("arm,smc-id", "/passthrough/firmware/scmi").value == g.func_id


# --- facts from the real boards' sources ----------------------------------------------------

def test_rcar_gen4_like_matches_epam_tfa_and_the_seed():
    b = load_board("rcar-gen4-like")
    # plat/renesas/rcar_gen4: platform.mk, rcar_smc.h, rcar_svc_setup.c, scmi/scmi.c
    assert (b.shmem_base, b.shmem_size) == (0x47FF0000, 0x10000)
    assert [a.id for a in b.agents] == list(range(8))
    for a in b.agents:
        assert a.func_id == 0x82000002 + a.id and a.shmem == 0x47FF0000 + a.id * PAGE
    # seeds 000/001 arm-scmi.rst: dom0 on agent 0, Xen's management agent 1
    assert (b.agent("dom0").id, b.management.id, b.management.func_id) == (0, 1, 0x82000003)
    # r8a779g0 SCMI id spaces: 85 core + 144 module clocks, 167 resets, 65 PDs, 27 devices
    assert (len(b.clocks), len(b.resets), len(b.power_domains), len(b.devices)) == (229, 167, 65, 27)
    clock = {c.id: c for c in b.clocks}
    reset = {r.id: r.name for r in b.resets}
    pd = {p.id: p.name for p in b.power_domains}
    i2c1 = b.device("i2c1")
    assert i2c1.id == 0 and clock[i2c1.clocks[0]].name == "m_i2c1" and i2c1.clocks == (122,)
    assert clock[122].default_rate_hz == 133333333            # S0D6_PER = 800 MHz / 6
    assert reset[i2c1.resets[0]] == "reset_519"
    isp0 = b.device("isp0")
    assert isp0.id == 5 and pd[isp0.power_domains[0]] == "a3isp0" and isp0.power_domains == (60,)
    assert b.device("fcpc").id == 26 and clock[b.device("fcpc").clocks[0]].name == "m_fcpcs"
    assert clock[228].name == "m_adg" and reset[166] == "reset_2927" and pd[64] == "always-on"
    # scmi_policy.c scmi_device_owner[2]: agent 2 owns every device but dsi0, no one else any
    assert set(b.agents[2].devices) == {d.name for d in b.devices} - {"dsi0"}
    assert not any(a.devices for a in b.agents if a.id != 2)
    assert b.device("dsi0").clocks == b.device("dsi0").resets == ()


def test_rpi5_like_matches_epam_tfa_and_dt():
    b = load_board("rpi5-like")
    # plat/rpi/rpi5: 8 agents on RPI5_SIP_SMC_SCMI + N, one SMT page each (base moved into QEMU RAM)
    assert b.shmem_size == 0x10000 and [a.id for a in b.agents] == list(range(8))
    for a in b.agents:
        assert a.func_id == 0x82000002 + a.id and a.shmem == b.shmem_base + a.id * PAGE
    # the xen-scmi dtso: Xen on the default channel (agent 0), dom0 on agent 1
    assert (b.management.id, b.agent("dom0").id) == (0, 1)
    # device.h + scmi_policy.c + scmi_reset.c: PCIe resets only, nothing owned at boot
    assert [d.name for d in sorted(b.devices, key=lambda d: d.id)] == ["pcie0", "pcie1", "pcie2", "sdio1", "sdio2"]
    assert [r.name for r in b.resets] == ["swinit_pcie1", "bridge_pcie1", "swinit_pcie2", "bridge_pcie2"]
    assert (b.device("pcie1").resets, b.device("pcie2").resets) == ((0, 1), (2, 3))
    assert not (b.clocks or b.power_domains or b.sensors)
    assert not any(a.devices for a in b.agents)
