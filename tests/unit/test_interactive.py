"""`harness boot`'s console, without booting: the replay on attach, the escape keys, the
printed key help, and the attach loop on a socketpair (UART0) and a pty (the terminal)."""
import io
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import termios
import threading
import time
import types

import pytest

from harness.machine import interactive
from harness.machine.console import Console
from harness.machine.interactive import (ESCAPE, ESCAPE_NAME, KEYS, EscapeKeys, attach, hand_command, hand_keys, replay,
                                         replay_start)

TFA = b"NOTICE:  Booting Trusted Firmware\r\nNOTICE:  BL31: v2.12.1\r\n- UART enabled -\r\n- Ready -\r\n"
FIGLET = (b" __  __            _  _    ____   ___  _  _                       \r\n"
          b" \\ \\/ /___ _ __   | || |  |___ \\ / _ \\| || |     _ __  _ __ ___ \r\n")
XEN = (b"(XEN) Xen version 4.20.4-pre (@) (aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0) debug=n\r\n"
       b"(XEN) *** Serial input to DOM0 (type 'CTRL-a' three times to switch input)\r\n")
DOM0 = (b"[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]\r\n"
        b"HARNESS: dom0 ready\r\n\x1b[6ndom0# ")


def ctrl(name: str) -> int:
    """The byte a key named "Ctrl-x" sends."""
    return ord(name.removeprefix("Ctrl-").lower()) - ord("a") + 1


# -- where the replay starts -------------------------------------------------------------

@pytest.mark.parametrize("banner", [FIGLET, b"Xen 4.20.4-pre\r\n", b""])
def test_replay_starts_at_xens_banner(banner):
    raw = TFA + banner + XEN + DOM0
    start = replay_start(raw)
    assert raw[start:] == banner + XEN + DOM0
    assert replay(raw) == banner + XEN + DOM0


def test_replay_start_with_console_timestamps_and_without_xen():
    raw = TFA + b"(XEN) [2026-12-01 17:55:34] Xen version 4.20.4-pre (@)\r\n"
    assert raw[replay_start(raw):].startswith(b"(XEN) [2026-12-01")
    native = TFA + DOM0            # no Xen (or attached before its banner): everything
    assert replay_start(native) == 0 and replay(native) == native


def test_a_later_xen_version_line_is_not_the_start():
    raw = TFA + b"Xen 4.20.4-pre\r\n" + XEN + DOM0 + b"xl info | grep xen_version\r\nxen_version : 4.20\r\n"
    assert raw[replay_start(raw):].startswith(b"Xen 4.20.4-pre\r\n(XEN) Xen version")


# -- the harness's own traffic is not replayed ----------------------------------------------

def own_traffic() -> bytes:
    """What UART0 carries while System.xl_create copies a guest's files in base64 and runs
    xl create (System.put_file / System.shell), with Xen and kernel lines in between."""
    return (b": > /guests/domu.dtb.b64; echo \"<<rc=$?:1>>\"\r\n<<rc=0:1>>\r\n"
            b"dom0# echo 0NAeRAAAAGQAAAA4AAAEGAAAACgAAAARAAAAEAAAAAAAAADg >> /guests/domu.dtb.b64; echo \"<<rc=$?:2>>\"\r\n"
            b"<<rc=0:2>>\r\n(XEN) DOM1: dom0less guest says hello\r\n"
            b"dom0# base64 -d /guests/domu.dtb.b64 > /guests/domu.dtb && rm /guests/domu.dtb.b64; echo \"<<rc=$?:3>>\"\r\n"
            b"<<rc=0:3>>\r\ndom0# xl create /guests/domu.cfg; echo \"<<rc=$?:4>>\"\r\n"
            b"Parsing config from /guests/domu.cfg\r\n"
            b"[   42.123456] xen-blkback: backend/vbd/2/51712: using 1 queues\r\n"
            b"<<rc=0:4>>\r\ndom0# ")


