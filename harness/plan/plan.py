"""The boot plan: BootSpec + Board + Profile + image files + QEMU's base DT -> everything
QEMU needs for one boot, as data, composed in one place: where each file is loaded, the
host DT, the dom0less guests' partial DTs, Xen's and dom0's command lines, and the xl
guests' configs and DTs. `compose()` starts no QEMU; it writes only the files it generates
and QEMU loads (the dom0less guests' DTBs, the host DTB) into the boot's directory.
`system.prepare()` builds the images, asks QEMU for the base DT and runs a plan;
`harness plan --scenario X` writes one out for review (DTS, command lines, xl.cfg).

Layout of the flow: data (boards, scenarios: board.py, spec.py, scenario.py) -> plan
(this module, dt.py, xl.py) -> machine (qemu.py, system.py) -> checks (checks.py).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..data.board import BL33_BASE, BL33_ROOM, MODULES_FROM, Board
from .dt import DomU, HostDT, Module, device_page, guest_partial_dt, write_dt, xen_cmdline_scmi
from ..errors import HarnessError
from ..data.profiles import Profile, profile as get_profile
from ..data.spec import DOM0_MEM_MIB, BootSpec, Guest

ALIGN = 0x200000
# BL33_BASE, BL33_ROOM and MODULES_FROM live in board.py: its carve-out check uses them too


@dataclass(frozen=True)
class Plan:
    """One boot, as data."""
    spec: BootSpec
    profile: Profile
    bl33: Path                                  # Xen, or Linux for a native boot, at BL33_BASE
    loaders: tuple[tuple[Path, int], ...]       # every file QEMU's loader puts in place, with its address
    host_dtb: bytes
    xen_cmdline: str | None                     # None: no hypervisor
    kernel_cmdline: str                         # dom0's, or the native Linux's
    dom0less: tuple[DomU, ...] = ()
    guest_dtbs: dict[str, bytes] = field(default_factory=dict)    # dom0less guest -> partial DT
    xl_configs: dict[str, str] = field(default_factory=dict)      # xl guest -> xl.cfg
    xl_dtbs: dict[str, bytes] = field(default_factory=dict)       # xl guest -> partial DT


@dataclass(frozen=True)
class Initrd(Module):
    """An initramfs given as newc archives loaded back to back, one module for Xen or Linux
    (Linux unpacks concatenated archives in turn): the cached rootfs, then small per-boot
    ones, such as the SSH keys of a boot with network=True (harness/machine/ssh.py)."""
    extra: tuple[Path, ...] = ()

    @property
    def parts(self) -> list[tuple[Path, int]]:
        out, addr = [], self.addr
        for p in (self.path, *self.extra):
            out.append((p, addr))
            addr += p.stat().st_size
        return out

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in (self.path, *self.extra))


def load_parts(m: Module) -> list[tuple[Path, int]]:
    """(file, address) of each file QEMU's loader puts in place for module m."""
    return m.parts if isinstance(m, Initrd) else [(m.path, m.addr)]


def secondary_id_overrides(board: Board, spec: BootSpec) -> dict[str, int]:
    """spec.secondary_ids as {channel's agent name: the id its DT entry gives}."""
    agents = {a.name: a for a in board.agents}
    channels = [a.name for a in board.agents if a.role != "management"]
    out = {}
    for entry in spec.secondary_ids:
        channel, sep, agent = entry.partition("=")
        if not sep or channel not in channels or agent not in agents:
            raise HarnessError(f"secondary_ids entry {entry!r} is not CHANNEL=AGENT with agent names of board "
                               f"{board.name!r}", field=f"boot {spec.name}.secondary_ids",
                               fix=f'write e.g. secondary_ids = ["guest3=dom0"]; channels: {", ".join(channels)}; '
                                   f'agents: {", ".join(agents)}')
        out[channel] = agents[agent].id
    if out and spec.secondary_cells != 3:
        raise HarnessError("secondary_ids needs ids in the DT", field=f"boot {spec.name}.secondary_ids",
                           fix="set secondary_cells = 3 (with 2, Xen asks the firmware for every id)")
    return out


