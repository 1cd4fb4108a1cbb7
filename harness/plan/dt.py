"""Device-tree composer: the base DTB that QEMU dumps for the exact machine, plus
everything the board file says firmware, Xen and the guests must agree on.

What differs between revisions of Xen's SCMI binding (where the config node lives, how
dom0's agent is named, the dom0less property names) comes from a binding profile
(harness/data/profiles.py: single, scmi-smc-passthrough, v5, v10); nothing here compares
profile names.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import fdt

from ..data.board import Agent, Board
from ..errors import HarnessError
from ..data.profiles import Profile, profile as get_profile

# SCMI protocol id -> (name, the provider cells Linux wants): the one table, harness/images/scmi/protocols.py
from ..images.scmi.protocols import DT_PROTOCOLS as PROTOCOLS  # noqa: E402
GUEST_SHMEM_IPA = 0x22001000    # where a domU sees its SCMI page (the seeds' choice)


@dataclass(frozen=True)
class Module:
    """A file that QEMU's loader puts at addr."""
    path: Path
    addr: int

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass(frozen=True)
class DomU:
    """A dom0less domain: kernel, ramdisk, optional partial DT, optional SCMI agent."""
    name: str
    kernel: Module
    ramdisk: Module | None = None
    partial_dtb: Module | None = None
    bootargs: str = "console=ttyAMA0"
    memory_mib: int = 256
    cpus: int = 1
    agent: Agent | None = None


# Ways to break Xen's SCMI configuration on purpose (bad-config scenarios, boot.dt_breaks):
# each reaches one error path of the driver's DT parsing
DT_BREAKS = {
    "no-secondary-agents": "scmi-secondary-agents left out",
    "secondary-agents-short": "scmi-secondary-agents one cell short of whole entries",
    "dangling-shmem-phandle": "the last secondary agent's shmem phandle points at no node",
    "no-smc-id": "the management node without arm,smc-id",
    "mgmt-shmem-size": "the management channel's shmem 0x800 bytes, not a whole page",
    "mgmt-dangling-shmem": "the management node's shmem phandle points at no node",
    "shmem-no-reg": "the last secondary agent's shmem node without reg",
}


def shmem_node(parent: str, addr: int) -> str:
    """The path of an arm,scmi-shmem node for the page at addr below parent."""
    return f"{parent.rstrip('/')}/sram@{addr:x}"


def words(*values: int) -> list[int]:
    return [v & 0xFFFFFFFF for v in values]


def reg64(addr: int, size: int) -> list[int]:
    return words(addr >> 32, addr, size >> 32, size)


