"""`harness boot`: boot a scenario on a board for a person, not a test.

Builds what is missing, boots, and attaches this terminal to UART0 (Xen and dom0,
dom0less guests' lines too); the secure world's SCMI trace (UART1) goes to a file
that a second terminal follows with the printed `tail -f` line. The terminal is in
raw mode: every key goes to UART0 as typed, every byte from UART0 comes back as sent
(line editing, Backspace, colours), except the harness's escape key below.

Keys while attached (also printed on attach):
  Ctrl-a three times   Xen's console input switch, passed through: Xen -> dom0 -> each
                       dom0less domain (DOM1, DOM2 ...) -> Xen; Xen prints "*** Serial
                       input to ..." at each switch. A domU made by xl is not in this
                       cycle: `xl console NAME` in dom0 reaches it (Ctrl-] leaves it).
                       One or two Ctrl-a and another key: Xen passes them on.
  Ctrl-t q             quit: stop QEMU and leave
  Ctrl-t t             print the last 20 lines of the SCMI trace here
  Ctrl-t Ctrl-t        send a literal Ctrl-t
  Ctrl-t ?             this list
"""
from __future__ import annotations

import dataclasses
import os
import re
import select
import shlex
import sys
import termios
import time
import tty
from pathlib import Path

from ..errors import HarnessError

# The harness's escape key: Ctrl-t, as tio's. Not Ctrl-] (xl console's detach key in
# dom0, and telnet's), not Ctrl-a (Xen's console switch; QEMU's, screen's, picocom's
# escape), not Ctrl-backslash (SIGQUIT, and hard to type on many keyboard layouts).
# Ctrl-t is readline's transpose-chars in dom0's shell: Ctrl-t Ctrl-t sends it. The
# command of --print-qemu-cmd moves QEMU's own escape to the same key (-echr), so one
# key means "not the guest" either way.
ESCAPE = b"\x14"
ESCAPE_NAME = "Ctrl-t"
KEYS = __doc__[__doc__.index("Keys while attached"):].strip()
TRACE_LINES = 20

# Where the replay on attach starts: Xen's banner, the first line Xen prints through its
# console (before it: TF-A, Xen's early printk). The banner is figlet art (" __  __ ...")
# when the build host had figlet, else a plain "Xen 4.20.4-pre" line; then comes
# "(XEN) Xen version ...", which is the fallback.
XEN_BANNER = re.compile(rb"^[ \t]*__  __[ \t\r]|^Xen \d+\.\d+\S*[ \t\r]*$|^\(XEN\) (?:\[[^]\n]*\] )?Xen version ",
                        re.M)
# Lines kept from the stretch where the harness drove dom0's shell itself (xl guests'
# files copied in base64, xl create): Xen's own lines, dom0less guests' "(XEN) DOMn:"
# lines and kernel messages; the rest is the harness's commands and their output.
_KEEP = re.compile(rb"\(XEN\)|\[\s*\d+\.\d+\] ")
_TERMINAL_CODES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][ -~]|\x1b[ -Z\\^-~]|\r")


def replay_start(raw: bytes) -> int:
    """Offset in UART0's raw bytes of the line that starts Xen's banner (0 if none yet:
    no Xen, or attached before it)."""
    m = XEN_BANNER.search(raw)
    return m.start() if m else 0


def _plain(line: bytes) -> bytes:
    return _TERMINAL_CODES.sub(b"", line)


def replay(raw: bytes, own: tuple[int, int] | None = None, prompt: bytes = b"dom0# ") -> bytes:
    """What to show on attach: UART0's bytes from Xen's banner on, unmodified, except
    the harness's own traffic. `own` is the raw range in which the harness ran its
    commands in dom0's shell; every line in it is left out (one note line says so) but
    Xen's and the kernel's lines and the prompt it ends with. A line begun before it
    (the prompt the first command was typed at) counts as in it; what follows it is
    shown as it came."""
    start = replay_start(raw)
    if not own or own[0] >= own[1] or own[1] <= start:
        return raw[start:]
    first = max(start, raw.rfind(b"\n", 0, own[0]) + 1)     # the line holding own[0]
    *lines, last = raw[first:own[1]].split(b"\n")
    kept = [line + b"\n" for line in lines if _KEEP.match(_plain(line))]
    note = (f"[harness: {len(lines) - len(kept)} lines of its own commands in dom0 (guest files, xl create) "
            f"left out here; all of UART0 is in uart0.log]\r\n").encode()
    tail = last if _plain(last) == prompt or _KEEP.match(_plain(last)) else b""
    return raw[start:first] + note + b"".join(kept) + tail + raw[own[1]:]


