"""`harness boot`: boot a scenario on a board for a person, not a test.

Builds what is missing, boots, and attaches this terminal to UART0 (Xen and dom0,
dom0less guests' lines too); the secure world's SCMI trace (UART1) goes to a file
that a second terminal follows with the printed `tail -f` line.

Keys while attached (also printed on attach):
  Ctrl-a three times   Xen's own console switch: Xen -> dom0 -> dom1 ... (passed through)
  Ctrl-] then q        quit: stop QEMU and leave
  Ctrl-] then t        print the last 20 lines of the SCMI trace here
  Ctrl-] then Ctrl-]   send a literal Ctrl-]
"""
from __future__ import annotations

import dataclasses
import os
import select
import shlex
import sys
import termios
import time
import tty
from pathlib import Path

from .errors import HarnessError

ESCAPE = b"\x1d"    # Ctrl-]
KEYS = __doc__[__doc__.index("Keys while attached"):].strip()


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
    """A command that boots the same system by hand: UART0 on this terminal (Ctrl-a x to
    quit QEMU, Ctrl-a c for its monitor), UART1 (the SCMI trace) into scmi-trace.log."""
    cmd = [machine.binary, *machine.machine_args(), *machine.loader_args(), "-nographic", "-no-reboot",
           "-serial", "mon:stdio", "-serial", f"file:{machine.workdir / 'scmi-trace.log'}",
           *machine.network_args()]
    return shlex.join(cmd)


def run(args) -> int:
    from .cli import builder_from_args, _progress
    from .scenario import load_scenario, names
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
        if not args.no_wait:
            system.transition(State.SHELL)
            for g in sc.spec.xl:
                system.xl_create(g)
        return attach(system)
    finally:
        machine.stop()


def attach(system) -> int:
    """This terminal <-> UART0 until the quit key; raw mode, restored on the way out."""
    con = system.console
    print(f"harness: attached to UART0. {KEYS}", file=sys.stderr)
    out = sys.stdout.buffer
    pos = len(con.text) - len(con.text[-4000:])       # show the recent past
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd) if os.isatty(fd) else None
    if old:
        tty.setraw(fd)
    escaped = False
    try:
        while system.machine.is_running():
            text = con.text
            if len(text) > pos:
                out.write(text[pos:].replace("\n", "\r\n").encode(errors="replace"))
                out.flush()
                pos = len(text)
            r, _, _ = select.select([fd], [], [], 0.05)
            if not r:
                continue
            data = os.read(fd, 1024)
            if not data:
                return 0
            for b in data:
                ch = bytes([b])
                if escaped:
                    escaped = False
                    if ch in (b"q", b"Q"):
                        return 0
                    if ch in (b"t", b"T"):
                        trace = "\r\n".join(system.trace.text.splitlines()[-20:])
                        out.write(f"\r\n--- SCMI trace (last 20 lines) ---\r\n{trace}\r\n---\r\n".encode())
                        out.flush()
                    elif ch == ESCAPE:
                        con.send(ESCAPE)
                elif ch == ESCAPE:
                    escaped = True
                else:
                    con.send(ch)
        print("\r\nharness: QEMU exited", file=sys.stderr)
        return 1
    finally:
        if old:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        time.sleep(0)