class HostDT:
    """A mutable host DT: start from QEMU's dump, add nodes, write .dtb + .dts."""

    def __init__(self, base_dtb: bytes, board: Board):
        self.board = board
        self.tree = fdt.parse_dtb(base_dtb)
        for seed in ("rng-seed", "kaslr-seed"):     # random per dump: keep DTBs reproducible
            for chosen in ("/chosen", "/secure-chosen"):
                if self.tree.exist_node(chosen) and self.tree.exist_property(seed, chosen):
                    self.tree.remove_property(seed, chosen)
        self._next_phandle = 1 + max([p.value for _, _, props in self.tree.walk()
                                      for p in props if p.name == "phandle"] or [0])

    # -- primitives
    def node(self, path: str) -> fdt.Node:
        """Get a node, creating it (and its parents) if needed."""
        if not self.tree.exist_node(path):
            parent, _, name = path.rstrip("/").rpartition("/")
            self.tree.add_item(fdt.Node(name), parent or "/", create=True)
        return self.tree.get_node(path)

    def set(self, path: str, name: str, *values) -> None:
        """Set a property: ints -> cells, strs -> strings, bytes -> bytes, none -> empty."""
        node = self.node(path)
        if not values:
            prop = fdt.Property(name)
        elif isinstance(values[0], str):
            prop = fdt.PropStrings(name, *values)
        elif isinstance(values[0], (bytes, bytearray)):
            prop = fdt.PropBytes(name, data=list(values[0]))
        elif isinstance(values[0], list):
            prop = fdt.PropWords(name, *words(*values[0]))
        else:
            prop = fdt.PropWords(name, *words(*values))
        if node.exist_property(name):
            node.remove_property(name)
        node.append(prop)

    def phandle(self, path: str) -> int:
        node = self.node(path)
        if node.exist_property("phandle"):
            return node.get_property("phandle").value
        ph = self._next_phandle
        self._next_phandle += 1
        node.append(fdt.PropWords("phandle", ph))
        return ph

    def exists(self, path: str) -> bool:
        return self.tree.exist_node(path)

    # -- board-derived pieces
    def add_carveout(self) -> None:
        """Reserve the SCMI carve-out (no-map) so no OS, Xen or allocator uses it as RAM."""
        b = self.board
        rm = "/reserved-memory"
        self.set(rm, "#address-cells", 2)
        self.set(rm, "#size-cells", 2)
        self.set(rm, "ranges")
        path = f"{rm}/scmi-shmem@{b.shmem_base:x}"
        self.set(path, "reg", reg64(b.shmem_base, b.shmem_size))
        self.set(path, "no-map")

    def add_shmem(self, parent: str, agent: Agent, addr: int | None = None, size: int = 0x1000) -> int:
        """An arm,scmi-shmem node for agent's page; returns its phandle."""
        addr = agent.shmem if addr is None else addr
        path = shmem_node(parent, addr)
        self.set(path, "compatible", "arm,scmi-shmem")
        self.set(path, "reg", reg64(addr, size))
        return self.phandle(path)

    def add_scmi_node(self, path: str, agent: Agent, shmem_phandle: int, *, protocols=True,
                      access_controller=False) -> int:
        self.set(path, "compatible", "arm,scmi-smc")
        self.set(path, "arm,smc-id", agent.func_id)
        self.set(path, "shmem", shmem_phandle)
        self.set(path, "#address-cells", 1)
        self.set(path, "#size-cells", 0)
        if access_controller:
            self.set(path, "#access-controller-cells", 1)
        if protocols:
            for pid, (_, cells) in PROTOCOLS.items():
                if pid == 0x10 or not self._board_has(pid):
                    continue
                sub = f"{path}/protocol@{pid:x}"
                self.set(sub, "reg", pid)
                if cells:        # one cell each (Linux's arm,scmi.yaml: #thermal-sensor-cells const 1 too)
                    self.set(sub, cells, 1)
        return self.phandle(path)

    def _board_has(self, pid: int) -> bool:
        b = self.board
        return bool({0x11: b.power_domains, 0x14: b.clocks, 0x15: b.sensors, 0x16: b.resets}[pid])

    def add_firmware_scmi(self, agent: Agent) -> int:
        """The OSPM channel Linux (native or dom0) uses: /firmware/scmi + its shmem node."""
        shm = self.add_shmem("/", agent)
        return self.add_scmi_node("/firmware/scmi", agent, shm)

    def add_access_controllers(self, controller: int) -> None:
        """access-controllers = <&scmi_xen ID> on the node every SCMI device stands for."""
        for dev in self.board.devices:
            if not self.exists(dev.node):
                raise HarnessError(f"node {dev.node} of device {dev.name!r} is not in QEMU's device tree",
                                   where=str(self.board.path), field=f"scmi.devices ({dev.name}).node",
                                   fix="use a node path of the dumped DTB (see the .dts in the artifacts)")
            self.set(dev.node, "access-controllers", controller, dev.id)

    def reserve_for_guests(self, device_names) -> None:
        """xen,passthrough on these devices' nodes: Xen keeps them from dom0 for a domU."""
        for name in device_names:
            self.set(self.board.device(name).node, "xen,passthrough")

    def add_sci_config(self, profile: Profile | str, *, dom0_agent: Agent | None, secondary_cells: int = 3,
                       secondaries: list[Agent] | None = None, shmem_size: int = 0x1000,
                       access_controller: str | None = None, ids: dict[str, int] | None = None,
                       breaks: tuple[str, ...] = ()) -> None:
        """Xen's multi-agent configuration below /chosen, where the profile puts it.
        ids: {agent name: id} written for that agent's channel instead of its own (a
        misconfiguration for bad-config scenarios: two channels with one id).
        access_controller: the node access-controllers phandles point at (default: the
        management node, the one Xen acts on; a path such as /firmware/scmi composes what
        v10's documentation shows instead). breaks: DT_BREAKS to apply (bad-config)."""
        b = self.board
        unknown = [x for x in breaks if x not in DT_BREAKS]
        if unknown:
            raise HarnessError(f"unknown DT break(s) {unknown}", field="boot.dt_breaks",
                               fix="use " + ", ".join(DT_BREAKS))
        prof = get_profile(profile) if isinstance(profile, str) else profile
        if prof.config_node is None:
            raise HarnessError(f"profile {prof.name!r} has no multi-agent configuration", field="profile",
                               fix="use a multi-agent profile (v5, v10)")
        secondaries = [a for a in b.agents if a.role != "management"] if secondaries is None else secondaries
        self.set("/chosen", "#address-cells", 2)
        self.set("/chosen", "#size-cells", 2)
        self.set("/chosen", "ranges")
        cfg = prof.config_node
        parent = cfg.rsplit("/", 1)[0]
        if parent != "/chosen":
            self.set(parent, "ranges")      # so the shmem reg below translates
        if prof.config_compatible:
            self.set(cfg, "compatible", prof.config_compatible)
        self.set(cfg, "#address-cells", 2)
        self.set(cfg, "#size-cells", 2)
        self.set(cfg, "ranges")
        cells = []
        for a in secondaries:
            ph = self.add_shmem(cfg, a, size=shmem_size)
            if "dangling-shmem-phandle" in breaks and a is secondaries[-1]:
                ph = 0xDEAD          # no node has it
            if "shmem-no-reg" in breaks and a is secondaries[-1]:
                self.node(shmem_node(cfg, a.shmem)).remove_property("reg")
            cells += [a.func_id, ph] + ([(ids or {}).get(a.name, a.id)] if secondary_cells == 3 else [])
        if "secondary-agents-short" in breaks:
            cells = cells[:-1]       # the last entry one cell short
        if "no-secondary-agents" not in breaks:
            self.set(cfg, "scmi-secondary-agents", cells)
        self.set(cfg, "#scmi-secondary-agents-cells", secondary_cells)
        if prof.dom0_agent_property and dom0_agent is not None:
            self.set(cfg, prof.dom0_agent_property, dom0_agent.id)
        mgmt = b.management
        mgmt_shmem = self.add_shmem(cfg, mgmt, size=0x800 if "mgmt-shmem-size" in breaks else 0x1000)
        controller = self.add_scmi_node(f"{cfg}/scmi", mgmt, mgmt_shmem, protocols=False, access_controller=True)
        if "no-smc-id" in breaks:
            self.node(f"{cfg}/scmi").remove_property("arm,smc-id")
        if "mgmt-dangling-shmem" in breaks:
            self.set(f"{cfg}/scmi", "shmem", 0xDEAD)    # no node has it
        if access_controller:
            if not self.exists(access_controller):
                raise HarnessError(f"access-controllers target {access_controller} is not in the host DT",
                                   field="access_controller", fix="name /firmware/scmi or leave it unset")
            controller = self.phandle(access_controller)
            self.set(access_controller, "#access-controller-cells", 1)
        self.add_access_controllers(controller)

    def set_linux_boot(self, bootargs: str, initrd: Module | None) -> None:
        """Linux booted directly as BL33: bootargs and initrd in /chosen."""
        self.set("/chosen", "bootargs", bootargs)
        if initrd:
            self.set("/chosen", "linux,initrd-start", [initrd.addr >> 32, initrd.addr])
            self.set("/chosen", "linux,initrd-end", [(initrd.addr + initrd.size) >> 32, initrd.addr + initrd.size])

    def set_xen_boot(self, xen_bootargs: str, kernel: Module, ramdisk: Module | None, dom0_bootargs: str) -> None:
        """Xen booted as BL33: its command line and dom0's boot modules in /chosen."""
        self.set("/chosen", "#address-cells", 2)
        self.set("/chosen", "#size-cells", 2)
        self.set("/chosen", "xen,xen-bootargs", xen_bootargs)
        self.set("/chosen", "xen,dom0-bootargs", dom0_bootargs)
        self._module("/chosen", kernel, "multiboot,kernel", 2)
        if ramdisk:
            self._module("/chosen", ramdisk, "multiboot,ramdisk", 2)

    def _module(self, parent: str, m: Module, kind: str, cells: int) -> None:
        path = f"{parent}/module@{m.addr:x}"
        self.set(path, "compatible", kind, "multiboot,module")
        self.set(path, "reg", reg64(m.addr, m.size) if cells == 2 else words(m.addr, m.size))

    def add_dom0less(self, domu: DomU, profile: Profile | str) -> None:
        path = f"/chosen/{domu.name}"
        self.set(path, "compatible", "xen,domain")
        self.set(path, "#address-cells", 2)
        self.set(path, "#size-cells", 2)
        self.set(path, "memory", [0, domu.memory_mib * 1024])
        self.set(path, "cpus", domu.cpus)
        self.set(path, "vpl011")
        self._module(path, domu.kernel, "multiboot,kernel", 2)
        self.set(f"{path}/module@{domu.kernel.addr:x}", "bootargs", domu.bootargs)
        if domu.ramdisk:
            self._module(path, domu.ramdisk, "multiboot,ramdisk", 2)
        if domu.partial_dtb:
            self._module(path, domu.partial_dtb, "multiboot,device-tree", 2)
        if domu.agent is not None:
            prof = get_profile(profile) if isinstance(profile, str) else profile
            if prof.sci_type is None:
                raise HarnessError(f"profile {prof.name!r} gives no domU SCMI", field=f"dom0less {domu.name}.agent",
                                   fix="use a SUT whose profile has guest-scmi, or drop the guest's agent")
            self.set(path, "xen,sci_type", prof.sci_type)
            if prof.dom0less_agent_property:
                self.set(path, prof.dom0less_agent_property, domu.agent.id)

    def dtb(self) -> bytes:
        return self.tree.to_dtb(version=17)

    def write(self, path: Path) -> Path:
        """Write PATH (.dtb) and PATH with .dts beside it, for humans."""
        return write_dt(self.dtb(), path)