class EscapeKeys:
    """The keys typed while attached, split into what goes to UART0 (bytes, unmodified)
    and what the harness does (an action name): ESCAPE then q "quit", t "trace",
    ? or h "help" (any other key too: it lists them), ESCAPE again the literal ESCAPE.
    An ESCAPE at the end of one read waits for the next read's first byte."""

    ACTIONS = {b"q": "quit", b"Q": "quit", b"t": "trace", b"T": "trace", b"?": "help", b"h": "help"}

    def __init__(self, escape: bytes = ESCAPE):
        self.escape = escape
        self.pending = False

    def feed(self, data: bytes) -> list[bytes | str]:
        """Bytes to send and actions, in the order typed."""
        out: list[bytes | str] = []
        chunk = bytearray()
        for b in data:
            ch = bytes([b])
            if self.pending:
                self.pending = False
                if ch == self.escape:
                    chunk += ch
                    continue
                if chunk:
                    out.append(bytes(chunk))
                    chunk.clear()
                out.append(self.ACTIONS.get(ch, "help"))
            elif ch == self.escape:
                self.pending = True
            else:
                chunk += ch
        if chunk:
            out.append(bytes(chunk))
        return out


def gdb_command(machine, images: dict) -> str:
    """The gdb-multiarch line that attaches to QEMU's gdbstub with Xen's and TF-A's symbols."""
    cmd = ["gdb-multiarch", "-q", "-ex", "set architecture aarch64"]
    for key, name in (("xen", "xen-syms"), ("tf-a", "bl31.elf"), ("tf-a", "bl2.elf"), ("tf-a", "bl1.elf")):
        for k, entry in images.items():
            if (k == key or k.startswith(f"{key}-")) and (entry / name).exists():
                cmd += ["-ex", f"add-symbol-file {entry / name}"]
                break
    cmd += ["-ex", f"target remote 127.0.0.1:{machine.gdb_port}"]
    return shlex.join(cmd)


def hand_command(machine) -> str:
    """A command that boots the same system by hand: UART0 on this terminal, QEMU's
    monitor multiplexed on it with its escape key moved from Ctrl-a (Xen's switch key)
    to ESCAPE, UART1 (the SCMI trace) into scmi-trace.log. Keys: hand_keys()."""
    cmd = [machine.binary, *machine.machine_args(), *machine.loader_args(), "-nographic", "-no-reboot",
           "-serial", "mon:stdio", "-echr", f"{ESCAPE[0]:#04x}",
           "-serial", f"file:{machine.workdir / 'scmi-trace.log'}", *machine.network_args()]
    return shlex.join(cmd)


def hand_keys() -> str:
    """The keys of hand_command()'s console. QEMU's escape is Ctrl-a by default, so Xen's
    switch would take Ctrl-a six times (QEMU's Ctrl-a Ctrl-a sends one); -echr moves
    QEMU's to ESCAPE and Ctrl-a reaches Xen as typed."""
    e = ESCAPE_NAME
    return (f"keys of this QEMU (-serial mon:stdio -echr {ESCAPE[0]:#04x}: QEMU's escape is {e}, not Ctrl-a):\n"
            f"  Ctrl-a three times   Xen's console input switch: Xen -> dom0 -> each dom0less domain -> Xen\n"
            f"                       (xl domUs: `xl console NAME` in dom0, Ctrl-] leaves it)\n"
            f"  {e} x             quit QEMU\n"
            f"  {e} c             switch between UART0 and QEMU's monitor\n"
            f"  {e} h             QEMU's list of its keys\n"
            f"  {e} {e}        send a literal {e}\n"
            f"the SCMI trace (UART1) goes to scmi-trace.log")


