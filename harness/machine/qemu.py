"""QEMU runner: builds the command line from the board, starts QEMU paused, attaches
both serial consoles and QMP, then lets it run; and makes sure it never outlives us.

Every exit path kills QEMU: stop() and the context manager, an atexit hook, SIGTERM/
SIGINT/SIGHUP handlers that kill and then chain to the previous handler, and, for a
harness that is SIGKILLed or leaves through os._exit (pytest-timeout's thread method),
PR_SET_PDEATHSIG in the child. Note that the kernel sends the death signal when the
*thread* that started QEMU exits, so start machines from a thread that lives as long
as they do (the main thread, in pytest).
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .console import Console, Consoles
from ..errors import HarnessError

log = logging.getLogger(__name__)

QEMU_BINARY = "qemu-system-aarch64"
CONSOLES = ("uart0", "uart1")      # UART0: Xen/dom0; UART1: the secure world's SCMI trace
CONNECT_TIMEOUT = 10.0
QMP_TIMEOUT = 5.0
PR_SET_PDEATHSIG = 1
# QEMU's user network (slirp) for a machine with network=True: dom0 is GUEST_IP on
# USER_NET, its SSH port is forwarded from 127.0.0.1:<ssh_port> (and from nowhere else).
# restrict=on: the guest reaches neither the host nor the outside; only the forward comes in.
USER_NET, USER_NET_PREFIX = "10.0.2.0", 24
GUEST_IP, GATEWAY_IP = "10.0.2.15", "10.0.2.2"
GUEST_SSH_PORT = 22
PORT_ATTEMPTS = 5                  # free_tcp_port() races with other processes: retry
_SUN_PATH_MAX = 100                # sockaddr_un.sun_path is 108 bytes, keep a margin

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl               # resolved here: the child must not load libraries after fork


def _opt(value) -> str:
    """Quote a value inside a QEMU option list (a comma is written as two)."""
    return str(value).replace(",", ",,")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_qemu(binary: str = QEMU_BINARY) -> str:
    path = shutil.which(binary)
    if not path:
        raise HarnessError(f"{binary} not found on PATH", field="host tools",
                           fix="run scripts/setup to install QEMU (Debian package qemu-system-arm)")
    return path


def _unix_connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


class Qmp:
    """A minimal synchronous QMP client (no asyncio loop to clash with pytest or signals)."""

    def __init__(self, path: Path, timeout: float = QMP_TIMEOUT):
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self.sock = _unix_connect(path)
        self.sock.settimeout(timeout)
        self._file = self.sock.makefile("rb")
        self._read()                                  # greeting
        self.cmd("qmp_capabilities")

    def _read(self) -> dict:
        line = self._file.readline()
        if not line:
            raise ConnectionError("QMP connection closed")
        return json.loads(line)

    def cmd(self, name: str, **args):
        with self._lock:
            msg = {"execute": name, **({"arguments": args} if args else {})}
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
            while True:
                reply = self._read()
                if "event" in reply:
                    self.events.append(reply)
                elif "error" in reply:
                    raise HarnessError(f"QMP {name} failed: {reply['error'].get('desc')}")
                elif "return" in reply:
                    return reply["return"]

    def close(self) -> None:
        for f in (self._file, self.sock):
            with contextlib.suppress(OSError):
                f.close()


class QemuMachine:
    """One qemu-system-aarch64 for one board; `with QemuMachine(...) as m:` starts and stops it."""

    def __init__(self, board, workdir: Path, *, bios: Path | None, dtb: Path | None = None,
                 loaders: list[tuple[Path, int]] = (), extra_args: list[str] = (),
                 gdb: bool = False, network: bool = False, name: str = "qemu", binary: str = QEMU_BINARY):
        self.board, self.name, self.binary = board, name, binary
        # absolute, so that qemu-cmdline.txt runs from anywhere
        self.workdir = Path(workdir).absolute()
        self.bios = Path(bios).absolute() if bios else None
        self.dtb = Path(dtb).absolute() if dtb else None
        self.loaders = [(Path(f).absolute(), int(a)) for f, a in loaders]
        self.extra_args = list(extra_args)
        self.gdb_port = free_tcp_port() if gdb else None
        self.network = network
        self.ssh_port: int | None = None    # host port forwarded to the guest's SSH (at start)
        self.ssh_keys = None                # harness.machine.ssh.SshKeys, set by system.prepare()
        self.proc: subprocess.Popen | None = None
        self.qmp: Qmp | None = None
        self.consoles = Consoles()
        self.started_at: float | None = None
        self._sockdir: Path | None = None
        self._private_sockdir = False

    # -- command line ----------------------------------------------------------------
    def machine_args(self, dumpdtb: Path | None = None) -> list[str]:
        """The arguments that define the machine (and so its generated DT).

        With `dumpdtb`, -dtb is left out and QEMU writes the DT it generates.
        """
        q = self.board.qemu
        machine = q.machine + (f",dumpdtb={_opt(dumpdtb)}" if dumpdtb else "")
        args = ["-machine", machine, "-cpu", q.cpu, "-m", str(q.memory_mib), "-smp", str(q.smp)]
        if self.bios:
            args += ["-bios", str(self.bios)]
        if self.dtb and not dumpdtb:
            args += ["-dtb", str(self.dtb)]
        return args + ["-nic", "none", *self.extra_args]

    def command(self) -> list[str]:
        """The full command line (sockets in self.sockdir)."""
        sd = self.sockdir
        cmd = [self.binary, *self.machine_args(), *self.loader_args()]
        cmd += ["-nographic", "-monitor", "none", "-no-reboot", "-S"]
        for c in CONSOLES:
            cmd += ["-chardev", f"socket,id={c},path={_opt(sd / (c + '.sock'))},server=on,wait=off,"
                                f"logfile={_opt(self.workdir / (c + '.log'))},logappend=off",
                    "-serial", f"chardev:{c}"]
        cmd += ["-chardev", f"socket,id=qmp,path={_opt(sd / 'qemu.qmp')},server=on,wait=off",
                "-mon", "chardev=qmp,mode=control"]
        if self.gdb_port:
            cmd += ["-gdb", f"tcp:127.0.0.1:{self.gdb_port}"]
        return cmd + self.network_args()

    def network_args(self) -> list[str]:
        """A virtio-mmio NIC on QEMU's user network, the guest's SSH port forwarded from
        127.0.0.1 only. Not among machine_args(): virt lists its virtio-mmio transports in
        the DT whether a device sits on them or not, so the dumped DT does not change."""
        if not self.network:
            return []
        if self.ssh_port is None:
            self.ssh_port = free_tcp_port()
        netdev = (f"user,id=net0,net={USER_NET}/{USER_NET_PREFIX},host={GATEWAY_IP},restrict=on,"
                  f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-{GUEST_IP}:{GUEST_SSH_PORT}")
        return ["-netdev", netdev, "-device", "virtio-net-device,netdev=net0"]

    def loader_args(self) -> list[str]:
        """-device loader arguments that put each boot image at its address."""
        return [a for f, addr in self.loaders
                for a in ("-device", f"loader,file={_opt(f)},addr={addr:#x},force-raw=on")]

    @property
    def sockdir(self) -> Path:
        """workdir, unless its path is too long for a unix socket name."""
        if self._sockdir is None:
            if len(str(self.workdir.resolve() / "uart0.sock")) < _SUN_PATH_MAX:
                self._sockdir = self.workdir
            else:
                self._sockdir = Path(tempfile.mkdtemp(prefix="qemu-"))
                self._private_sockdir = True
        return self._sockdir

    def dump_dtb(self, path: Path, timeout: float = 30) -> Path:
        """Let QEMU write the DT it generates for exactly these machine arguments."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._check_inputs(dtb=False)
        # two serial ports, as in a real run, so nothing but dumpdtb differs
        cmd = [find_qemu(self.binary), *self.machine_args(dumpdtb=path), "-nographic",
               "-monitor", "none", "-serial", "null", "-serial", "null"]
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"QEMU did not exit within {timeout} s", where=shlex.join(cmd),
                               field="dumpdtb") from None
        if r.returncode != 0 or not path.exists():
            raise HarnessError(f"QEMU could not dump the DT (exit {r.returncode}): "
                               f"{(r.stderr or r.stdout).strip()}", where=shlex.join(cmd),
                               field="dumpdtb", fix="check the [qemu] table of the board file")
        return path

    def _check_inputs(self, dtb: bool = True) -> None:
        files = [("bios", self.bios)] + ([("dtb", self.dtb)] if dtb else [])
        files += [(f"loader {addr:#x}", f) for f, addr in self.loaders]
        for what, f in files:
            if f is not None and not f.is_file():
                raise HarnessError(f"{what} file does not exist", where=str(f),
                                   fix="build the images first (harness build)")

    # -- lifecycle -------------------------------------------------------------------
    def start(self, paused: bool = False) -> "QemuMachine":
        """Start QEMU stopped, attach QMP and both consoles, then `cont` (unless paused).

        With network, the forwarded port is picked free just before; should another process
        take it first, QEMU exits at once and is started again on a new port."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._start(paused)
            except HarnessError:
                if not (self.network and attempt < PORT_ATTEMPTS and
                        "host forwarding rule" in self._stderr_tail().lower()):
                    raise
                log.warning("%s: port %s was taken before QEMU bound it; trying another",
                            self.name, self.ssh_port)
                self.proc, self.qmp, self.ssh_port = None, None, None
                self.consoles, self._sockdir, self._private_sockdir = Consoles(), None, False
        raise AssertionError("unreachable")

    def _start(self, paused: bool) -> "QemuMachine":
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        find_qemu(self.binary)
        self._check_inputs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        for c in (*CONSOLES, "qemu"):
            (self.sockdir / (c + ".qmp" if c == "qemu" else c + ".sock")).unlink(missing_ok=True)
        (self.workdir / "qemu-cmdline.txt").write_text(shlex.join(cmd) + "\n")
        _install_handlers()
        parent = os.getpid()
        stderr = open(self.workdir / "qemu-stderr.log", "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stderr,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=lambda: _die_with_parent(parent))
        finally:
            stderr.close()
        _live.add(self)
        log.info("%s: started pid %d: %s", self.name, self.proc.pid, shlex.join(cmd))
        try:
            self.qmp = self._connect(self.sockdir / "qemu.qmp", Qmp)
            for c in CONSOLES:
                sock = self._connect(self.sockdir / (c + ".sock"), _unix_connect)
                Console(c, sock, log_path=self.workdir / f"{c}.console.log", group=self.consoles)
            if self.gdb_port:
                log.warning("%s: gdb stub on 127.0.0.1:%d (target remote :%d)",
                            self.name, self.gdb_port, self.gdb_port)
            if self.ssh_port:
                log.info("%s: guest SSH forwarded from 127.0.0.1:%d", self.name, self.ssh_port)
            if not paused:
                self.cont()
        except BaseException:
            self.kill()
            raise
        return self

    def cont(self) -> None:
        self.consoles.t0 = self.started_at = time.monotonic()
        self.qmp.cmd("cont")

    def _connect(self, path: Path, connect):
        """connect(path) once QEMU listens there; fail early if QEMU exits instead."""
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            try:
                return connect(path)
            except OSError as e:                      # not listening yet, or gone again
                error = e
            if self.proc.poll() is not None:
                raise HarnessError(f"QEMU exited at start (code {self.proc.returncode}): "
                                   f"{self._stderr_tail()}", where=str(self.workdir / "qemu-cmdline.txt"),
                                   fix="run the command line by hand to see why")
            if time.monotonic() > deadline:
                raise HarnessError(f"QEMU did not answer on {path} within {CONNECT_TIMEOUT} s "
                                   f"({error})",
                                   where=str(self.workdir / "qemu-stderr.log"))
            time.sleep(0.02)

    def _stderr_tail(self, n: int = 10) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.workdir / "qemu-stderr.log").read_text(errors="replace")
                             .splitlines()[-n:])
        return ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def uart0(self) -> Console:
        return self.consoles["uart0"]

    @property
    def uart1(self) -> Console:
        return self.consoles["uart1"]

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) QEMU has used so far; None once it has exited."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (AttributeError, OSError, IndexError):
            return None
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """QEMU's exit status (negative: killed by that signal); None while running."""
        return self.proc.poll() if self.proc else None

    def wait_exit(self, timeout: float) -> int:
        """Wait for QEMU to exit by itself (e.g. -no-reboot after a guest reset)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name}: QEMU still running after {timeout} s") from None

    def stop(self, timeout: float = 5.0) -> int | None:
        """Stop QEMU: QMP quit, then SIGTERM, then SIGKILL, each given `timeout`."""
        if self.proc is None:
            return None
        steps = [self._quit, lambda: self._signal(signal.SIGTERM), lambda: self._signal(signal.SIGKILL)]
        for step in steps:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(Exception):
                step()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self._cleanup()
        return self.proc.returncode

    def _quit(self) -> None:
        if self.qmp:
            with contextlib.suppress(ConnectionError, OSError):   # QEMU may hang up before replying
                self.qmp.cmd("quit")

    def _signal(self, sig: int) -> None:
        """Signal QEMU's process group, unless QEMU is already reaped (its pgid may be reused)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL at once and clean up; safe to call at any time."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self._cleanup()

    def _cleanup(self) -> None:
        _live.discard(self)
        if self.qmp:
            self.qmp.close()
        self.consoles.close()
        if self._private_sockdir and self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)

    def __enter__(self) -> "QemuMachine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<QemuMachine {self.name} pid={self.pid} workdir={self.workdir}>"