def write_dt(blob: bytes, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    dts = path.with_suffix(".dts")
    if shutil.which("dtc"):
        r = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", "-o", str(dts), str(path)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return path
    dts.write_text(fdt.parse_dtb(blob).to_dts())
    return path


def device_page(node: str) -> int:
    """The page holding a QEMU virt device, from its node's unit address (/virtio_mmio@a000200)."""
    try:
        return int(node.rsplit("@", 1)[1], 16) & ~0xFFF
    except (IndexError, ValueError):
        raise HarnessError(f"device node {node!r} has no unit address", field="scmi.devices.node",
                           fix="name a node like /virtio_mmio@a000000") from None


def guest_partial_dt(board: Board, agent: Agent | None, *, shmem_ipa: int = GUEST_SHMEM_IPA,
                     dom0less_host_shmem: bool = False, passthrough=(), uses=()) -> bytes:
    """The partial DT a domU gets (xl `device_tree` or a dom0less multiboot,device-tree):
    /passthrough with the agent's shmem page at shmem_ipa and an arm,scmi-smc node.
    For dom0less the shmem node also carries xen,reg (host page -> IPA) and
    xen,force-assign-without-iommu.

    Devices (board names) in `uses` or `passthrough` get a consumer node: an
    mmc-pwrseq-simple (a built-in driver that touches no MMIO) whose power-domains
    point at the device's SCMI power domain, so the guest's Linux powers it on
    through its agent when the driver binds - SUCCESS if the agent holds the
    device's permission, DENIED if not. Devices in `passthrough` also get xen,reg
    (their page, mapped 1:1), xen,path (the host node, whose access-controllers make
    Xen send SET_DEVICE_PERMISSIONS) and xen,force-assign-without-iommu."""
    base = fdt.FDT()
    base.add_item(fdt.PropWords("#address-cells", 2))
    base.add_item(fdt.PropWords("#size-cells", 2))
    dt = HostDT(base.to_dtb(version=17), board)
    pt = "/passthrough"
    dt.set(pt, "compatible", "simple-bus")
    dt.set(pt, "ranges")
    dt.set(pt, "#address-cells", 2)
    dt.set(pt, "#size-cells", 2)
    power = None
    if agent is not None:
        shm = dt.add_shmem(pt, agent, addr=shmem_ipa)
        if dom0less_host_shmem:
            node = shmem_node(pt, shmem_ipa)
            dt.set(node, "xen,reg", reg64(agent.shmem, 0x1000)[:4] + words(shmem_ipa >> 32, shmem_ipa))
            dt.set(node, "xen,force-assign-without-iommu")
        dt.set(f"{pt}/firmware", "compatible", "simple-bus")
        scmi = f"{pt}/firmware/scmi"
        dt.add_scmi_node(scmi, agent, shm)
        if dt.exists(f"{scmi}/protocol@11"):
            power = dt.phandle(f"{scmi}/protocol@11")
    for name in dict.fromkeys([*passthrough, *uses]):
        dev = board.device(name)
        page = device_page(dev.node)
        node = f"{pt}/{dev.name.replace('_', '-')}@{page:x}"
        dt.set(node, "compatible", "mmc-pwrseq-simple")
        dt.set(node, "reg", reg64(page, 0x1000))
        if power is not None and dev.power_domains:
            dt.set(node, "power-domains", power, dev.power_domains[0])
        if name in passthrough:
            dt.set(node, "xen,reg", reg64(page, 0x1000) + words(page >> 32, page))
            dt.set(node, "xen,path", dev.node)
            dt.set(node, "xen,force-assign-without-iommu")
    return dt.dtb()


def xen_cmdline_scmi(profile: Profile | str, dom0_agent: Agent | None) -> list[str]:
    """Xen command-line options a profile needs (v5 puts dom0's agent there)."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    out = list(prof.xen_options)
    if prof.dom0_agent_option and dom0_agent is not None:
        out.append(f"{prof.dom0_agent_option}={dom0_agent.id}")
    return out
