"""The system under test as a state machine: firmware -> Xen -> dom0 shell.

`BootSpec` says what to boot (scenario data); `prepare()` turns it into a QEMU
machine (images from the build cache, a host DT composed from the board);
`System` drives it: `transition(State.DOM0_SHELL)` walks the boot and records
when each stage appeared, `force()` attaches to a system that is already up,
and `shell()` runs a command in dom0 and returns its output and exit status.
"""
from __future__ import annotations

import enum
import itertools
import json
import logging
import re
import shlex
import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .board import BL33_BASE, BL33_ROOM, MODULES_FROM, Board
from .console import Console
from .dt import DomU, HostDT, Module, device_page, guest_partial_dt, write_dt, xen_cmdline_scmi
from .errors import HarnessError
from .profiles import profile as get_profile
from .qemu import QemuMachine
from .steps import StepLog

log = logging.getLogger(__name__)

ALIGN = 0x200000
# BL33_BASE, BL33_ROOM and MODULES_FROM live in board.py: its carve-out check uses them too

# A guest's name: what xl takes as a domain name, a dom0less /chosen/<name> node and a file name
# in dom0 all accept. A letter first: xl reads an all-digit name as a domid, a leading '-' as an
# option; at most 31 characters, a DT node name's limit; nothing a shell would interpret (the
# commands quote it anyway).
GUEST_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,30}")


class State(enum.IntEnum):
    OFF = 0
    FIRMWARE = 1     # TF-A up, our SCMI server initialised
    XEN = 2          # Xen's banner (skipped when Linux is BL33)
    KERNEL = 3       # dom0's (or the native) Linux kernel started
    SHELL = 4        # dom0's (or the native Linux's) shell answers


@dataclass(frozen=True)
class Guest:
    """A domU of a scenario, dom0less (built by Xen at boot) or xl-created (from dom0)."""
    name: str
    agent: str | None = None          # board agent Xen gives it (xen,sci_agent_id / arm_sci); None: no SCMI
    dt_agent: str | None = None       # the agent whose channel its DT describes (default: agent)
    image: str = "linux"              # linux | scmi-probe
    passthrough: tuple[str, ...] = () # SCMI devices (board names) passed through (xen,path / dtdev)
    uses: tuple[str, ...] = ()        # SCMI devices its DT has a consumer for (power-domains)
    bootargs: str = ""                # kernel command line
    ops: tuple[str, ...] = ()         # scmi-probe: its operations, board names in braces
                                      #   ("setperm:{guest4}:{guest_dev}:1" -> agent/device ids)
    memory_mib: int | None = None     # default: 256 for Linux, 16 for scmi-probe (it needs 4)

    @property
    def memory(self) -> int:
        return self.memory_mib or (16 if self.image == "scmi-probe" else 256)


@dataclass(frozen=True)
class BootSpec:
    """What to boot. xen=None boots Linux directly as BL33 (no hypervisor)."""
    name: str
    xen: str | None = "multiagent"       # hypervisor variant (images/xen/variants.toml); a scenario
                                         # gets it, and the profile, from the SUT
    profile: str = "v5"                  # SCMI binding profile (harness/profiles.py)
    dom0_scmi: bool = True               # give dom0 (or native Linux) its SCMI agent
    firmware_scmi: bool | None = None    # compose /firmware/scmi (dom0's channel) in the host DT;
                                         # None: when dom0 gets SCMI (v10 drops it from dom0's DT
                                         # itself without xen,dom0-sci-agent-id: True shows that)
    access_controller: str | None = None # node access-controllers point at (None: Xen's management
                                         # node; "/firmware/scmi": what v10's docs show)
    secondary_cells: int = 3             # #scmi-secondary-agents-cells (3: ids given; 2: discovered)
    shmem_size: int = 0x1000             # size of the shmem nodes in Xen's SCMI config (bad-config: 0x800)
    secondary_ids: tuple[str, ...] = ()  # "CHANNEL=AGENT" (board agent names): the scmi-secondary-agents
                                         # entry of CHANNEL's channel gives AGENT's id (bad-config: an id
                                         # the firmware gives another channel; needs secondary_cells = 3)
    xen_args: tuple[str, ...] = ()
    kernel_args: tuple[str, ...] = ()
    dom0less: tuple[Guest, ...] = ()     # domUs Xen builds at boot
    xl: tuple[Guest, ...] = ()           # domUs a test creates from dom0 (System.xl_create)
    passthrough: tuple[str, ...] = ()    # more SCMI devices (board names) kept from dom0 for domUs
    network: bool = True                 # a NIC on QEMU's user network and SSH into dom0 (System.ssh);
                                         # on by default: it adds nothing measurable to a boot

    def describe(self) -> str:
        return f"{self.name}: xen={self.xen or 'none'} profile={self.profile}"