def place_modules(board: Board, files: list[Path | tuple[Path, ...]]) -> list[Module]:
    """Load addresses for boot modules: 2 MiB aligned, above BL33, clear of the SCMI carve-out.
    A tuple of files is one Initrd: its archives back to back."""
    addr = board.ram_base + MODULES_FROM
    out = []
    for f in files:
        parts = f if isinstance(f, tuple) else (f,)
        for p in parts[:-1]:
            if p.stat().st_size % 4:     # Linux finds the next archive's header 4-aligned only
                raise HarnessError("newc archive size is not a multiple of 4", where=str(p),
                                   fix="rebuild it with harness/images/cpio.py")
        f = parts[0]
        size = sum(p.stat().st_size for p in parts)
        addr = (addr + ALIGN - 1) & ~(ALIGN - 1)
        if addr < board.shmem_base + board.shmem_size and board.shmem_base < addr + size:
            addr = (board.shmem_base + board.shmem_size + ALIGN - 1) & ~(ALIGN - 1)
        if addr + size > board.ram_base + board.ram_size:
            raise HarnessError(f"boot modules do not fit in RAM ({f.name} at {addr:#x})",
                               where=str(board.path), field="qemu.memory_mib", fix="give the board more memory")
        out.append(Initrd(f, addr, parts[1:]) if len(parts) > 1 else Module(f, addr))
        addr += size
    return out


def check_bl33(image: Path) -> None:
    """The BL33 image (Xen or Linux) fits the room the board's carve-out check leaves it
    (board.fixed_images): its arm64 Image header's image_size counts the BSS too."""
    with open(image, "rb") as f:
        head = f.read(64)
    size = image.stat().st_size
    if len(head) == 64 and head[56:60] == b"ARM\x64":
        size = max(size, struct.unpack_from("<Q", head, 16)[0])
    if size > BL33_ROOM:
        raise HarnessError(f"BL33 image needs {size:#x} bytes at {BL33_BASE:#x}, more than the {BL33_ROOM:#x} "
                           "the board's carve-out check keeps free for it", where=str(image),
                           fix="make the image smaller, or raise harness.data.board.BL33_ROOM (and MODULES_FROM)")


def check_board_for(board: Board, prof, spec: BootSpec) -> None:
    """What the board file cannot know alone: its agent ids within the SUT profile's range
    (v5 1..255, v10 0..254), and RAM for dom0 (dom0_mem) and the guests next to it."""
    if prof.multiagent and spec.xen:
        bad = [a for a in board.agents if a.id not in prof.agent_ids]
        if bad:
            raise HarnessError(f"agent ids {', '.join(f'{a.name}={a.id}' for a in bad)} are outside what profile "
                               f"{prof.name} accepts ({prof.agent_ids.start}..{prof.agent_ids.stop - 1})",
                               where=str(board.path), field="scmi.agents.id",
                               fix=f"renumber them for {prof.name}, or run a SUT whose profile accepts them")
    need = (DOM0_MEM_MIB if spec.xen else 0) + sum(g.memory for g in spec.dom0less) + 128
    if (board.ram_size >> 20) < need:
        raise HarnessError(f"{board.ram_size >> 20} MiB of RAM cannot hold dom0's {DOM0_MEM_MIB} MiB, the dom0less "
                           f"guests and Xen ({need} MiB at least)", where=str(board.path), field="memory.ram_size",
                           fix="give the board more RAM (and qemu.memory_mib to match)")


def guest_dt(board: Board, g: Guest, *, dom0less: bool) -> bytes:
    """A guest's partial DT: its agent's channel (or dt_agent's), its devices."""
    dt_agent = board.agent_named(g.dt_agent or g.agent) if (g.dt_agent or g.agent) else None
    return guest_partial_dt(board, dt_agent, dom0less_host_shmem=dom0less and g.agent is not None,
                            passthrough=g.passthrough, uses=g.uses)


def guest_bootargs(board: Board, g: Guest) -> str:
    """A guest's command line; for scmi-probe, its SMC id and shmem from the board and its
    ops with board names resolved ({guest4} -> that agent's id, {guest_dev} -> the device's)."""
    if g.image != "scmi-probe":
        return g.bootargs or "console=ttyAMA0 panic=-1"
    from ..images.build.probe import bootargs
    from .dt import GUEST_SHMEM_IPA
    ids = {a.name: a.id for a in board.agents} | {d.name: d.id for d in board.devices}
    rung = board.agent_named(g.dt_agent or g.agent) if (g.dt_agent or g.agent) else None
    if rung is None:
        raise HarnessError(f"scmi-probe guest {g.name!r} rings no agent", field=f"{g.name}.agent",
                           fix="give it agent (its own) or dt_agent (the id it rings)")
    try:
        ops = [o.format(**ids) for o in g.ops]
    except KeyError as e:
        raise HarnessError(f"scmi-probe guest {g.name!r}: {e} is neither an agent nor a device of the board",
                           field=f"{g.name}.ops", fix="use the board's agent and device names") from None
    return bootargs(rung.func_id, ops, shmem=GUEST_SHMEM_IPA if g.agent else None, power_off=False)