def test_replay_leaves_out_the_harness_commands_but_keeps_xen_kernel_and_prompt():
    before = TFA + FIGLET + XEN + DOM0
    own = own_traffic()
    after = b"(XEN) DOM2: later\r\nls\x08\x08\x1b[K"          # typed and edited by the person
    raw = before + own + after
    out = replay(raw, (len(before), len(before) + len(own)))
    assert out.startswith(FIGLET + XEN)
    # the line holding the window's start ("dom0# " + the first command's echo) goes too
    assert out.startswith(FIGLET + XEN + DOM0[:-len(b"\x1b[6ndom0# ")])
    note = re.search(rb"\[harness: (\d+) lines of its own commands in dom0 .*left out here; .*uart0\.log\]\r\n", out)
    assert note and note.group(1) == b"9"            # 11 lines, 2 of them kept
    for harness_only in (b"b64", b"<<rc=", b"echo ", b"xl create", b"Parsing config"):
        assert harness_only not in out.replace(note.group(0), b""), harness_only
    assert b"(XEN) DOM1: dom0less guest says hello\r\n" in out
    assert b"[   42.123456] xen-blkback" in out
    assert out.endswith(b"using 1 queues\r\ndom0# " + after)               # the prompt, then bytes as they came


def test_lines_straddling_the_window_are_judged_whole():
    before = TFA + XEN + b"(XEN) DOM1: hel"
    own = b"lo\r\ndom0# echo x >> /guests/a.b64\r\n<<rc=0:1>>\r\ndom0# "
    raw = before + own
    out = replay(raw, (len(before), len(raw)))
    assert b"(XEN) DOM1: hello\r\n" in out and b"echo x" not in out and out.endswith(b"\r\ndom0# ")
    assert replay(raw, (len(raw), len(raw))) == raw[replay_start(raw):]      # nothing done: all of it


# -- keys --------------------------------------------------------------------------------

def test_escape_is_neither_xens_nor_xl_consoles_nor_qemus_default():
    assert ESCAPE == bytes([ctrl(ESCAPE_NAME)])
    assert ESCAPE not in (b"\x01", b"\x1d")         # Ctrl-a: Xen's switch, QEMU's mux; Ctrl-]: xl console


def test_keystrokes_go_through_unmodified():
    keys = EscapeKeys()
    typed = b"ls -l\x7f\x7f\x08\r\x1b[A\x03\x04\x01\x01\x01\x1d\xc3\xa9"   # DEL, BS, arrows, ^C, ^D, 3x^A, ^], UTF-8
    assert keys.feed(typed) == [typed]


def test_escape_state_machine():
    keys = EscapeKeys()
    assert keys.feed(b"ab" + ESCAPE + b"tcd") == [b"ab", "trace", b"cd"]
    assert keys.feed(ESCAPE + ESCAPE) == [ESCAPE]                 # twice: sent literally
    assert keys.feed(b"x" + ESCAPE + ESCAPE + b"y") == [b"x" + ESCAPE + b"y"]
    assert keys.feed(b"x" + ESCAPE) == [b"x"]                     # an escape ending one read ...
    assert keys.pending
    assert keys.feed(b"q") == ["quit"]                            # ... applies to the next one
    assert keys.feed(ESCAPE + b"Q") == ["quit"]
    assert keys.feed(ESCAPE + b"?" + ESCAPE + b"h") == ["help", "help"]
    assert keys.feed(ESCAPE + b"z") == ["help"]                   # unknown: list the keys, send nothing
    assert keys.feed(ESCAPE) == [] and keys.feed(ESCAPE) == [ESCAPE]


def test_keys_text_tells_the_truth():
    lines = {m.group(1): m.group(2) for m in re.finditer(rf"^\s+{ESCAPE_NAME} (\S+)\s+(.*)$", KEYS, re.M)}
    meaning = {"q": "quit", "t": "trace", "?": "help"}
    assert set(lines) == {*meaning, ESCAPE_NAME}
    for key, action in meaning.items():
        assert EscapeKeys().feed(ESCAPE + key.encode()) == [action]
    assert "literal" in lines[ESCAPE_NAME]
    assert "Ctrl-] q" not in KEYS and "Ctrl-]" in KEYS            # only as xl console's key
    flat = " ".join(KEYS.split())
    assert "Ctrl-a three times" in flat and "dom0less domain" in flat and "xl console NAME" in flat
    assert "A domU made by xl is not in this cycle" in flat


def fake_machine(tmp_path):
    return types.SimpleNamespace(
        binary="qemu-system-aarch64", workdir=tmp_path,
        machine_args=lambda: ["-machine", "virt,secure=on,virtualization=on", "-m", "2048"],
        loader_args=lambda: ["-device", "loader,file=xen,addr=0x40200000,force-raw=on"],
        network_args=lambda: [])


