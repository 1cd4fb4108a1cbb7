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
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .board import Board
from .console import Console
from .dt import DomU, HostDT, Module, xen_cmdline_scmi
from .errors import HarnessError
from .qemu import QemuMachine

log = logging.getLogger(__name__)

BL33_BASE = 0x40200000      # Xen or Linux, where TF-A's BL31 jumps (see build/tfa.py)
MODULES_FROM = 0x08000000   # offset into RAM above which boot modules go (clear of BL33)
ALIGN = 0x200000


class State(enum.IntEnum):
    OFF = 0
    FIRMWARE = 1     # TF-A up, our SCMI server initialised
    XEN = 2          # Xen's banner (skipped when Linux is BL33)
    KERNEL = 3       # dom0's (or the native) Linux kernel started
    SHELL = 4        # dom0's (or the native Linux's) shell answers


@dataclass(frozen=True)
class BootSpec:
    """What to boot. xen=None boots Linux directly as BL33 (no hypervisor)."""
    name: str
    xen: str | None = "multiagent"       # hypervisor variant (images/xen/variants.toml)
    profile: str = "v5"                  # SCMI binding profile: single | v5 | v9 | none
    dom0_scmi: bool = True               # give dom0 (or native Linux) its SCMI agent
    secondary_cells: int = 3             # #scmi-secondary-agents-cells (3: ids given; 2: discovered)
    xen_args: tuple[str, ...] = ()
    kernel_args: tuple[str, ...] = ()
    domus: tuple[DomU, ...] = ()
    passthrough: tuple[str, ...] = ()    # SCMI devices (board names) kept from dom0 for domUs

    def describe(self) -> str:
        return f"{self.name}: xen={self.xen or 'none'} profile={self.profile}"


# What each stage prints first, per console.
STAGE_PATTERNS = {
    State.FIRMWARE: ("uart1", r"NOTICE:  Booting Trusted Firmware"),
    State.XEN: ("uart0", r"Xen version \S+"),
    State.KERNEL: ("uart0", r"Booting Linux on physical CPU"),
    State.SHELL: ("uart0", r"HARNESS: dom0 ready"),
}
STAGE_TIMEOUTS = {State.FIRMWARE: 30, State.XEN: 30, State.KERNEL: 60, State.SHELL: 120}
PROMPT = r"dom[0U]# "


def place_modules(board: Board, files: list[Path]) -> list[Module]:
    """Load addresses for boot modules: 2 MiB aligned, above BL33, clear of the SCMI carve-out."""
    addr = board.ram_base + MODULES_FROM
    out = []
    for f in files:
        size = f.stat().st_size
        if addr < board.shmem_base + board.shmem_size and board.shmem_base < addr + size:
            addr = board.shmem_base + board.shmem_size
        addr = (addr + ALIGN - 1) & ~(ALIGN - 1)
        if addr + size > board.ram_base + board.ram_size:
            raise HarnessError(f"boot modules do not fit in RAM ({f.name} at {addr:#x})",
                               where=str(board.path), field="qemu.memory_mib", fix="give the board more memory")
        out.append(Module(f, addr))
        addr += size
    return out