# -- no QEMU outlives the harness ------------------------------------------------------
_live: set[QemuMachine] = set()
_atexit_done = False
_handlers_done = False


def _die_with_parent(parent: int) -> None:
    """In the child between fork and exec: SIGKILL when the parent dies."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:      # the parent died before prctl took effect
        os._exit(1)


def kill_all() -> None:
    """SIGKILL every running QEMU and remove its private socket directory; fit for signal
    handlers (takes no lock, no QMP)."""
    for m in list(_live):
        m._signal(signal.SIGKILL)
        if m._private_sockdir and m._sockdir:
            shutil.rmtree(m._sockdir, ignore_errors=True)


def _install_handlers() -> None:
    global _atexit_done, _handlers_done
    if not _atexit_done:
        atexit.register(kill_all)
        _atexit_done = True
    # handlers can only be set from the main thread; PDEATHSIG still covers the rest
    if not _handlers_done and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, _chained(signal.getsignal(sig)))
        _handlers_done = True


def _chained(previous):
    def handler(signum, frame):
        kill_all()
        if callable(previous):
            return previous(signum, frame)     # e.g. SIGINT's KeyboardInterrupt
        if previous == signal.SIG_IGN:
            return None
        signal.signal(signum, signal.SIG_DFL)  # default action: die by the same signal
        os.kill(os.getpid(), signum)
        return None
    return handler
