"""Console engine and QEMU runner.

Consoles are fed through socketpairs (a fake byte source, not a fake system); the
runner's lifecycle is checked on a real qemu-system-aarch64 running a 60-byte
firmware that prints one line on each UART and then sleeps in WFI.
"""
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types

import pytest

from harness.machine import console as console_mod
from harness.data.board import Qemu
from harness.machine.console import (FAILURE_PATTERNS, Console, ConsoleClosed, ConsoleFailure,
                                     ConsoleTimeout, Consoles, FailurePattern)
from harness.errors import HarnessError
from harness.machine.qemu import QemuMachine

# -- console engine ----------------------------------------------------------------------


@pytest.fixture
def group(tmp_path, monkeypatch):
    """Two consoles of one machine, each fed by the test through the other socket end."""
    monkeypatch.setattr(console_mod, "FAILURE_GRACE", 0.3)
    g = Consoles()
    feeds = {}
    for name in ("uart0", "uart1"):
        ours, theirs = socket.socketpair()
        Console(name, ours, log_path=tmp_path / f"{name}.console.log", group=g)
        feeds[name] = theirs
    g.feed = lambda name, data: feeds[name].sendall(data.encode() if isinstance(data, str) else data)
    g.peer = feeds
    yield g
    g.close()
    for s in feeds.values():
        s.close()


def test_expect_returns_pattern_index_match_and_advances_cursor(group):
    con = group["uart0"]
    group.feed("uart0", "boot: stage 1\nboot: stage 2\nlogin: ")
    m = con.expect([r"login: ", r"stage (\d)"], timeout=2)
    assert (m.index, m.group(1), m.before) == (1, "1", "boot: ")
    assert con.expect(r"stage (\d)", timeout=2).group(1) == "2"      # not stage 1 again
    assert con.expect(["nothing", "login: "], timeout=2).index == 1
    with pytest.raises(ConsoleTimeout):
        con.expect("stage", timeout=0.1)                              # all consumed


def test_expect_waits_for_text_arriving_later_and_in_pieces(group):
    con = group["uart0"]
    def later():
        for data in ("HARNESS: dom", "U ready\n"):
            time.sleep(0.05)
            group.feed("uart0", data)
    feeder = threading.Thread(target=later)
    feeder.start()
    m = con.expect(r"^HARNESS: domU ready$", timeout=3)
    feeder.join()
    assert m.text == "HARNESS: domU ready"


def test_timeout_names_pattern_timeout_and_last_30_lines(group):
    con = group["uart0"]
    group.feed("uart0", "".join(f"line {i}\n" for i in range(1, 51)))
    con.expect("line 50", timeout=2)
    t = time.monotonic()
    with pytest.raises(ConsoleTimeout) as e:
        con.expect(r"domU# ", timeout=0.2)
    assert time.monotonic() - t < 1.5
    msg = str(e.value)
    assert "'domU# '" in msg and "0.2 s" in msg and "uart0" in msg
    assert "line 50" in msg and "line 21\n" in msg and "line 20\n" not in msg


def test_mark_and_text_since_see_only_new_output(group):
    con = group["uart0"]
    group.feed("uart0", "old output\n")
    con.expect("old output", timeout=2)
    mark = con.mark()
    group.feed("uart0", "new output\n")
    con.expect("new output", timeout=2)
    assert con.text_since(mark) == "new output\n"
    assert con.expect("output", timeout=1, since=mark).before == "new "


def test_escape_sequences_and_carriage_returns_are_stripped_even_when_split(group):
    con = group["uart0"]
    for piece in ["\x1b[6", "n\r\ndomU# \x1b", "[0m\x1b]0;title\x07ok\r\n", "\x1b(Bdone\n"]:
        group.feed("uart0", piece)
        time.sleep(0.02)
    con.expect("done", timeout=2)
    assert con.text == "\ndomU# ok\ndone\n"
    assert con.expect(r"^domU# ok$", timeout=1, since=0)


