"""Boot benchmark: QEMU start -> dom0 shell under the harness, against the same
images booted by a bare QEMU command reading its serial port on stdout.
Run it with `harness bench-boot`; compare the ratio, not the seconds (shared machines are noisy)."""
from __future__ import annotations

import os
import select
import shlex
import dataclasses
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ..machine.qemu import QemuMachine, find_qemu
from ..machine.system import BootSpec, State, System, prepare

READY = b"HARNESS: dom0 ready"
SPECS = {
    "native": BootSpec("native", xen=None, profile="single"),
    "upstream": BootSpec("upstream-single", xen="upstream", profile="single"),
    "multiagent": BootSpec("multiagent-v5", xen="multiagent", profile="v5"),
}


def harness_boot(machine: QemuMachine, spec: BootSpec) -> float:
    t0 = time.monotonic()
    system = System(machine, spec)
    try:
        system.transition(State.SHELL)
        return time.monotonic() - t0
    finally:
        machine.stop()


def bare_boot(machine: QemuMachine, timeout: float = 120) -> float:
    """The same machine, started by hand: serial 0 on stdout, no sockets, no QMP."""
    cmd = [find_qemu(), *machine.machine_args(), *machine.loader_args(),
           "-nographic", "-monitor", "none", "-no-reboot", "-serial", "stdio", "-serial", "null"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seen = b""
    try:
        while time.monotonic() - t0 < timeout:
            r, _, _ = select.select([proc.stdout], [], [], 1)
            if r:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen = seen[-200:] + chunk
                if READY in seen:
                    return time.monotonic() - t0
        raise RuntimeError(f"bare boot did not reach {READY.decode()!r}: {shlex.join(cmd)}")
    finally:
        proc.kill()
        proc.wait()


def run(builder, names: list[str], runs: int, out=print) -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            spec = dataclasses.replace(SPECS[name], network=False)   # a console boot, like the bare command
            wd = Path(tmp) / name
            prepare_t0 = time.monotonic()
            machine = prepare(builder, spec, wd)
            prep = time.monotonic() - prepare_t0
            h, b = [], []
            for i in range(runs):    # interleaved, so drift on a shared machine hits both alike
                b.append(bare_boot(machine))
                h.append(harness_boot(QemuMachine(builder.board, wd / f"run{i}", bios=machine.bios,
                                                  dtb=machine.dtb, loaders=machine.loaders), spec))
            results[name] = {"prepare_s": prep, "harness_s": h, "bare_s": b,
                             "ratio": statistics.median(h) / statistics.median(b)}
    out(f"{'boot':<12} {'runs':>4} {'bare median':>12} {'harness median':>15} {'ratio':>7} "
        f"{'prepare (once)':>15}")
    for name, r in results.items():
        out(f"{name:<12} {runs:>4} {statistics.median(r['bare_s']):>11.2f}s {statistics.median(r['harness_s']):>14.2f}s "
            f"{r['ratio']:>7.2f} {r['prepare_s']:>14.2f}s")
    return results
