"""One boot's lifecycle, behind both pytest fixtures (`boot`: one system per test,
`shared_boot`: one per scenario for a whole module): prepare and start a System, know
which systems are up (the failure report quotes their step logs), and at the end write
its timings, check its consoles one last time, keep QEMU for a person when asked, and
stop it. What a test ran on (board, sources, series, lock entries) is `provenance()`,
recorded for every test that builds or boots, whichever fixture it uses.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from ..machine.steps import StepLog
from ..machine.system import State, System, prepare

# The systems started and not yet finished, in start order (a failing test's report
# quotes the steps each took during that test).
RUNNING: list[System] = []
# Every boot of this process as (name, workdir, step log), not the systems (their consoles'
# buffers stay freeable): the JUnit report names the boots a test took part in, and links
# their console logs, from the steps each took during that test.
BOOTS: list[tuple[str, Path, StepLog]] = []


def track(name: str, workdir: Path, steps: StepLog) -> None:
    BOOTS.append((name, Path(workdir), steps))


def boots_between(start: float, stop: float) -> list[tuple[str, Path]]:
    """(name, workdir) of the boots that took a step in [start, stop] (wall clock): those
    with a failed step first, then the most recent first (GitLab links only the first
    attachment of a test: it should be the console of the boot that failed)."""
    used = []
    for name, workdir, steps in BOOTS:
        took = steps.between(start, stop)
        if took:
            used.append((not any(s.result != "ok" for s in took), -took[-1].wall, name, workdir))
    return [(name, workdir) for *_, name, workdir in sorted(used, key=lambda u: u[:2])]


def start(builder, spec, workdir: Path, *, until: State | None = State.SHELL, gdb: bool = False,
          owner: Callable[[System], None] = lambda s: None) -> System:
    """Prepare spec's machine in workdir (builds through the cache, composes the DTs) and
    boot it up to `until` (None: not started). owner(system) is told of it before the boot
    starts, so a boot that fails half-way is still finished by whoever started it."""
    wall, t0 = time.time(), time.monotonic()
    machine = prepare(builder, spec, workdir, gdb=gdb)
    system = System(machine, spec)
    system.prepare_seconds = round(time.monotonic() - t0, 3)
    system.steps.record("prepare", f"{spec.describe()} in {workdir}", wall, system.prepare_seconds)
    RUNNING.append(system)
    track(spec.name, workdir, system.steps)
    owner(system)
    hv = machine.images.get(f"xen-{spec.xen}") if spec.xen else None
    if getattr(builder, "coverage", False) and hv is not None and "coverage_workspace" in hv.manifest:
        from . import coverage
        # Xen's counters start at zero with Xen: a boot's counters are its own, no reset needed
        system.coverage_ws = coverage.workspace(hv)
    if until is not None:
        system.transition(until)
    return system


def collect_coverage(system: System) -> Path | None:
    """A coverage boot's counters, read in dom0 (`xencov read`) while it still runs, as
    gcovr JSON in its workdir (None: not a coverage boot, or no shell to ask)."""
    ws = getattr(system, "coverage_ws", None)
    if ws is None or not system.machine.is_running() or system.state < State.SHELL:
        return None
    from . import coverage
    system.shell(f"xencov read {coverage.DAT_IN_DOM0}", timeout=60)
    local = system.machine.workdir / "xencov.dat"
    if system.spec.network:
        system.ssh().get(coverage.DAT_IN_DOM0, local)
    else:
        import base64
        local.write_bytes(base64.b64decode(system.shell(f"base64 {coverage.DAT_IN_DOM0}", timeout=120)[0]))
    with system.steps.step("coverage", f"gcovr on {local}"):
        out = coverage.gcovr_json(ws, local.read_bytes(), system.machine.workdir)
    COVERAGE_RUNS.append((ws, out))
    return out


COVERAGE_RUNS: list[tuple[Path, Path]] = []   # (coverage build workspace, a boot's gcovr JSON), this process


def finish(system: System, *, failed: bool = False, keep: Callable[[System], None] | None = None) -> dict:
    """The end of a boot: timings.json written, QEMU kept for keep(system) after a failure,
    the consoles checked once more (a failure line after the last wait still fails a test
    that passed), QEMU stopped. Returns the timings."""
    timings = {"prepare": getattr(system, "prepare_seconds", None), **system.timings()}
    try:
        try:
            collect_coverage(system)
        except Exception as e:          # a boot's coverage is a measurement, not its test's verdict
            system.steps.record("coverage", f"not collected: {type(e).__name__}: {e}", time.time(), 0.0, "failed")
        # with QEMU's CPU time so far, which harness bench-parallel sums per boot
        (system.machine.workdir / "timings.json").write_text(
            json.dumps({**timings, "qemu_cpu": system.machine.cpu_seconds()}, indent=2))
        if failed and keep is not None and system.machine.is_running():
            keep(system)
        if system.machine.is_running() and not failed:
            system.machine.consoles.check()
    finally:
        system.machine.stop()
        if system in RUNNING:
            RUNNING.remove(system)
    return timings


def provenance(builder) -> dict[str, str]:
    """What a test ran on, for its JUnit properties."""
    out = {"board": builder.board.name, "xen_source": builder.xen_spec.describe(),
           "xen_patches": f"{builder.series.path.name} sha256:{builder.series.digest}" if builder.series else "none"}
    for name in ("xen", "tf-a", "kernel"):
        out[f"lock_{name}"] = builder.lock[name].describe()
    return out


def steps_report(start: float, stop: float) -> list[tuple[str, str]]:
    """(title, text) per running system that took steps between start and stop (wall clock)."""
    out = []
    for s in RUNNING:
        steps = s.steps.between(start, stop)
        if steps:
            out.append((f"harness steps: {s.spec.name} ({s.steps.path})", s.steps.report(steps)))
    return out