def dom0less_files(board: Board, g: Guest, images: dict[str, Path], workdir: Path, dtb_blob: bytes) -> list[Path]:
    """A dom0less guest's boot modules: kernel, (ramdisk), partial DT (written into workdir:
    QEMU loads it, and its size places the next module)."""
    dtb = write_dt(dtb_blob, workdir / f"{g.name}.dtb")
    if g.image == "scmi-probe":
        return [images["scmi-probe"], dtb]
    return [images["kernel"], images["rootfs-domu"], dtb]


def compose(board: Board, spec: BootSpec, images: dict[str, Path], base_dtb: bytes, workdir: Path, *,
            extra_initrd: Path | None = None) -> Plan:
    """The plan for spec on board. images: "bl33", "kernel", "rootfs", and for dom0less
    guests "rootfs-domu" / "scmi-probe" (files); extra_initrd: an archive appended to dom0's
    initramfs (the SSH keys of a boot with network=True); base_dtb: what QEMU generates for
    the board's machine arguments (QemuMachine.dump_dtb)."""
    prof = get_profile(spec.profile, where=f"boot {spec.name}.profile")
    check_board_for(board, prof, spec)
    check_bl33(images["bl33"])
    rootfs = (images["rootfs"], extra_initrd) if extra_initrd else images["rootfs"]
    files = [images["kernel"], rootfs] if spec.xen else [rootfs]
    guest_dtbs = {}
    for g in spec.dom0less:
        guest_dtbs[g.name] = guest_dt(board, g, dom0less=True)
        files += dom0less_files(board, g, images, workdir, guest_dtbs[g.name])
    placed = iter(place_modules(board, files))
    modules = [next(placed) for _ in range(2 if spec.xen else 1)]
    domus = tuple(DomU(g.name, next(placed), ramdisk=next(placed) if g.image == "linux" else None,
                       partial_dtb=next(placed), bootargs=guest_bootargs(board, g),
                       memory_mib=g.memory, agent=board.agent_named(g.agent) if g.agent else None)
                  for g in spec.dom0less)
    loaders = [(images["bl33"], BL33_BASE)] + [part for m in modules for part in load_parts(m)]
    for d in domus:
        loaders += [(m.path, m.addr) for m in (d.kernel, d.ramdisk, d.partial_dtb) if m]
    if spec.faults:              # read by our server at boot from the carve-out's last page
        table = workdir / "scmi-faults.bin"
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_bytes(fault_table(board, spec.faults))
        loaders.append((table, board.fault_page))

    dt = HostDT(base_dtb, board)
    dt.add_carveout()
    dom0 = board.agent("dom0")
    dom0_agent = dom0 if spec.dom0_scmi and prof.can("dom0-scmi") else None
    # single-agent passthrough: Xen takes /firmware/scmi's channel from dom0 for the domU
    firmware = spec.dom0_scmi if spec.firmware_scmi is None else spec.firmware_scmi
    if dom0 and (firmware or (spec.xen and prof.can("single-passthrough"))):
        dt.add_firmware_scmi(dom0)
    xen_cmdline = None
    if spec.xen:
        # bootscrub=off: scrubbing 1+ GiB of free RAM costs an emulated CPU ~2 s of every boot
        # (median 12.5 -> 10.3 s to dom0's shell here); nothing on these machines needs it
        xen_args = ["console=dtuart", "loglvl=all", "guest_loglvl=all", f"dom0_mem={DOM0_MEM_MIB}M", "bootscrub=off"]
        if prof.config_node:
            dt.add_sci_config(prof, dom0_agent=dom0_agent, secondary_cells=spec.secondary_cells,
                              shmem_size=spec.shmem_size, access_controller=spec.access_controller,
                              ids=secondary_id_overrides(board, spec), breaks=spec.dt_breaks)
        xen_args += xen_cmdline_scmi(prof, dom0_agent)
        xen_args += list(spec.xen_args)
        xen_cmdline = " ".join(xen_args)
        kernel_cmdline = " ".join(["console=hvc0", "earlycon=xen", "panic=-1", *spec.kernel_args])
        dt.set_xen_boot(xen_cmdline, modules[0], modules[1], kernel_cmdline)
        guests = spec.dom0less + spec.xl
        dt.reserve_for_guests(dict.fromkeys([*spec.passthrough, *(d for g in guests for d in g.passthrough)]))
        for d in domus:
            dt.add_dom0less(d, prof)
    else:
        kernel_cmdline = " ".join(["console=ttyAMA0", "panic=-1", *spec.kernel_args])
        dt.set_linux_boot(kernel_cmdline, modules[0])
    xl = {g.name: xl_guest(board, g, prof) for g in spec.xl}
    return Plan(spec, prof, images["bl33"], tuple(loaders), dt.dtb(), xen_cmdline, kernel_cmdline, domus,
                guest_dtbs, {n: c for n, (_, c) in xl.items()}, {n: d for n, (d, _) in xl.items()})