def test_failure_on_other_console_fails_wait_at_once_with_context(group):
    group.feed("uart1", "".join(f"before {i}\n" for i in range(19)) + "odd \u2028 char\n")
    group.feed("uart1", "(XEN) Assertion 'd->arch.scmi' failed at arch/arm/sci.c:42\n")
    group.feed("uart1", "".join(f"after {i}\n" for i in range(3)))
    t = time.monotonic()
    with pytest.raises(ConsoleFailure) as e:
        group["uart0"].expect("domU ready", timeout=10)
    assert time.monotonic() - t < 2          # the grace period, not the timeout
    msg = str(e.value)
    assert msg.startswith("uart1: Xen assertion (xen) at line 21")
    assert ">> (XEN) Assertion 'd->arch.scmi' failed" in msg
    assert "before 5\n" in msg and "before 4\n" not in msg           # 15 lines before
    assert "after 2" in msg                                          # what came after
    assert e.value.failure.console.name == "uart1"


def test_failure_context_collects_lines_arriving_in_grace_period(group):
    def crash():
        group.feed("uart0", "[    1.9] Kernel panic - not syncing: sysrq triggered crash\n")
        for i in range(30):
            time.sleep(0.002)
            group.feed("uart0", f"[    2.0]  frame{i}+0x10/0x20\n")
    feeder = threading.Thread(target=crash)
    feeder.start()
    with pytest.raises(ConsoleFailure) as e:
        group["uart0"].expect("never", timeout=10)
    feeder.join()
    msg = str(e.value)
    assert "frame24+" in msg and "frame25+" not in msg               # 25 lines after


def test_failure_already_seen_fails_next_wait_and_is_reported_once(group):
    group.feed("uart0", "NOTICE:  BL31: v2.12\nERROR:   BL31: SCMI channel 3 not mapped\nmore\n")
    time.sleep(0.1)                                                  # seen before anyone waits
    with pytest.raises(ConsoleFailure, match="TF-A error"):
        group["uart1"].expect("anything", timeout=5)
    group.check()                                                    # nothing new
    group.feed("uart1", "x\n")
    assert group["uart1"].expect("x", timeout=2)


def test_failure_in_same_read_as_match_still_fails(group):
    group.feed("uart0", "Unable to handle kernel paging request\ndomU# ")
    with pytest.raises(ConsoleFailure, match="Linux bad kernel access"):
        group["uart0"].expect("domU# ", timeout=2)


def test_deliberate_failures_are_allowed(group):
    con = group["uart0"]
    group.feed("uart0", "(XEN) Xen BUG at sci.c:1\n")
    assert con.expect("Xen BUG at", timeout=2, allow_failures=True)
    with group.allowing_failures():
        group.feed("uart0", "(XEN) Panic on CPU 0:\n(XEN) Reboot in five seconds\n")
        con.expect("Reboot", timeout=2)
    group.feed("uart0", "after\n")
    con.expect("after", timeout=2)
    group.check()
    assert [f.pattern.what for f in group.failures] == ["Xen BUG", "Xen panic"]
    assert all(f.allowed for f in group.failures)


@pytest.mark.parametrize("line,what", [
    ("(XEN) Panic on CPU 1:", "Xen panic"),
    ("(XEN) FATAL TRAP: vector = 2", "Xen fatal trap"),
    ("[   3.1] Internal error: Oops: 0000000096000004 [#1] SMP", "Linux oops"),
    ("[   3.1] BUG: scheduling while atomic", "Linux BUG"),
    ("[   3.1] kernel BUG at mm/slub.c:1!", "Linux BUG"),
    ("BL31: Unhandled Exception", "TF-A unhandled exception"),
    ("Unhandled Exception in EL3.", "TF-A unhandled exception"),
    ("PANIC at PC : 0x000000000e0a1234", "TF-A panic"),
    ("ERROR:   BL2: Failed to load image id 3 (-2)", "TF-A error"),
])
def test_failure_table_matches_known_crash_lines(line, what):
    hit = next(fp for fp in FAILURE_PATTERNS if fp.regex.search(line + "\n"))
    assert hit.what == what


