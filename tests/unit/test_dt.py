"""The device-tree composer, checked against the examples in the seed documents:
the same nodes and the same properties (labels resolved to addresses)."""
import re
import subprocess
from pathlib import Path

import fdt
import pytest

from harness.data.board import BOARDS_DIR, load_board
# the seeds number dom0's agent 0; the default board is spec-conformant (dom0 = 5)
SEED_BOARD = Path(__file__).resolve().parent / "boards" / "seed-numbering.toml"
from harness.plan.dt import HostDT, Module, guest_partial_dt, xen_cmdline_scmi
from harness.errors import HarnessError

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


def seed_text(prefix):
    files = sorted(SEEDS.glob(f"{prefix}_*.txt"))
    if not files:
        pytest.skip("../shared/seeds is not beside this checkout")
    lines = []
    for line in files[0].read_text().splitlines():   # strip mail quoting and diff '+'
        lines.append(re.sub(r"^(?:>\s?)*\+?", "", line))
    return "\n".join(lines)


def seed_agents(block, label_block=None):
    """[(func_id, shmem address, agent id or None)] of the first scmi-secondary-agents in block
    (shmem labels resolved in label_block, default block)."""
    labels = {m.group(1): int(m.group(2), 16)
              for m in re.finditer(r"(\w+)\s*:\s*sram@([0-9a-f]+)", label_block or block)}
    body = re.search(r"scmi-secondary-agents\s*=\s*<([^>]*)>", block).group(1).split()
    cells = int(re.search(r"#scmi-secondary-agents-cells\s*=\s*<(\d)>", block).group(1))
    out = []
    for i in range(0, len(body), cells):
        entry = body[i:i + cells]
        out.append((int(entry[0], 16), labels[entry[1].lstrip("&")], int(entry[2]) if cells == 3 else None))
    return out, cells


def composed_agents(tree, cfg):
    """The same triples read back from a composed DT (phandles resolved to reg)."""
    by_phandle = {}
    for path, nodes, props in tree.walk():
        names = {p.name: p for p in props}
        if "phandle" in names and "reg" in names:
            by_phandle[names["phandle"].value] = list(names["reg"].data)
    prop = list(tree.get_property("scmi-secondary-agents", cfg).data)
    cells = tree.get_property("#scmi-secondary-agents-cells", cfg).value
    out = []
    for i in range(0, len(prop), cells):
        reg = by_phandle[prop[i + 1]]
        out.append((prop[i], (reg[0] << 32) | reg[1], prop[i + 2] if cells == 3 else None))
    return out, cells


