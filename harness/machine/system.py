"""The system under test as a state machine: firmware -> Xen -> dom0 shell.

`BootSpec` (spec.py) says what to boot; `prepare()` builds its images through the cache
and runs its boot plan (plan.py: loaders, host DT, command lines) on a QEMU machine;
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
import time
from dataclasses import asdict
from pathlib import Path

from .console import Console
from ..plan.dt import write_dt
from ..errors import HarnessError
from ..plan.plan import compose, xl_guest
from ..data.profiles import profile as get_profile
from .qemu import QemuMachine
from ..data.spec import BootSpec, Guest
from .steps import StepLog

log = logging.getLogger(__name__)

ALIGN = 0x200000
# BL33_BASE, BL33_ROOM and MODULES_FROM live in board.py: its carve-out check uses them too

class State(enum.IntEnum):
    OFF = 0
    FIRMWARE = 1     # TF-A up, our SCMI server initialised
    XEN = 2          # Xen's banner (skipped when Linux is BL33)
    KERNEL = 3       # dom0's (or the native) Linux kernel started
    SHELL = 4        # dom0's (or the native Linux's) shell answers


# What each stage prints first, per console.
STAGE_PATTERNS = {
    State.FIRMWARE: ("uart1", r"NOTICE:  Booting Trusted Firmware"),
    State.XEN: ("uart0", r"Xen version \S+"),
    State.KERNEL: ("uart0", r"Booting Linux on physical CPU"),
    State.SHELL: ("uart0", r"HARNESS: dom0 ready"),
}
XEN_INPUT_PACE = 16    # bytes per write into Xen's console input (see Console.sendline)
STAGE_TIMEOUTS = {State.FIRMWARE: 30, State.XEN: 30, State.KERNEL: 60, State.SHELL: 120}
PROMPT = r"dom0# "      # dom0less guests print on UART0 too: their "domU# " is not dom0's


def prepare(builder, spec: BootSpec, workdir: Path, *, gdb: bool = False) -> QemuMachine:
    """Build (through the cache) what spec needs, ask QEMU for the board's base DT, compose
    the boot plan (harness/plan/plan.py) and return an unstarted machine that runs it."""
    board = builder.board
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / ".writable").touch()
        (workdir / ".writable").unlink()
    except OSError as e:
        raise HarnessError(f"cannot write the boot's directory: {e.strerror or e}", where=str(workdir),
                           field="workdir (--workdir, --artifacts)", fix="give a directory you can write") from None
    targets = ["tf-a", "kernel", "rootfs-dom0"] + ([f"xen-{spec.xen}"] if spec.xen else [])
    if spec.dom0less:
        targets.append("rootfs-domu")
    if any(g.image == "scmi-probe" for g in spec.dom0less):
        targets.append("scmi-probe")
    built = builder.build(targets)
    missing = [t for t in targets if t not in built]
    if missing:
        raise HarnessError(f"cannot build {', '.join(missing)} for boot {spec.name!r}", field="--xen-patches",
                           fix="give the patch series this Xen variant needs")
    images = {"kernel": built["kernel"] / "Image", "rootfs": built["rootfs-dom0"] / "rootfs.cpio",
              "bl33": built[f"xen-{spec.xen}"] / "xen" if spec.xen else built["kernel"] / "Image"}
    if "rootfs-domu" in built:
        images["rootfs-domu"] = built["rootfs-domu"] / "rootfs.cpio"
    if "scmi-probe" in built:
        images["scmi-probe"] = built["scmi-probe"] / "scmi-probe.bin"
    ssh_keys = extra = None
    if spec.network:
        from . import qemu, ssh
        ssh_keys = ssh.keys(builder.cache.root)
        extra = ssh.boot_archive(ssh_keys, ssh.net_conf(qemu.GUEST_IP, qemu.USER_NET_PREFIX, qemu.GATEWAY_IP,
                                                       port=qemu.GUEST_SSH_PORT))
    machine = QemuMachine(board, workdir, bios=built["tf-a"] / "flash.bin", gdb=gdb, network=spec.network)
    machine.ssh_keys = ssh_keys
    base = machine.dump_dtb(workdir / "qemu-base.dtb").read_bytes()
    plan = compose(board, spec, images, base, workdir, extra_initrd=extra)
    machine.loaders = [(Path(f).absolute(), a) for f, a in plan.loaders]
    machine.dtb = write_dt(plan.host_dtb, (workdir / "host.dtb").absolute())   # with host.dts beside it
    machine.images = built
    machine.plan = plan
    (workdir / "boot-spec.json").write_text(json.dumps(
        {**asdict(spec), "xen_cmdline": plan.xen_cmdline, "kernel_cmdline": plan.kernel_cmdline,
         "loaders": [(str(f), hex(a)) for f, a in plan.loaders],
         "images": {k: str(v.path) for k, v in built.items()}}, indent=2, default=str))
    return machine


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
        self.steps = StepLog(machine.workdir / "steps.log")     # what the harness did (harness/machine/steps.py)

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
        """An SSH client logged in to dom0 as root (harness.machine.ssh.SshClient), for what a console
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
        out = _strip_echo(m.before)
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
        from ..images.build.rootfs import GUEST_DIR
        dtb, cfg = xl_guest(self.machine.board, g, get_profile(self.spec.profile))
        self.put_file(f"{GUEST_DIR}/{g.name}.dtb", dtb)
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
            return _dom0less_lines(self.console.text, self.domid(name))
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


def _dom0less_lines(text: str, domid: int) -> str:
    """A dom0less guest's lines in UART0's text: Xen prints them as "(XEN) DOMn: ..." to its
    line's end, and like any Xen line that can start in the middle of another (after dom0's
    prompt: 'dom0# (XEN) DOM1: HARNESS: domU ready')."""
    prefix = f"(XEN) DOM{domid}: "
    return "\n".join(line[line.index(prefix) + len(prefix):] for line in text.replace("\r", "").splitlines()
                     if prefix in line)


def _strip_echo(text: str) -> str:
    """A command's output: what follows the terminal's echo of the command line. Xen's own
    console lines share the UART and land anywhere, inside the echo too ('<<rc=$?:10(XEN)
    scmi: Free domain 2' newline '>>"', '<<rc=$?:7>(XEN) ...' newline '>"'), and between
    output lines (a domain freed after `xl destroy` says "(XEN) scmi: Free domain 2" during
    the next command): each "(XEN) " up to its newline is taken out first, then the echo ends
    at the first '>>"'. (A Xen printk without '\n' swallows the dom0 text after it: tools
    whose output matters start it on a line of their own.)"""
    text = re.sub(r"\(XEN\) [^\n]*(?:\n|$)", "", text.replace("\r", ""))
    end = text.find('>>"')          # the echo comes first: its end is the first '>>"'
    if end >= 0:
        text = text[text.find("\n", end) + 1:] if "\n" in text[end:] else ""
    return text.strip()