def run(args) -> int:
    from ..images.cmdline import builder_from_args, progress as _progress
    from ..plan.scenario import load_scenario, names
    from .system import State, System, prepare

    builder = builder_from_args(args, progress=_progress())
    if not args.scenario:
        print("scenarios: " + ", ".join(names()), file=sys.stderr)
        raise HarnessError("no scenario given", field="--scenario", fix="name one of scenarios/*.toml")
    sc = load_scenario(args.scenario, builder.board)
    if sc.unmet(builder.sut):
        raise HarnessError(sc.unmet(builder.sut), field="--sut", fix="pick a SUT that can (harness sut list)")
    builder.build([f"xen-{builder.sut.variant}"])        # and check the profile fits the tree
    sc = dataclasses.replace(sc, spec=sc.spec_for(builder.sut))
    workdir = (args.workdir or Path("artifacts") / "interactive" / sc.spec.name).absolute()
    machine = prepare(builder, sc.spec, workdir, gdb=args.gdb)
    images = machine.images
    if args.print_qemu_cmd:
        print(hand_command(machine))
        print(hand_keys(), file=sys.stderr)
        return 0
    system = System(machine, sc.spec)
    machine.start()                      # QEMU starts paused and the runner resumes it
    try:
        print(f"harness: {sc.name} on SUT {builder.sut.describe()}: {sc.description}", file=sys.stderr)
        print(f"harness: artifacts in {workdir}", file=sys.stderr)
        print(f"harness: SCMI trace: tail -f {workdir / 'uart1.log'}", file=sys.stderr)
        if args.gdb:
            print(f"harness: gdbstub on 127.0.0.1:{machine.gdb_port}; in another terminal:\n"
                  f"  {gdb_command(machine, images)}", file=sys.stderr)
        own = None                       # where the harness drives dom0's shell itself
        if not args.no_wait:
            system.transition(State.SHELL)
            start = system.console.raw_mark()
            for g in sc.spec.xl:
                system.xl_create(g)
            own = (start, system.console.raw_mark())
        return attach(system, own)
    finally:
        machine.stop()


def attach(system, own: tuple[int, int] | None = None) -> int:
    """This terminal <-> UART0 until the quit key: raw mode (restored on the way out),
    bytes both ways unmodified but for ESCAPE; first a replay from Xen's banner without
    the harness's own traffic (`own`: see replay())."""
    con = system.console
    print(f"harness: attached to UART0. {KEYS}", file=sys.stderr)
    out = sys.stdout.buffer
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd) if os.isatty(fd) else None
    if old:
        tty.setraw(fd)             # no echo, no line buffering, no signals, no CR/NL mapping
    keys = EscapeKeys()
    pos = con.raw_mark()
    out.write(replay(con.raw_since(0)[:pos], own))
    out.flush()
    try:
        while system.machine.is_running():
            data = con.raw_since(pos)
            if data:
                out.write(data)
                out.flush()
                pos += len(data)
            r, _, _ = select.select([fd], [], [], 0.02)
            if not r:
                continue
            typed = os.read(fd, 1024)
            if not typed:
                return 0
            for item in keys.feed(typed):
                if isinstance(item, bytes):
                    con.send(item)
                elif item == "quit":
                    return 0
                elif item == "trace":
                    trace = "\r\n".join(system.trace.text.splitlines()[-TRACE_LINES:])
                    out.write(f"\r\n--- SCMI trace (last {TRACE_LINES} lines) ---\r\n{trace}\r\n---\r\n".encode())
                else:
                    out.write(("\r\n" + KEYS.replace("\n", "\r\n") + "\r\n").encode())
                out.flush()
        print("\r\nharness: QEMU exited", file=sys.stderr)
        return 1
    finally:
        if old:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        time.sleep(0)