def test_printed_qemu_command_and_its_keys_agree(tmp_path):
    cmd = shlex.split(hand_command(fake_machine(tmp_path)))
    assert cmd[cmd.index("-serial") + 1] == "mon:stdio"
    echr = int(cmd[cmd.index("-echr") + 1], 0)
    assert bytes([echr]) == ESCAPE and echr != 1                  # QEMU's escape moved off Ctrl-a
    assert f"file:{tmp_path / 'scmi-trace.log'}" in cmd
    keys = hand_keys()
    assert f"-echr {cmd[cmd.index('-echr') + 1]}" in keys
    qemu_keys = dict(re.findall(rf"^\s+{ESCAPE_NAME} (\S+)\s+(.*)$", keys, re.M))
    assert set(qemu_keys) == {"x", "c", "h", ESCAPE_NAME}
    assert "quit" in qemu_keys["x"] and "monitor" in qemu_keys["c"] and "literal" in qemu_keys[ESCAPE_NAME]
    assert all(ctrl(name) == echr for name in re.findall(r"Ctrl-[a-z]", keys) if name != "Ctrl-a")
    assert "Ctrl-a three times" in keys and "six" not in keys     # Ctrl-a reaches Xen as typed


def test_print_qemu_cmd_prints_command_on_stdout_and_keys_on_stderr(tmp_path, monkeypatch, capsys):
    import harness.images.cmdline
    import harness.plan.scenario
    import harness.machine.system
    sc = types.SimpleNamespace(name="x", spec=types.SimpleNamespace(name="x"), description="",
                               unmet=lambda sut: None, spec_for=lambda sut: sc.spec)
    builder = types.SimpleNamespace(board=None, sut=types.SimpleNamespace(variant="multiagent"), build=lambda t: {})
    monkeypatch.setattr(harness.images.cmdline, "builder_from_args", lambda args, progress=None: builder)
    monkeypatch.setattr(harness.plan.scenario, "load_scenario", lambda name, board: sc)
    monkeypatch.setattr(interactive.dataclasses, "replace", lambda obj, **kw: obj)
    machine = fake_machine(tmp_path)
    machine.images = {}
    monkeypatch.setattr(harness.machine.system, "prepare", lambda *a, **kw: machine)
    args = types.SimpleNamespace(scenario="x", workdir=tmp_path, gdb=False, print_qemu_cmd=True, no_wait=False)
    assert interactive.run(args) == 0
    out, err = capsys.readouterr()
    assert shlex.split(out)[0] == "qemu-system-aarch64" and "-echr" in out and "Ctrl-t x" not in out
    assert hand_keys() in err


# -- raw bytes and the attach loop -----------------------------------------------------------

def test_console_keeps_the_raw_bytes_next_to_the_cleaned_text():
    ours, theirs = socket.socketpair()
    con = Console("uart0", ours)
    try:
        data = b"dom0# lss\x08 \x08\x1b[K -l\r\n\x1b[1;34mbin\x1b[0m\r\n"
        theirs.sendall(data)
        con.expect("bin", timeout=5)
        assert con.raw_since(0) == data and con.raw_mark() == len(data)
        assert "\x08" not in con.text and "\x1b" not in con.text
        theirs.sendall(b"more")
        con.expect("more", timeout=5)
        assert con.raw_since(len(data)) == b"more"
    finally:
        con.close()
        theirs.close()


def test_attach_in_raw_mode_passes_bytes_both_ways(tmp_path, monkeypatch):
    """attach() on a pty (the person's terminal) and a socketpair (UART0): raw mode while
    attached and restored after, the replay, bytes both ways unmodified, the escape keys."""
    ours, theirs = socket.socketpair()
    con = Console("uart0", ours)
    trace = types.SimpleNamespace(text="".join(f"SCMI trace line {i}\n" for i in range(30)))
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    seen_raw = []

    def is_running():
        if not seen_raw:        # no echo, line editing, signals, CR/NL mapping, output processing
            iflag, oflag, _, lflag = termios.tcgetattr(slave)[:4]
            seen_raw.append(not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
                            and not iflag & (termios.ICRNL | termios.IXON) and not oflag & termios.OPOST)
        return True

    system = types.SimpleNamespace(console=con, trace=trace, machine=types.SimpleNamespace(is_running=is_running))
    screen = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(fileno=lambda: slave))
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(buffer=screen))
    boot = TFA + FIGLET + XEN + DOM0
    theirs.sendall(boot)
    con.expect("dom0# ", timeout=5)
    result = []
    t = threading.Thread(target=lambda: result.append(attach(system)))
    t.start()
    try:
        time.sleep(0.2)
        theirs.sendall(b"\x1b[1mlive\x1b[0m\r\n")
        os.write(master, b"ls\x7f\x01\x01\x01\x1d" + ESCAPE + ESCAPE + ESCAPE + b"t")
        got = b""
        theirs.settimeout(5)
        while len(got) < 8:
            got += theirs.recv(100)
        assert got == b"ls\x7f\x01\x01\x01\x1d" + ESCAPE        # unmodified; the escape pair sent once
        time.sleep(0.2)
        os.write(master, ESCAPE + b"q")
        t.join(5)
    finally:
        os.write(master, ESCAPE + b"q")
        t.join(5)
        con.close()
        theirs.close()
    assert result == [0] and seen_raw == [True]
    assert termios.tcgetattr(slave) == before                    # the terminal is given back as it was
    shown = screen.getvalue()
    assert shown.startswith(FIGLET + XEN + DOM0)                 # replay from the banner, bytes as sent
    assert b"\x1b[1mlive\x1b[0m\r\n" in shown
    assert b"SCMI trace line 29" in shown and b"SCMI trace line 9\r" not in shown
    os.close(master)
    os.close(slave)