# What each stage prints first, per console.
STAGE_PATTERNS = {
    State.FIRMWARE: ("uart1", r"NOTICE:  Booting Trusted Firmware"),
    State.XEN: ("uart0", r"Xen version \S+"),
    State.KERNEL: ("uart0", r"Booting Linux on physical CPU"),
    State.SHELL: ("uart0", r"HARNESS: dom0 ready"),
}
DOM0_MEM_MIB = 768     # dom0_mem: the rest of the board's RAM is the guests' (scenario.py checks it)
XEN_INPUT_PACE = 16    # bytes per write into Xen's console input (see Console.sendline)
STAGE_TIMEOUTS = {State.FIRMWARE: 30, State.XEN: 30, State.KERNEL: 60, State.SHELL: 120}
PROMPT = r"dom0# "      # dom0less guests print on UART0 too: their "domU# " is not dom0's


@dataclass(frozen=True)
class Initrd(Module):
    """An initramfs given as newc archives loaded back to back, one module for Xen or Linux
    (Linux unpacks concatenated archives in turn): the cached rootfs, then small per-boot
    ones, such as the SSH keys of a boot with network=True (harness/ssh.py)."""
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
                                   fix="rebuild it with harness/cpio.py")
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
                           fix="make the image smaller, or raise harness.board.BL33_ROOM (and MODULES_FROM)")