@pytest.mark.parametrize("line", [
    "[    0.0] Kernel command line: console=hvc0 panic=-1",
    "DEBUG: CONFIG_DEBUG_BUGVERBOSE=y",
    "(XEN) sci: assign device /soc/uart to agent 2",
    "scmi: call ERROR: status=DENIED agent=2",     # an SCMI status, not a TF-A crash line
])
def test_failure_table_ignores_benign_lines(line):
    assert not [fp for fp in FAILURE_PATTERNS if fp.regex.search(line + "\n")]


def test_failure_table_is_extensible(group, monkeypatch):
    monkeypatch.setattr(console_mod, "FAILURE_PATTERNS", FAILURE_PATTERNS + [
        FailurePattern("test", re.compile(r"HARNESS: FAIL"), "check script failed")])
    group.feed("uart0", "HARNESS: FAIL permission not enforced\n")
    with pytest.raises(ConsoleFailure, match="check script failed"):
        group["uart0"].expect("HARNESS: PASS", timeout=5)


def test_eof_ends_wait_early(group):
    group.feed("uart0", "Reboot in five seconds...\n")
    group.peer["uart0"].close()
    with pytest.raises(ConsoleClosed, match="Reboot in five"):
        group["uart0"].expect("domU# ", timeout=10)


def test_line_times_give_stage_durations(group):
    con = group["uart0"]
    group.feed("uart0", "Booting Linux\n")
    con.expect("Booting Linux", timeout=2)
    time.sleep(0.2)
    group.feed("uart0", "Run /init\n")
    m = con.expect("Run /init", timeout=2)
    t0 = con.first_time("Booting Linux")
    assert 0.15 < m.time - t0 < 1.0
    assert con.first_time("Run /init") == m.time and con.first_time("absent") is None


def test_send_sendline_sendcontrol(group):
    con, peer = group["uart0"], group.peer["uart0"]
    con.send("ls")
    con.sendline(" /")
    for _ in range(3):
        con.sendcontrol("a")
    time.sleep(0.05)
    assert peer.recv(100) == b"ls /\n\x01\x01\x01"


def test_console_log_has_clean_timestamped_lines(group, tmp_path):
    group.feed("uart0", "\x1b[6nfirst\r\nsecond\n")
    group["uart0"].expect("second", timeout=2)
    group.close()
    lines = (tmp_path / "uart0.console.log").read_text().splitlines()
    assert [re.sub(r"^\[\s*\d+\.\d+\] ", "", l) for l in lines] == ["first", "second"]


# -- QEMU command line -------------------------------------------------------------------

BOARD = types.SimpleNamespace(qemu=Qemu("virt,secure=on,virtualization=on,gic-version=3",
                                        "max,pauth-impdef=on", 2048, 2))


def test_machine_args_and_command(tmp_path):
    m = QemuMachine(BOARD, tmp_path, bios=tmp_path / "flash.bin", dtb=tmp_path / "host.dtb",
                    loaders=[(tmp_path / "xen", 0x40200000)], extra_args=["-d", "guest_errors"],
                    gdb=True)
    assert m.machine_args() == [
        "-machine", "virt,secure=on,virtualization=on,gic-version=3", "-cpu", "max,pauth-impdef=on",
        "-m", "2048", "-smp", "2", "-bios", str(tmp_path / "flash.bin"),
        "-dtb", str(tmp_path / "host.dtb"), "-nic", "none", "-d", "guest_errors"]
    dump = m.machine_args(dumpdtb=tmp_path / "a,b.dtb")
    assert dump[1].endswith(f",dumpdtb={tmp_path}/a,,b.dtb") and "-dtb" not in dump
    assert dump[2:] == [a for a in m.machine_args() if a not in ("-dtb", str(tmp_path / "host.dtb"))][2:]
    cmd = " ".join(m.command())
    assert cmd.startswith("qemu-system-aarch64 -machine virt,")
    assert f"-device loader,file={tmp_path}/xen,addr=0x40200000,force-raw=on" in cmd
    for flag in ("-nographic", "-no-reboot", "-S", f"-gdb tcp:127.0.0.1:{m.gdb_port}",
                 "-serial chardev:uart0", "-serial chardev:uart1", "-mon chardev=qmp,mode=control",
                 f"logfile={tmp_path}/uart1.log"):
        assert flag in cmd
    assert cmd.index("chardev:uart0") < cmd.index("chardev:uart1")