@pytest.fixture(scope="module")
def base_dtb(tmp_path_factory):
    """QEMU virt's own DTB (dumped by the real emulator, as the runner does)."""
    d = tmp_path_factory.mktemp("base")
    bios = d / "bios.bin"
    bios.write_bytes(b"\0" * 4096)
    board = load_board("qemu-virt")
    r = subprocess.run(["qemu-system-aarch64", "-machine", f"{board.qemu.machine},dumpdtb={d / 'base.dtb'}",
                        "-cpu", board.qemu.cpu, "-m", str(board.qemu.memory_mib), "-smp", str(board.qemu.smp),
                        "-bios", str(bios), "-nographic", "-nic", "none"], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        pytest.skip(f"qemu-system-aarch64 cannot dump a DTB here: {r.stderr.strip()}")
    return (d / "base.dtb").read_bytes()


def test_v9_matches_seed_000(base_dtb):
    text = seed_text("000")
    block = text[text.index("ranges; <--- set default ranges"):text.index("Host SCMI OSPM channel")]
    want, cells = seed_agents(block)
    b = load_board(SEED_BOARD)
    dt = HostDT(base_dtb, b)
    dt.add_sci_config("v9", dom0_agent=b.agent("dom0"), secondary_cells=cells)
    cfg = "/chosen/xen/xen_scmi_config"
    assert composed_agents(dt.tree, cfg) == (want, cells)
    assert dt.tree.get_property("compatible", cfg).value == "xen,sci"
    dom0_id = int(re.search(r"xen,dom0-sci-agent-id\s*=\s*<(\d+)>", block).group(1))
    assert dt.tree.get_property("xen,dom0-sci-agent-id", cfg).value == dom0_id
    # Xen's management channel: the scmi_xen node
    xen_fid = int(re.search(r"arm,smc-id = <(0x[0-9a-f]+)>; <--- Xen management", block).group(1), 16)
    scmi = cfg + "/scmi"
    assert dt.tree.get_property("compatible", scmi).value == "arm,scmi-smc"
    assert dt.tree.get_property("arm,smc-id", scmi).value == xen_fid
    assert dt.tree.get_property("#access-controller-cells", scmi).value == 1
    assert dt.tree.get_property("#address-cells", scmi).value == 1
    assert dt.tree.get_property("#size-cells", scmi).value == 0
    for p in ("#address-cells", "#size-cells"):
        assert dt.tree.get_property(p, cfg).value == 2
    assert dt.tree.exist_property("ranges", cfg) and dt.tree.exist_property("ranges", "/chosen/xen")


def test_v9_two_cells_matches_seed_000(base_dtb):
    text = seed_text("000")
    start = text.index("#scmi-secondary-agents-cells = <2>")
    block = text[text.rindex("chosen {", 0, start):start + 60]
    # the 2-cell example names the shmem labels of the 3-cell example
    labels = text[text.index("ranges; <--- set default ranges"):text.index("Host SCMI OSPM channel")]
    want, cells = seed_agents(block, labels)
    assert cells == 2
    b = load_board("qemu-virt")
    dt = HostDT(base_dtb, b)
    dt.add_sci_config("v9", dom0_agent=b.agent("dom0"), secondary_cells=2)
    assert composed_agents(dt.tree, "/chosen/xen/xen_scmi_config") == (want, 2)


def test_v5_matches_booting_txt_of_seed_001(base_dtb, tmp_path):
    text = seed_text("001")
    start = text.index("SCMI SMC multi-agent support\n====")
    block = text[start:text.index("#scmi-secondary-agents-cells", start) + 60]
    # the posted example labels two nodes scmi_shm_3; the second is plainly scmi_shm_4
    block = block.replace("scmi_shm_3: sram@47ff4000", "scmi_shm_4: sram@47ff4000")
    want, cells = seed_agents(block)
    # a board modelled on that example: its agents are the secondaries, Xen's agent is apart
    agents = "".join(f'[[scmi.agents]]\nid = {aid}\nname = "a{aid}"\nrole = "guest"\nfunc_id = {fid:#x}\n'
                     f'shmem = {shm:#x}\n' for fid, shm, aid in want)
    agents += '[[scmi.agents]]\nid = 9\nname = "xen"\nrole = "management"\nfunc_id = 0x82000010\nshmem = 0x47ff8000\n'
    p = tmp_path / "v5.toml"
    p.write_text('[board]\nname = "v5-example"\n[qemu]\nmachine = "virt,secure=on,virtualization=on,gic-version=3"\ncpu = "max"\nmemory_mib = 2048\n'
                 '[memory]\nram_base = 0x40000000\nram_size = 0x80000000\n'
                 '[scmi]\nshmem_base = 0x47ff0000\nshmem_size = 0x10000\n' + agents)
    b = load_board(p)
    secondaries = list(b.guests)
    dt = HostDT(base_dtb, b)
    dt.add_sci_config("v5", dom0_agent=None, secondary_cells=cells, secondaries=secondaries)
    got, got_cells = composed_agents(dt.tree, "/chosen/xen,config")
    assert (sorted(got), got_cells) == (sorted(want), cells)
    assert dt.tree.get_property("arm,smc-id", "/chosen/xen,config/scmi").value == b.management.func_id


def test_dom0_channel_and_carveout(base_dtb):
    b = load_board("qemu-virt")
    dt = HostDT(base_dtb, b)
    dt.add_carveout()
    dt.add_firmware_scmi(b.agent("dom0"))
    reg = list(dt.tree.get_property("reg", f"/reserved-memory/scmi-shmem@{b.shmem_base:x}").data)
    assert reg == [0, b.shmem_base, 0, b.shmem_size]
    assert dt.tree.exist_property("no-map", f"/reserved-memory/scmi-shmem@{b.shmem_base:x}")
    assert dt.tree.get_property("arm,smc-id", "/firmware/scmi").value == 0x82000002
    assert dt.tree.get_property("#clock-cells", "/firmware/scmi/protocol@14").value == 1
    assert dt.tree.get_property("#reset-cells", "/firmware/scmi/protocol@16").value == 1
    assert dt.tree.get_property("#power-domain-cells", "/firmware/scmi/protocol@11").value == 1
    assert not dt.tree.exist_property("kaslr-seed", "/chosen"), "DTBs must be reproducible"


def test_secondary_ids_override_one_channel(base_dtb):
    """bad-config: the entry of guest3's channel carries dom0's id, the others their own."""
    b = load_board("qemu-virt")
    dt = HostDT(base_dtb, b)
    dt.add_sci_config("v5", dom0_agent=b.agent("dom0"), ids={"guest3": b.agent("dom0").id})
    got, cells = composed_agents(dt.tree, "/chosen/xen,config")
    want = {a.func_id: (b.agent("dom0").id if a.name == "guest3" else a.id)
            for a in b.agents if a.role != "management"}
    assert cells == 3 and {func: aid for func, _, aid in got} == want


def test_access_controllers_and_bad_node(base_dtb, tmp_path):
    b = load_board("qemu-virt")
    dt = HostDT(base_dtb, b)
    dt.add_sci_config("v5", dom0_agent=b.agent("dom0"))
    ph = dt.tree.get_property("phandle", "/chosen/xen,config/scmi").value
    rtc = b.device("rtc")
    assert list(dt.tree.get_property("access-controllers", rtc.node).data) == [ph, rtc.id]
    p = tmp_path / "b.toml"
    p.write_text((BOARDS_DIR / "qemu-virt.toml").read_text().replace('"/pl031@9010000"', '"/rtc@1234"'))
    with pytest.raises(HarnessError, match=r"scmi.devices \(rtc\).node.*not in QEMU's device tree"):
        HostDT(base_dtb, load_board(p)).add_sci_config("v5", dom0_agent=None)


def test_xen_boot_modules_and_dom0less(base_dtb, tmp_path):
    from harness.plan.dt import DomU
    b = load_board(SEED_BOARD)
    k = tmp_path / "Image"
    k.write_bytes(b"k" * 5000)
    dt = HostDT(base_dtb, b)
    dt.set_xen_boot("console=dtuart", Module(k, 0x48000000), Module(k, 0x4a000000), "console=hvc0")
    dt.add_dom0less(DomU("domU1", Module(k, 0x50000000), agent=b.guests[0]), "v5")
    assert list(dt.tree.get_property("reg", "/chosen/module@48000000").data) == [0, 0x48000000, 0, 5000]
    assert dt.tree.get_property("compatible", "/chosen/module@4a000000").data == ["multiboot,ramdisk",
                                                                                 "multiboot,module"]
    assert dt.tree.get_property("xen,sci_type", "/chosen/domU1").value == "scmi_smc_multiagent"
    assert dt.tree.get_property("xen,sci_agent_id", "/chosen/domU1").value == b.guests[0].id
    assert xen_cmdline_scmi("v5", b.agent("dom0")) == ["dom0_scmi_agent_id=0"]
    assert xen_cmdline_scmi("v9", b.agent("dom0")) == []
    out = dt.write(tmp_path / "host.dtb")
    assert "xen,xen-bootargs" in out.with_suffix(".dts").read_text()


def test_guest_partial_dt_matches_the_toolstack_example():
    """Seed 000/001: /passthrough { sram@22001000 {arm,scmi-shmem}; firmware { scmi {arm,smc-id} } }."""
    b = load_board("qemu-virt")
    t = fdt.parse_dtb(guest_partial_dt(b, b.guests[0]))
    assert t.get_property("compatible", "/passthrough/sram@22001000").value == "arm,scmi-shmem"
    assert list(t.get_property("reg", "/passthrough/sram@22001000").data) == [0, 0x22001000, 0, 0x1000]
    assert t.get_property("arm,smc-id", "/passthrough/firmware/scmi").value == 0x82000004
    t2 = fdt.parse_dtb(guest_partial_dt(b, b.guests[0], dom0less_host_shmem=True))
    assert list(t2.get_property("xen,reg", "/passthrough/sram@22001000").data) == \
        [0, 0x47ff2000, 0, 0x1000, 0, 0x22001000]