def prepare(builder, spec: BootSpec, workdir: Path, *, gdb: bool = False) -> QemuMachine:
    """Build (through the cache) what spec needs, compose the host DT, return an unstarted machine."""
    board = builder.board
    workdir.mkdir(parents=True, exist_ok=True)
    targets = ["tf-a", "kernel", "rootfs-dom0"] + ([f"xen-{spec.xen}"] if spec.xen else [])
    images = builder.build(targets)
    missing = [t for t in targets if t not in images]
    if missing:
        raise HarnessError(f"cannot build {', '.join(missing)} for boot {spec.name!r}", field="--xen-patches",
                           fix="give the patch series this Xen variant needs")
    kernel, rootfs = images["kernel"] / "Image", images["rootfs-dom0"] / "rootfs.cpio"
    bl33 = images[f"xen-{spec.xen}"] / "xen" if spec.xen else kernel
    modules = place_modules(board, [kernel, rootfs] if spec.xen else [rootfs])
    loaders = [(bl33, BL33_BASE)] + [(m.path, m.addr) for m in modules]
    for d in spec.domus:
        loaders += [(m.path, m.addr) for m in (d.kernel, d.ramdisk, d.partial_dtb) if m]

    machine = QemuMachine(board, workdir, bios=images["tf-a"] / "flash.bin", loaders=loaders, gdb=gdb)
    base = machine.dump_dtb(workdir / "qemu-base.dtb")
    dt = HostDT(base.read_bytes(), board)
    dt.add_carveout()
    dom0 = board.agent("dom0")
    if spec.dom0_scmi and dom0 and spec.profile != "none":
        dt.add_firmware_scmi(dom0)
    if spec.xen:
        xen_args = ["console=dtuart", "loglvl=all", "guest_loglvl=all", "dom0_mem=768M"]
        if spec.profile in ("v5", "v9"):
            dt.add_sci_config(spec.profile, dom0_agent=dom0 if spec.dom0_scmi else None,
                              secondary_cells=spec.secondary_cells)
            xen_args += xen_cmdline_scmi(spec.profile, dom0 if spec.dom0_scmi else None)
        xen_args += list(spec.xen_args)
        dom0_args = ["console=hvc0", "earlycon=xen", "panic=-1", *spec.kernel_args]
        dt.set_xen_boot(" ".join(xen_args), modules[0], modules[1], " ".join(dom0_args))
        dt.reserve_for_guests(spec.passthrough)
        for d in spec.domus:
            dt.add_dom0less(d, spec.profile)
    else:
        dt.set_linux_boot(" ".join(["console=ttyAMA0", "panic=-1", *spec.kernel_args]), modules[0])
    machine.dtb = dt.write(workdir / "host.dtb")
    (workdir / "boot-spec.json").write_text(json.dumps(
        {**asdict(spec), "loaders": [(str(f), hex(a)) for f, a in loaders],
         "images": {k: str(v.path) for k, v in images.items()}}, indent=2, default=str))
    return machine


class System:
    """A booted (or booting) system: stages, shell access, timings."""

    def __init__(self, machine: QemuMachine, spec: BootSpec):
        self.machine, self.spec = machine, spec
        self.state = State.OFF
        self.stage_times: dict[str, float] = {}
        self._markers = itertools.count(1)

    @property
    def console(self) -> Console:
        return self.machine.uart0

    @property
    def trace(self) -> Console:
        return self.machine.uart1

    def transition(self, target: State) -> None:
        """Walk the boot up to target, waiting for each stage's first line."""
        if self.state == State.OFF and not self.machine.is_running():
            self.machine.start()
        for stage in State:
            if stage <= self.state or stage > target:
                continue
            if stage == State.XEN and not self.spec.xen:
                continue
            con, pattern = STAGE_PATTERNS[stage]
            t0 = time.monotonic()
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

    def shell(self, command: str, timeout: float = 30, check: bool = True) -> tuple[str, int]:
        """Run command in the shell on UART0; return (output, exit status)."""
        if self.state < State.SHELL:
            self.transition(State.SHELL)
        n = next(self._markers)
        self.console.skip()     # what came before the command is not its output
        # The echoed command shows '$?' literally, so only the real status line matches.
        self.console.sendline(f"{command}; echo \"<<rc=$?:{n}>>\"")
        m = self.console.expect(rf"<<rc=(\d+):{n}>>", timeout=timeout)
        out = _strip_echo(m.before, f"<<rc=$?:{n}>>")
        self.console.expect(PROMPT, timeout=10)
        rc = int(m.group(1))
        if check and rc != 0:
            raise HarnessError(f"`{command}` exited {rc} in {self.spec.name}:\n{out}", field="shell")
        return out, rc

    def put_file(self, path: str, data: bytes, chunk: int = 64) -> None:
        """Write a small file into the guest through the shell (base64 over the console, in
        short lines: Xen's console input ring drops the tail of long ones)."""
        import base64
        text = base64.b64encode(data).decode()
        self.shell(f": > {path}.b64")
        for i in range(0, len(text), chunk):
            self.shell(f"echo {text[i:i + chunk]} >> {path}.b64")
        self.shell(f"base64 -d {path}.b64 > {path} && rm {path}.b64")

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

    def timings(self) -> dict:
        return dict(self.stage_times)


def _strip_echo(text: str, echoed_marker: str) -> str:
    """A command's output: what follows the terminal's echo of the command line."""
    text = text.replace("\r", "")
    cut = text.find(echoed_marker)
    if cut >= 0:
        text = text[text.find("\n", cut) + 1:] if "\n" in text[cut:] else ""
    return text.strip()