def test_long_workdir_puts_sockets_elsewhere(tmp_path):
    deep = tmp_path / ("d" * 120)
    m = QemuMachine(BOARD, deep, bios=None)
    assert m.sockdir != deep and len(str(m.sockdir / "uart0.sock")) < 100
    assert f"logfile={deep}/uart0.log" in " ".join(m.command())
    m._cleanup()
    assert not m.sockdir.exists()


def test_missing_qemu_and_missing_inputs_are_one_clear_error(tmp_path):
    m = QemuMachine(BOARD, tmp_path, bios=tmp_path / "flash.bin", binary="qemu-system-nonesuch")
    with pytest.raises(HarnessError, match=r"qemu-system-nonesuch not found.*scripts/setup"):
        m.start()
    if shutil.which("qemu-system-aarch64"):
        m = QemuMachine(BOARD, tmp_path, bios=tmp_path / "flash.bin")
        with pytest.raises(HarnessError, match=r"flash.bin: bios file does not exist"):
            m.start()
        assert m.proc is None


# -- real QEMU lifecycle -----------------------------------------------------------------

needs_qemu = pytest.mark.skipif(not shutil.which("qemu-system-aarch64"),
                                reason="qemu-system-aarch64 not installed (scripts/setup)")

# EL3 code at the flash base: print FW_HELLO on UART0 (0x09000000) and UART1 (0x09040000,
# present with secure=on), then sleep in WFI so the vCPU costs no host CPU.
FIRMWARE = bytes.fromhex(
    "0020a1d2" "8120a1d2" "02010010" "43144038" "83000034" "03000039" "23000039"
    "fcffff17" "7f2003d5" "ffffff17") + b"HARNESS-FW: hello\n\x00\x00"
TINY = types.SimpleNamespace(qemu=Qemu("virt,secure=on", "cortex-a57", 128, 1))


@pytest.fixture
def firmware(tmp_path):
    path = tmp_path / "fw.bin"
    path.write_bytes(FIRMWARE)
    return path


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@needs_qemu
def test_start_consoles_stop(tmp_path, firmware):
    with QemuMachine(TINY, tmp_path / "run", bios=firmware) as m:
        assert m.uart0.expect("HARNESS-FW: hello", timeout=10).time >= m.started_at
        m.uart1.expect("HARNESS-FW: hello", timeout=10)
        assert m.is_running() and m.exit_code is None
        assert m.qmp.cmd("query-status")["status"] == "running"
        pid = m.pid
    assert m.exit_code == 0 and not m.is_running() and wait_dead(pid)
    run = tmp_path / "run"
    assert (run / "uart0.log").read_text() == "HARNESS-FW: hello\n"   # QEMU's own raw log
    assert "HARNESS-FW: hello" in (run / "uart1.console.log").read_text()
    assert (run / "qemu-cmdline.txt").read_text().startswith("qemu-system-aarch64 -machine virt,secure=on ")


@needs_qemu
def test_stop_escalates_to_sigkill(tmp_path, firmware):
    m = QemuMachine(TINY, tmp_path, bios=firmware).start()
    m.qmp.close()
    m.qmp = None                       # no QMP quit; SIGTERM stays pending while stopped
    os.kill(m.pid, signal.SIGSTOP)
    t = time.monotonic()
    assert m.stop(timeout=0.3) == -signal.SIGKILL
    assert time.monotonic() - t < 2