def prepare(builder, spec: BootSpec, workdir: Path, *, gdb: bool = False) -> QemuMachine:
    """Build (through the cache) what spec needs, compose the host DT, return an unstarted machine."""
    board = builder.board
    workdir.mkdir(parents=True, exist_ok=True)
    targets = ["tf-a", "kernel", "rootfs-dom0"] + ([f"xen-{spec.xen}"] if spec.xen else [])
    if spec.dom0less:
        targets.append("rootfs-domu")
    if any(g.image == "scmi-probe" for g in spec.dom0less):
        targets.append("scmi-probe")
    images = builder.build(targets)
    missing = [t for t in targets if t not in images]
    if missing:
        raise HarnessError(f"cannot build {', '.join(missing)} for boot {spec.name!r}", field="--xen-patches",
                           fix="give the patch series this Xen variant needs")
    kernel, rootfs = images["kernel"] / "Image", images["rootfs-dom0"] / "rootfs.cpio"
    bl33 = images[f"xen-{spec.xen}"] / "xen" if spec.xen else kernel
    check_bl33(bl33)
    ssh_keys = None
    if spec.network:
        from . import qemu, ssh
        ssh_keys = ssh.keys(builder.cache.root)
        rootfs = (rootfs, ssh.boot_archive(ssh_keys, ssh.net_conf(
            qemu.GUEST_IP, qemu.USER_NET_PREFIX, qemu.GATEWAY_IP, port=qemu.GUEST_SSH_PORT)))
    files = [kernel, rootfs] if spec.xen else [rootfs]
    for g in spec.dom0less:
        files += dom0less_files(board, g, images, workdir)
    placed = iter(place_modules(board, files))
    modules = [next(placed) for _ in range(2 if spec.xen else 1)]
    domus = [DomU(g.name, next(placed), ramdisk=next(placed) if g.image == "linux" else None,
                  partial_dtb=next(placed), bootargs=guest_bootargs(board, g),
                  memory_mib=g.memory, agent=board.agent_named(g.agent) if g.agent else None)
             for g in spec.dom0less]
    loaders = [(bl33, BL33_BASE)] + [part for m in modules for part in load_parts(m)]
    for d in domus:
        loaders += [(m.path, m.addr) for m in (d.kernel, d.ramdisk, d.partial_dtb) if m]

    machine = QemuMachine(board, workdir, bios=images["tf-a"] / "flash.bin", loaders=loaders, gdb=gdb,
                          network=spec.network)
    machine.ssh_keys = ssh_keys
    base = machine.dump_dtb(workdir / "qemu-base.dtb")
    dt = HostDT(base.read_bytes(), board)
    dt.add_carveout()
    prof = get_profile(spec.profile, where=f"boot {spec.name}.profile")
    check_board_for(board, prof, spec)
    dom0 = board.agent("dom0")
    dom0_agent = dom0 if spec.dom0_scmi and prof.can("dom0-scmi") else None
    # single-agent passthrough: Xen takes /firmware/scmi's channel from dom0 for the domU
    firmware = spec.dom0_scmi if spec.firmware_scmi is None else spec.firmware_scmi
    if dom0 and (firmware or (spec.xen and prof.can("single-passthrough"))):
        dt.add_firmware_scmi(dom0)
    if spec.xen:
        # bootscrub=off: scrubbing 1+ GiB of free RAM costs an emulated CPU ~2 s of every boot
        # (median 12.5 -> 10.3 s to dom0's shell here); nothing on these machines needs it
        xen_args = ["console=dtuart", "loglvl=all", "guest_loglvl=all", f"dom0_mem={DOM0_MEM_MIB}M", "bootscrub=off"]
        if prof.config_node:
            dt.add_sci_config(prof, dom0_agent=dom0_agent, secondary_cells=spec.secondary_cells,
                              shmem_size=spec.shmem_size, access_controller=spec.access_controller,
                              ids=secondary_id_overrides(board, spec))
        xen_args += xen_cmdline_scmi(prof, dom0_agent)
        xen_args += list(spec.xen_args)
        dom0_args = ["console=hvc0", "earlycon=xen", "panic=-1", *spec.kernel_args]
        dt.set_xen_boot(" ".join(xen_args), modules[0], modules[1], " ".join(dom0_args))
        guests = spec.dom0less + spec.xl
        dt.reserve_for_guests(dict.fromkeys([*spec.passthrough, *(d for g in guests for d in g.passthrough)]))
        for d in domus:
            dt.add_dom0less(d, prof)
    else:
        dt.set_linux_boot(" ".join(["console=ttyAMA0", "panic=-1", *spec.kernel_args]), modules[0])
    machine.dtb = dt.write(workdir / "host.dtb")
    machine.images = images
    (workdir / "boot-spec.json").write_text(json.dumps(
        {**asdict(spec), "loaders": [(str(f), hex(a)) for f, a in loaders],
         "images": {k: str(v.path) for k, v in images.items()}}, indent=2, default=str))
    return machine


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
    from .build.probe import bootargs
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


def dom0less_files(board: Board, g: Guest, images, workdir: Path) -> list[Path]:
    """A dom0less guest's boot modules: kernel, (ramdisk), partial DT (written into workdir)."""
    dtb = workdir / f"{g.name}.dtb"
    write_dt(guest_dt(board, g, dom0less=True), dtb)
    if g.image == "scmi-probe":
        return [images["scmi-probe"] / "scmi-probe.bin", dtb]
    return [images["kernel"] / "Image", images["rootfs-domu"] / "rootfs.cpio", dtb]


