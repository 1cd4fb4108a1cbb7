"""`harness bench-parallel`: the boot suite of one SUT serially and with `pytest -n N`, on
the same warm cache, one after the other: wall time, CPU time (the run and every process
it waited for: workers, QEMU), cores busy, boots, whether the test ids and outcomes are the
same, and whether any QEMU outlived its run. Then a projection on paper for more cores,
from what the serial run measured per boot group (the tests that share a boot):

  projected wall(C cores, C workers) = fixed + max(LPT(group walls, C), CPU / C)

fixed: the serial run's time outside tests (start, collection, the cache check);
LPT: the longest-first deal of the groups' serial wall times over C workers (what the
scheduler of harness/run/parallel.py does); CPU / C: no run beats its CPU time spread over
every core, with CPU the larger of the two runs' (QEMUs that share cores use more CPU for
the same boots: measured 1.4x on 2 cores). The measured -n N beside its projection says
how far to trust it.
Compare ratios, not seconds: the machines are shared and noisy.
"""
from __future__ import annotations

import heapq
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    label: str
    wall: float
    cpu: float
    exit_code: int
    outcomes: dict[str, str] = field(default_factory=dict)      # test id -> passed/failed/skipped/error
    test_times: dict[str, float] = field(default_factory=dict)  # test id -> seconds (setup+call+teardown)
    test_boots: dict[str, list[str]] = field(default_factory=dict)   # test id -> its boots' directories
    boot_cpu: dict[str, float] = field(default_factory=dict)    # boot directory -> QEMU's CPU seconds
    qemu_left: list[int] = field(default_factory=list)

    @property
    def cores_busy(self) -> float:
        return self.cpu / self.wall if self.wall else 0.0

    def counts(self) -> str:
        c = {k: list(self.outcomes.values()).count(k) for k in ("passed", "failed", "error", "skipped")}
        return "/".join(str(c[k]) for k in c)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def read_junit(path: Path, run: Run) -> None:
    for case in ET.parse(path).getroot().iter("testcase"):
        tid = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = {c.tag for c in case}
        run.outcomes[tid] = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed") \
            .replace("failure", "failed")
        run.test_times[tid] = float(case.get("time", "0") or 0)
        run.test_boots[tid] = sorted(p.get("value", "") for p in case.iter("property")
                                     if p.get("name", "").startswith("boot_dir_"))


def qemus_under(root: Path) -> list[int]:
    """QEMU processes whose command line names a path under root (this run's boots)."""
    pids = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmd and str(root) in cmd:
            pids.append(int(p.name))
    return pids


def run_suite(label: str, sut: str, keyword: str | None, workers: int, where: Path, log=print,
              whole: bool = False, boots_at_once: int | None = None) -> Run:
    where = where.absolute() / (f"n{workers}" if workers else "serial")
    art, junit = where / "artifacts", where / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", *([] if whole else ["-m", "boot"]), f"--sut={sut}", "-p", "no:cacheprovider", "-q",
           f"--artifacts={art}", f"--junitxml={junit}", "-o", "junit_logging=no"]
    cmd += ["-k", keyword] if keyword else []
    cmd += ["-n", str(workers)] if workers else []
    cmd += [f"--boots-at-once={boots_at_once}"] if workers and boots_at_once else []
    log(f"bench-parallel: {label}: {' '.join(cmd[1:])}  (output: {where / 'pytest.log'})")
    shutil.rmtree(where, ignore_errors=True)     # an earlier run's boots must not count as this one's
    where.mkdir(parents=True, exist_ok=True)
    cpu0, t0 = _children_cpu(), time.monotonic()
    with open(where / "pytest.log", "w") as out:
        rc = subprocess.run(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT).returncode
    run = Run(label, time.monotonic() - t0, _children_cpu() - cpu0, rc)
    run.qemu_left = qemus_under(art)
    if junit.is_file():
        read_junit(junit, run)
    for t in art.rglob("timings.json"):
        try:
            run.boot_cpu[str(t.parent)] = float(json.loads(t.read_text()).get("qemu_cpu") or 0)
        except (OSError, ValueError):
            pass
    return run


def groups(run: Run) -> list[tuple[float, float, bool]]:
    """(wall, QEMU CPU, boots) per group of tests that share a boot, from a serial run."""
    owner: dict[str, str] = {}
    wall: dict[str, float] = {}
    boots: dict[str, bool] = {}
    for tid, dirs in run.test_boots.items():
        key = next((owner[b] for b in dirs if b in owner), dirs[0] if dirs else tid)
        for b in dirs:
            owner.setdefault(b, key)
        wall[key] = wall.get(key, 0.0) + run.test_times.get(tid, 0.0)
        boots[key] = boots.get(key, False) or bool(dirs)
    cpu: dict[str, float] = {}
    for b, secs in run.boot_cpu.items():
        rel = os.path.relpath(b, REPO) if b.startswith(str(REPO)) else b
        key = owner.get(b) or owner.get(rel) or next((owner[k] for k in owner if b.endswith(k)), None)
        cpu[key or b] = cpu.get(key or b, 0.0) + secs
    return [(w, cpu.get(k, 0.0), boots[k]) for k, w in wall.items()]