@needs_qemu
def test_exception_in_with_block_kills_qemu(tmp_path, firmware):
    with pytest.raises(ZeroDivisionError):
        with QemuMachine(TINY, tmp_path, bios=firmware) as m:
            pid = m.pid
            1 / 0
    assert wait_dead(pid)


class Timeout(Exception):
    pass


@needs_qemu
def test_signal_timeout_during_wait_kills_qemu(tmp_path, firmware):
    """What pytest-timeout's signal method does: an exception raised by SIGALRM mid-wait."""
    def alarm(signum, frame):
        raise Timeout()
    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        with pytest.raises(Timeout):
            with QemuMachine(TINY, tmp_path, bios=firmware) as m:
                pid = m.pid
                signal.setitimer(signal.ITIMER_REAL, 0.2)
                m.uart0.expect("never printed", timeout=10)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert wait_dead(pid)


@needs_qemu
def test_start_failure_reports_qemu_stderr(tmp_path, firmware):
    bad = types.SimpleNamespace(qemu=Qemu("virt,no-such-option=on", "cortex-a57", 128, 1))
    with pytest.raises(HarnessError, match="QEMU exited at start.*no-such-option"):
        QemuMachine(bad, tmp_path, bios=firmware).start()


@needs_qemu
def test_dump_dtb_uses_identical_machine_args(tmp_path, firmware):
    dtb = QemuMachine(TINY, tmp_path, bios=firmware).dump_dtb(tmp_path / "base.dtb")
    assert dtb.read_bytes()[:4] == bytes.fromhex("d00dfeed")


CHILD = textwrap.dedent("""
    import faulthandler, signal, sys, time, types
    from pathlib import Path
    from harness.data.board import Qemu
    from harness.machine.qemu import QemuMachine

    def previous(signum, frame):          # runs after the harness handler killed QEMU
        print("chained", m.proc.wait(5), flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, previous)
    faulthandler.register(signal.SIGUSR1)  # the test asks for our stacks if we hang
    m = QemuMachine(types.SimpleNamespace(qemu=Qemu("virt,secure=on", "cortex-a57", 128, 1)),
                    Path(sys.argv[1]), bios=Path(sys.argv[2]))
    m.start()
    print(m.pid, m.sockdir, flush=True)
    time.sleep(60)
""")


def start_child(tmp_path, firmware, workdir="child"):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / workdir), str(firmware)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline().split()
    assert line and line[0].isdigit(), line
    child.sockdir = Path(line[1])
    return child, int(line[0])


@needs_qemu
def test_qemu_dies_with_a_sigkilled_harness(tmp_path, firmware):
    child, qemu_pid = start_child(tmp_path, firmware)
    assert alive(qemu_pid)
    child.kill()
    child.wait()
    assert wait_dead(qemu_pid), "QEMU outlived its SIGKILLed parent"


@needs_qemu
def test_sigterm_handler_kills_qemu_then_chains(tmp_path, firmware):
    child, qemu_pid = start_child(tmp_path, firmware)
    child.send_signal(signal.SIGTERM)
    try:
        out, _ = child.communicate(timeout=30)   # generous: CI machines are shared and noisy
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGUSR1)        # faulthandler prints every thread's stack
        time.sleep(1)
        child.kill()
        out, err = child.communicate()
        pytest.fail(f"the child did not exit 30 s after SIGTERM; stdout {out!r}; stacks:\n{err}")
    assert out.strip() == f"chained {-signal.SIGKILL}" and child.returncode == 0
    assert wait_dead(qemu_pid)


@needs_qemu
def test_sigterm_removes_a_private_socket_directory(tmp_path, firmware):
    """A workdir too long for a socket path puts QEMU's sockets in a directory of their own
    under the system's temp dir: a SIGTERMed harness removes it too."""
    child, qemu_pid = start_child(tmp_path, firmware, workdir="w" * 110)
    assert child.sockdir.is_dir() and not str(child.sockdir).startswith(str(tmp_path))
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=30)
    assert wait_dead(qemu_pid) and not child.sockdir.exists(), f"{child.sockdir} outlived the harness"