class System:
    """A booted (or booting) system: stages, shell access, timings."""

    def __init__(self, machine: QemuMachine, spec: BootSpec):
        self.machine, self.spec = machine, spec
        self.state = State.OFF
        self.stage_times: dict[str, float] = {}
        self._markers = itertools.count(1)
        # trace (UART1) position before each guest was created: dom0less guests at 0
        self.marks: dict[str, int] = {g.name: 0 for g in spec.dom0less}
        self._ssh = None
        self.steps = StepLog(machine.workdir / "steps.log")     # what the harness did (harness/steps.py)

    @property
    def console(self) -> Console:
        return self.machine.uart0

    @property
    def trace(self) -> Console:
        return self.machine.uart1

    def transition(self, target: State) -> None:
        """Walk the boot up to target, waiting for each stage's first line."""
        if self.state == State.OFF and not self.machine.is_running():
            with self.steps.step("start", f"qemu {self.spec.describe()}"):
                self.machine.start()
            self.steps.zero = self.machine.started_at
        for stage in State:
            if stage <= self.state or stage > target:
                continue
            if stage == State.XEN and not self.spec.xen:
                continue
            con, pattern = STAGE_PATTERNS[stage]
            t0 = time.monotonic()
            with self.steps.step("stage", f"{stage.name.lower()}: {con} /{pattern}/ ({STAGE_TIMEOUTS[stage]} s)"):
                self.machine.consoles[con].expect(pattern, timeout=STAGE_TIMEOUTS[stage])
            self.stage_times[stage.name.lower()] = round(time.monotonic() - self.machine.started_at, 3)
            log.info("%s: %s after %.1fs (waited %.1fs)", self.spec.name, stage.name,
                     self.stage_times[stage.name.lower()], time.monotonic() - t0)
            self.state = stage
        if target == State.SHELL:
            self.console.expect(PROMPT, timeout=30)

    def force(self, state: State) -> None:
        """Believe the system is already in state (a developer attached to a running one)."""
        self.state = state

    def ssh(self, timeout: float = 60):
        """An SSH client logged in to dom0 as root (harness.ssh.SshClient), for what a console
        does badly: large outputs, files in and out. Needs BootSpec(network=True); waits for
        dom0's shell first; one connection per System, made again if it dropped."""
        from .ssh import SshClient
        if not self.spec.network or self.machine.ssh_keys is None:
            raise HarnessError(f"boot {self.spec.name!r} has no network, so no SSH", field="BootSpec.network",
                               fix=f"boot it with BootSpec({self.spec.name!r}, ..., network=True)")
        if self.state < State.SHELL:
            self.transition(State.SHELL)
        if self._ssh is None or not self._ssh.is_connected:
            self._ssh = SshClient("127.0.0.1", self.machine.ssh_port, self.machine.ssh_keys,
                                  name=f"{self.spec.name} dom0").connect(timeout)
        return self._ssh

    def shell(self, command: str, timeout: float = 30, check: bool = True) -> tuple[str, int]:
        """Run command in the shell on UART0; return (output, exit status)."""
        if self.state < State.SHELL:
            self.transition(State.SHELL)
        with self.steps.step("shell", command):
            out, rc = self._shell(command, timeout)
        if check and rc != 0:
            raise HarnessError(f"`{command}` exited {rc} in {self.spec.name}:\n{out}", field="shell")
        return out, rc

    def _shell(self, command: str, timeout: float) -> tuple[str, int]:
        n = next(self._markers)
        self.console.skip()     # what came before the command is not its output
        # The echoed command shows '$?' literally, so only the real status line matches.
        self.console.sendline(f"{command}; echo \"<<rc=$?:{n}>>\"", pace=XEN_INPUT_PACE if self.spec.xen else 0)
        m = self.console.expect(rf"<<rc=(\d+):{n}>>", timeout=timeout)
        out = _strip_echo(m.before, f"<<rc=$?:{n}>>")
        self.console.expect(PROMPT, timeout=10)
        return out, int(m.group(1))

    def put_file(self, path: str, data: bytes, chunk: int = 64) -> None:
        """Write a file into dom0: over SSH when the boot has a network (one round trip),
        else through the shell (base64 over the console, in short lines: Xen's console input
        ring drops the tail of long ones; ~3 s for a partial DTB)."""
        with self.steps.step("put", f"{path} ({len(data)} bytes)"):
            self._put_file(path, data, chunk)

    def _put_file(self, path: str, data: bytes, chunk: int) -> None:
        if self.spec.network and getattr(self.machine, "ssh_keys", None) is not None:
            local = self.machine.workdir / "put" / path.strip("/").replace("/", "_")
            local.parent.mkdir(exist_ok=True)
            local.write_bytes(data)
            self.ssh().put(local, path, mode=0o644)
            return
        import base64
        text = base64.b64encode(data).decode()
        dst, b64 = shlex.quote(path), shlex.quote(f"{path}.b64")
        self.shell(f": > {b64}")
        for i in range(0, len(text), chunk):
            self.shell(f"echo {text[i:i + chunk]} >> {b64}")      # base64 needs no quoting
        self.shell(f"base64 -d {b64} > {dst} && rm {b64}")

    def switch_input(self, target: str = "Xen", presses: int = 6) -> None:
        """Switch the Xen console's input (CTRL-a three times) until it goes to target:
        "Xen", "DOM0", "DOM1"... (Xen cycles through the domains that have a console)."""
        if not self.spec.xen:
            raise HarnessError("there is no Xen console to switch", field=f"boot {self.spec.name}")
        for _ in range(presses):
            for _ in range(3):
                self.console.sendcontrol("a")
            m = self.console.expect(r"\*\*\* Serial input to (\S+) \(type 'CTRL-a' three times to switch input\)",
                                    timeout=10)
            if m.group(1).upper() == target.upper():
                return
        raise HarnessError(f"Xen's console input never reached {target!r}", field="switch_input",
                           fix="name Xen, DOM0 or a domain that has a console")

    def xen_debug_key(self, key: str, expect: str | None = None, timeout: float = 10) -> str:
        """Send a Xen debug key (e.g. 'q' dumps domains) and return what Xen printed."""
        self.switch_input("Xen")
        mark = self.console.mark()
        self.console.send(key)
        if expect:
            self.console.expect(expect, timeout=timeout)
        self.settle()    # a dump goes on after its first line: let it finish before dom0 speaks
        self.switch_input("DOM0")
        return self.console.text_since(mark)

    def settle(self, quiet: float = 0.5, timeout: float = 10) -> None:
        """Wait until UART0 has been quiet for `quiet` seconds (at most `timeout`)."""
        deadline = time.monotonic() + timeout
        size = -1
        while time.monotonic() < deadline and size != len(self.console.text):
            size = len(self.console.text)
            time.sleep(quiet)

    # -- domUs
    def xl_create(self, g: Guest, timeout: float = 60, paused: bool = False) -> None:
        """Create an xl guest of the scenario: its partial DT and xl.cfg go into dom0 first.
        paused: built but not started (xl create -p), for tests of the domain, not its OS."""
        with self.steps.step("xl-create", g.name + (" (paused)" if paused else "")):
            self._xl_create(g, timeout, paused)

    def _xl_create(self, g: Guest, timeout: float, paused: bool) -> None:
        from .xl import GUEST_DIR, xl_config
        board = self.machine.board
        agent = board.agent_named(g.agent) if g.agent else None
        self.put_file(f"{GUEST_DIR}/{g.name}.dtb", guest_dt(board, g, dom0less=False))
        cfg = xl_config(g.name, agent, profile=get_profile(self.spec.profile), memory_mib=g.memory,
                        dtdev=[board.device(d).node for d in g.passthrough],
                        iomem_pages=[device_page(board.device(d).node) for d in g.passthrough],
                        **({"extra": g.bootargs} if g.bootargs else {}))
        (self.machine.workdir / f"{g.name}.cfg").write_text(cfg)
        self.put_file(f"{GUEST_DIR}/{g.name}.cfg", cfg.encode())
        self.marks[g.name] = self.trace.mark()
        self.shell(f"xl create {'-p ' if paused else ''}{shlex.quote(f'{GUEST_DIR}/{g.name}.cfg')}", timeout=timeout)

    def domid(self, name: str) -> int:
        """A domU's domain id: dom0less guests are created at boot in DT order (d1, d2, ...;
        without xen,enhanced they have no name in xenstore), xl guests are asked for."""
        names = [g.name for g in self.spec.dom0less]
        if name in names:
            return names.index(name) + 1
        out = self.shell(f"xl domid {shlex.quote(name)}")[0]
        # Xen's own console lines ("(XEN) d4v0: vGICD: ...") can land inside dom0's output on UART0
        ids = [line.strip() for line in out.splitlines() if line.strip().isdigit()]
        if not ids:
            raise HarnessError(f"`xl domid {name}` printed no domain id:\n{out}", field="shell")
        return int(ids[-1])

    def guest_log(self, name: str) -> str:
        """What a domU printed so far: a dom0less guest's lines on UART0 (Xen prefixes them
        with "(XEN) DOMn: "), an xl guest's console log that xenconsoled keeps in dom0."""
        names = [g.name for g in self.spec.dom0less]
        if name in names:
            prefix = f"(XEN) DOM{self.domid(name)}: "
            return "\n".join(line[len(prefix):] for line in self.console.text.replace("\r", "").splitlines()
                             if line.startswith(prefix))
        out, _ = self.shell(f"cat {shlex.quote(f'/var/log/xen/console/guest-{name}.log')}", check=False)
        return out

    def wait_guest(self, name: str, until: str, timeout: float = 90) -> str:
        """The domU's log once it shows `until`, or a failure quoting its tail. An xl guest's
        log is watched inside dom0 by one silent command (printing the growing log every
        second would flood the emulated UART the guest shares the CPUs with); it stops early
        on a panic or oops, which the final print then shows to the console engine."""
        with self.steps.step("wait-guest", f"{name}: {until!r} ({timeout:.0f} s)"):
            return self._wait_guest(name, until, timeout)

    def _wait_guest(self, name: str, until: str, timeout: float) -> str:
        if name not in [g.name for g in self.spec.dom0less]:
            path = shlex.quote(f"/var/log/xen/console/guest-{name}.log")
            # [p], [e]: the echo is no oops; a domain that is gone prints nothing more: exit 3 (asked
            # every 2 s: an xl command costs the emulated CPUs the guest boots on)
            watch = ('i=0; until grep -qF -- "$1" "$2" 2>/dev/null || grep -qE "Kernel [p]anic|Internal [e]rror: Oops" '
                     '"$2" 2>/dev/null; do i=$((i+1)); [ $((i % 4)) -ne 0 ] || xl domid "$3" >/dev/null 2>&1 '
                     '|| exit 3; sleep 0.5; done')
            t0 = time.monotonic()
            _, rc = self.shell(f"timeout {int(timeout)} sh -c {shlex.quote(watch)} _ {shlex.quote(until)} {path} "
                               f"{shlex.quote(name)}", timeout=timeout + 15, check=False)
            log_ = self.guest_log(name)
            if until in log_:
                return log_
            why = (f"its domain is gone (xl domid {name} fails) after {time.monotonic() - t0:.0f}s" if rc == 3
                   else f"in {timeout:.0f}s")
            raise AssertionError(f"domU {name!r} never printed {until!r}: {why}; "
                                 f"its console ends:\n{log_[-3000:] or '(nothing: no console log in dom0)'}")
        deadline = time.monotonic() + timeout
        while True:
            log_ = self.guest_log(name)
            if until in log_:
                return log_
            if time.monotonic() > deadline:
                raise AssertionError(f"domU {name!r} never printed {until!r} in {timeout:.0f}s; "
                                     f"its console ends:\n{log_[-3000:]}")
            time.sleep(1)

    def timings(self) -> dict:
        return dict(self.stage_times)


def _strip_echo(text: str, echoed_marker: str) -> str:
    """A command's output: what follows the terminal's echo of the command line."""
    text = text.replace("\r", "")
    cut = text.find(echoed_marker)
    if cut >= 0:
        text = text[text.find("\n", cut) + 1:] if "\n" in text[cut:] else ""
    return text.strip()