FAULT_MAGIC, FAULT_ANY, FAULT_MAX = 0x54464353, 0xFFFFFFFF, 16   # images/tf-a/scmi-server/scmi_fault.c


def fault_table(board: Board, faults) -> bytes:
    """The faults as the server reads them: 'SCFT', count, then agent id, target agent id,
    protocol, message, kind, value, times per fault (little-endian words)."""
    from ..images.scmi.protocols import BASE_MESSAGES, BY_NAME
    from ..images.scmi.trace import STATUS
    from ..data.spec import FAULT_KINDS
    if len(faults) > FAULT_MAX:
        raise HarnessError(f"{len(faults)} faults: the server takes at most {FAULT_MAX}", field="faults",
                           fix="ask for fewer")
    words = [FAULT_MAGIC, len(faults)]
    for f in faults:
        agent = FAULT_ANY if f.agent == "any" else board.agent_named(f.agent).id
        target = FAULT_ANY if f.target == "any" else board.agent_named(f.target).id
        message = FAULT_ANY if f.message == "any" else BASE_MESSAGES[f.message]
        value = STATUS[f.status] if f.kind == "status" else f.value
        words += [agent, target, BY_NAME["BASE"].id if f.message != "any" else FAULT_ANY, message, FAULT_KINDS.index(f.kind) + 1,
                  value & 0xFFFFFFFF, f.times]
    return struct.pack(f"<{len(words)}I", *words)


def xl_guest(board: Board, g: Guest, prof: Profile) -> tuple[bytes, str]:
    """An xl guest's partial DT and xl.cfg (System.xl_create puts both into dom0)."""
    from .xl import xl_config
    agent = board.agent_named(g.agent) if g.agent else None
    cfg = xl_config(g.name, agent, profile=prof, memory_mib=g.memory,
                    dtdev=[board.device(d).node for d in g.passthrough],
                    iomem_pages=[device_page(board.device(d).node) for d in g.passthrough],
                    **({"extra": g.bootargs} if g.bootargs else {}))
    return guest_dt(board, g, dom0less=False), cfg



def write_out(plan: Plan, outdir: Path) -> list[Path]:
    """The plan as files a person reviews: host.dts, each guest's .dts, each xl guest's
    .cfg, the command lines and the load map. Returns what it wrote."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = [write_dt(plan.host_dtb, outdir / "host.dtb").with_suffix(".dts")]
    for name, blob in {**plan.guest_dtbs, **plan.xl_dtbs}.items():
        written.append(write_dt(blob, outdir / f"{name}.dtb").with_suffix(".dts"))
    for name, cfg in plan.xl_configs.items():
        (outdir / f"{name}.cfg").write_text(cfg)
        written.append(outdir / f"{name}.cfg")
    (outdir / "cmdlines.txt").write_text(f"xen:    {plan.xen_cmdline or '(no hypervisor)'}\n"
                                         f"kernel: {plan.kernel_cmdline}\n")
    (outdir / "loaders.txt").write_text("".join(f"{addr:#012x}  {path.stat().st_size:>10}  {path}\n"
                                                for path, addr in plan.loaders))
    return written + [outdir / "cmdlines.txt", outdir / "loaders.txt"]