def lpt(walls: list[float], workers: int) -> float:
    """The makespan of dealing the walls out longest first to the least loaded of `workers`."""
    loads = [0.0] * max(1, workers)
    for w in sorted(walls, reverse=True):
        heapq.heapreplace(loads, loads[0] + w)
    return max(loads)


def project(serial: Run, cores: int, cpu: float | None = None, smp: int = 2) -> tuple[float, str]:
    """(projected wall on `cores` cores with as many workers, what bounds it); cpu: the
    run's CPU seconds to spread (default the serial run's). Boot groups are dealt over the
    workers that may boot at once (parallel.boots_at_once: cores / vCPUs per boot), every
    group over all workers."""
    from .parallel import boots_at_once
    gs = groups(serial)
    fixed = max(0.0, serial.wall - sum(w for w, _, _ in gs))
    by_boots = lpt([w for w, _, b in gs if b], boots_at_once(cores, smp))
    by_deal = max(by_boots, lpt([w for w, _, _ in gs], cores))
    by_cpu = (cpu or serial.cpu) / cores
    longest = max((w for w, _, _ in gs), default=0.0)
    bound = "CPU" if by_cpu > by_deal else ("the longest group" if by_deal <= longest + 1e-6 else
                                            "boots at once" if by_boots >= by_deal else "the deal")
    return fixed + max(by_deal, by_cpu), bound


def report(serial: Run, par: Run, workers: int, cores: list[int], out=print) -> int:
    out("")
    out(f"{'run':<10} {'wall':>8} {'CPU':>8} {'cores busy':>11} {'boots':>6} {'tests p/f/e/s':>14} {'QEMU left':>10}")
    for r in (serial, par):
        out(f"{r.label:<10} {r.wall:>7.1f}s {r.cpu:>7.1f}s {r.cores_busy:>11.2f} {len(r.boot_cpu):>6} "
            f"{r.counts():>14} {len(r.qemu_left):>10}")
    ratio = serial.wall / par.wall if par.wall else 0.0
    out(f"speed-up with -n {workers}: {ratio:.2f}x (serial wall / parallel wall); "
        f"CPU {par.cpu / serial.cpu if serial.cpu else 0:.2f}x the serial run's")
    differ = sorted(t for t in set(serial.outcomes) | set(par.outcomes)
                    if serial.outcomes.get(t) != par.outcomes.get(t))
    out("same test ids and outcomes: " + ("yes" if not differ else f"NO, {len(differ)} differ:"))
    for t in differ[:20]:
        out(f"  {t}: serial {serial.outcomes.get(t, 'absent')}, -n {workers} {par.outcomes.get(t, 'absent')}")
    gs = groups(serial)
    out(f"\nprojection from the serial run's {len(gs)} groups ({sum(b for *_, b in gs)} boot; wall "
        f"{sum(w for w, _, _ in gs):.0f}s in tests, longest {max((w for w, _, _ in gs), default=0):.0f}s; QEMU CPU "
        f"{sum(c for _, c, _ in gs):.0f}s of {serial.cpu:.0f}s), a boot's 2 vCPUs a core each:")
    out(f"{'cores':>6} {'projected wall':>15} {'speed-up':>9}  bound by")
    for c in sorted(set([workers, *cores])):
        wall, bound = project(serial, c, max(serial.cpu, par.cpu))
        note = f"   (measured with -n {workers}: {par.wall:.0f}s)" if c == workers else ""
        out(f"{c:>6} {wall:>14.0f}s {serial.wall / wall:>8.2f}x  {bound}{note}")
    bad = bool(differ) or bool(serial.qemu_left or par.qemu_left) or serial.exit_code not in (0,) \
        or par.exit_code not in (0,)
    if serial.exit_code or par.exit_code:
        out(f"exit codes: serial {serial.exit_code}, -n {workers} {par.exit_code} (logs: pytest.log beside the JUnit)")
    return 1 if bad else 0


def run(sut: str, workers: int, keyword: str | None, cores: list[int], where: Path, out=print,
        whole: bool = False, boots_at_once: int | None = None) -> int:
    """Build the SUT's images (not timed: both runs start on a warm cache), then time both
    (whole: the README's whole suite, unit tests too, rather than the boot tests)."""
    subprocess.run([sys.executable, "-m", "harness.run.cli", "build", f"--sut={sut}"], cwd=REPO, check=True)
    serial = run_suite("serial", sut, keyword, 0, where, out, whole)
    par = run_suite(f"-n {workers}", sut, keyword, workers, where, out, whole, boots_at_once)
    return report(serial, par, workers, cores, out)