def test_dom0_init_makes_the_lock_dir_xl_console_needs_before_xenconsoled(tmp_path):
    """xenconsole opens /var/lock/xenconsole.<domid> (Xen's XEN_LOCK_DIR); the rootfs has no
    /var/lock, so dom0's init makes it. Its lines run here in a scratch root."""
    from harness.images.build import IMAGES
    init = (IMAGES / "rootfs" / "dom0" / "init").read_text().splitlines()
    cmds = [line for line in init if "/lock" in line and not line.lstrip().startswith("#")]
    assert cmds and max(map(init.index, cmds)) < next(i for i, line in enumerate(init) if "xenconsoled" in line
                                                       and not line.lstrip().startswith("#"))
    (tmp_path / "var").mkdir()
    (tmp_path / "run").mkdir()
    script = "\n".join(re.sub(r"(?<![\w.])/(run|var)/", rf"{tmp_path}/\1/", c) for c in cmds)
    subprocess.run(["sh", "-euc", script], check=True)
    subprocess.run(["sh", "-euc", script], check=True)           # idempotent
    fd = os.open(tmp_path / "var" / "lock" / "xenconsole.1", os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    assert (tmp_path / "run" / "lock" / "xenconsole.1").exists()


def test_cli_boot_help_names_the_same_keys(capsys):
    from harness.run.cli import main
    with pytest.raises(SystemExit):
        main(["boot", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"{ESCAPE_NAME} q quits" in text and f"{ESCAPE_NAME} {ESCAPE_NAME} sends {ESCAPE_NAME}" in text
    assert "Ctrl-] q" not in text and "Ctrl-a three times" in text


@pytest.mark.skipif(not shutil.which("qemu-system-aarch64"), reason="qemu-system-aarch64 not installed")
def test_the_printed_keys_are_qemus_own_with_that_echr(tmp_path):
    """QEMU itself (no machine, no guest) with the printed command's -serial/-echr: its own
    help lists the keys hand_keys() names, and ESCAPE x quits it. A program on a terminal,
    typed at and read back: pexpect's job (the harness's own console engine is for the
    guests' UARTs, see harness/machine/console.py)."""
    import pexpect
    cmd = shlex.split(hand_command(fake_machine(tmp_path)))
    echr = cmd[cmd.index("-echr") + 1]
    q = pexpect.spawn("qemu-system-aarch64", ["-machine", "none", "-nographic", "-serial", "mon:stdio",
                                              "-echr", echr], timeout=10)
    try:
        # keys typed before QEMU puts its terminal in raw mode are flushed by that switch:
        # wait for it (ICANON off on the pty) instead of sleeping a guess (flaky under load)
        end = time.monotonic() + 30
        while termios.tcgetattr(q.child_fd)[3] & termios.ICANON and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.2)
        q.send(ESCAPE + b"h")
        q.expect(b"sends")
        help_ = (q.before + q.after).decode(errors="replace")
        letter = ESCAPE_NAME[-1]
        for key in ("x", "c", "h"):
            assert re.search(rf"C-{letter} {key}\s", help_), help_
        q.expect(b"\n")          # the rest of the "sends" line
        help_ += q.before.decode(errors="replace")
        assert f"C-{letter} C-{letter}  sends C-{letter}" in help_, help_
        q.send(ESCAPE + b"x")
        q.expect(pexpect.EOF)
        q.close()
        assert q.exitstatus == 0
    finally:
        if q.isalive():
            q.terminate(force=True)
