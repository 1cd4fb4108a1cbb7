"""`pytest -n N` (pytest-xdist): boots on every core, with the same test ids and outcomes
as a serial run. Registered by harness.run.pytest_plugin (`pytest_plugins`).

What a serial run gets for free and xdist would break, and how it is kept:
- A scenario's tests share one boot (pytest_plugin's shared_boot). xdist's default `load`
  deals tests out one by one, so two workers booted the same scenario into one directory.
  Here each worker writes, after its collection, every test's boot group (shard.boot_group)
  to a file the controller gave it, and the controller's scheduler (BootGroupScheduling)
  deals out whole groups: longest first (boot tests before the rest, bigger groups first),
  each group's tests in collection order (destructive tests stay last).
- Every image is built once, before any test and its timeout starts: the workers do not
  build at collection; the controller builds what the selected boot tests need (with the
  build lines on its terminal) before it hands out the first group. Workers then find the
  cache warm (and cache.Cache.build holds a lock per entry, so two runs never build one
  entry twice at once).
- No two boots of a run share a directory: every boot claims its directory for the run
  (claim_boot_dir) before it is emptied; a second process claiming it fails at once.
- No QEMU outlives a killed worker: QEMU runs with PR_SET_PDEATHSIG (harness/machine/qemu.py), and
  tests run in each worker's main thread.
- `--keep-qemu` (waits for Ctrl-C on a terminal) is refused with -n; `--xen-coverage`
  works: each worker passes its boots' coverage to the controller, which reports once.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from ..errors import HarnessError

GROUPS = "harness_groups_dir"       # workerinput key: where a worker writes its groups file
COVERAGE = "harness_coverage_runs"  # workeroutput key: a worker's (coverage workspace, run) pairs
CLAIMS = ".boot-claims"             # under the artifacts root: <run id>/<hash of a boot dir>


def is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config) -> bool:
    """The process that deals tests out to xdist workers (-n N with N > 0)."""
    return not is_worker(config) and bool(getattr(config.option, "numprocesses", None)) \
        and getattr(config.option, "dist", "no") != "no"


def run_id(config) -> str:
    """One id per pytest run, the same in the controller and every worker."""
    if is_worker(config):
        return config.workerinput["testrunuid"]
    if not hasattr(config, "_harness_run_id"):
        config._harness_run_id = getattr(config, "testrunuid", None) or uuid.uuid4().hex
    return config._harness_run_id


# ------------------------------------------------------------------ boot directories
def claim_boot_dir(config, root: Path, d: Path, who: str) -> None:
    """Claim boot directory d (under the artifacts root) for this process in this run;
    HarnessError when another process of the run claimed it (its boot would be wiped and
    two consoles would write one log). The same process may boot there again."""
    claims = root.absolute() / CLAIMS / run_id(config)
    claims.mkdir(parents=True, exist_ok=True)
    p = claims / hashlib.sha256(str(d.absolute()).encode()).hexdigest()[:32]
    mine = f"{os.getpid()} {os.environ.get('PYTEST_XDIST_WORKER', 'main')} {who}"
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        owner = p.read_text()
        pid = int(owner.split(" ", 1)[0] or 0)
        if pid == os.getpid():
            return
        if not _alive(pid):          # a worker that died (xdist replaced it): its boot is over
            with contextlib.suppress(OSError):    # keep what its consoles said, beside the new boot
                os.rename(d, d.with_name(f"{d.name}.died-{pid}"))
            p.write_text(mine)
            return
        raise HarnessError(f"two boots of one run share the directory {d}: {who} (here) and "
                           f"{owner.split(' ', 1)[-1]} (pid {owner.split(' ', 1)[0]}); the second would empty "
                           f"the first's directory and write into its console logs",
                           field="boot directory (artifacts/<module>/<test or scenario>/<boot>)",
                           fix="give the boots distinct spec names; under -n, tests that share a boot must "
                               "share a group (harness/run/shard.py boot_group)") from None
    with os.fdopen(fd, "w") as f:
        f.write(mine)


def _alive(pid: int) -> bool:
    """pid runs (a zombie, killed and not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return pid > 0 and stat.rsplit(")", 1)[-1].split()[0] != "Z"


def forget_claims(config, root: Path, *, mine: bool) -> None:
    """The run's own claims (mine, at its end), or those of runs a day old (at the start:
    a killed run's claims; they never fail another run, whose id differs)."""
    base = root.absolute() / CLAIMS
    if mine:
        shutil.rmtree(base / run_id(config), ignore_errors=True)
        with contextlib.suppress(OSError):
            base.rmdir()
        return
    for d in base.glob("*") if base.is_dir() else ():
        with contextlib.suppress(OSError):
            if time.time() - d.stat().st_mtime > 86400:
                shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ groups: worker -> controller
def write_groups(config, items, left_out: dict) -> None:
    """A worker, after its collection: every selected test's group, whether it boots, and
    its SUT, for the controller's scheduler and build; and the test x SUT pairs it left out
    (pytest_plugin's summary line, which the controller prints)."""
    from .shard import boot_group
    where = config.workerinput.get(GROUPS)
    if not where:
        return
    data = {i.nodeid: [boot_group(i), bool(i.get_closest_marker("boot")),
                       getattr(getattr(i, "callspec", None), "params", {}).get("sut")] for i in items}
    out = Path(where) / f"{config.workerinput['workerid']}.json"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"groups": data, "left_out": left_out}))
    os.replace(tmp, out)


def read_groups(config) -> dict[str, list]:
    """The groups a worker wrote (every worker collected the same: xdist checks); its
    left-out pairs go to the controller's summary line."""
    where = getattr(config, "_harness_groups_dir", None)
    for f in sorted(Path(where).glob("*.json")) if where else ():
        data = json.loads(f.read_text())
        if data["left_out"]:
            from .pytest_plugin import NOT_APPLICABLE
            config.stash[NOT_APPLICABLE] = data["left_out"]
        return data["groups"]
    return {}


def work_order(collection: list[str], groups: dict[str, list]) -> list[tuple[str, list[str]]]:
    """The collection as work units (group, its tests in collection order), longest
    first: groups that boot before the rest, then by number of tests (a boot group's time
    grows with its tests), ties in collection order. Greedy longest-first keeps the last
    worker from starting a long boot when the others are done."""
    units: dict[str, list[str]] = {}
    boots: dict[str, bool] = {}
    for nodeid in collection:
        group, boot, _ = groups.get(nodeid, (nodeid, False, None))
        units.setdefault(group, []).append(nodeid)
        boots[group] = boots.get(group, False) or boot
    first = {g: i for i, g in enumerate(units)}
    order = sorted(units, key=lambda g: (not boots[g], -len(units[g]) if boots[g] else 0, first[g]))
    return [(g, units[g]) for g in order]


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:                   # pytest-xdist not installed: -n does not exist either
    LoadScopeScheduling = object


class BootGroupScheduling(LoadScopeScheduling):
    """xdist's loadscope with our groups as scopes, our order, the build first, and at
    most `boots_at_once` workers booting at a time: a boot's QEMU runs a thread per vCPU,
    and two 2-vCPU QEMUs on 2 cores took 1.9x the CPU for the same boots (guests spin
    while a vCPU thread waits for a core), so the other workers run the tests that do
    not boot meanwhile."""
    boots_at_once = 1

    def _split_scope(self, nodeid: str) -> str:
        return self._groups.get(nodeid, (nodeid,))[0]

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            return super().schedule()
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        self._groups = read_groups(self.config)
        self.collection = list(next(iter(self.registered_collections.values())))
        if not self.collection:
            return
        if any(boot for _, boot, _ in self._groups.values()):
            from .pytest_plugin import build_images
            build_images(self.config, {s for _, boot, s in self._groups.values() if boot and s})
        self._boot_units = set()
        for group, nodeids in work_order(self.collection, self._groups):
            self.workqueue[group] = dict.fromkeys(nodeids, False)
            if any(self._groups.get(n, (n, False))[1] for n in nodeids):
                self._boot_units.add(group)
        for _ in range(max(0, len(self.nodes) - len(self.workqueue))):    # more workers than work
            self.assigned_work.popitem()[0].shutdown()
        for node in self.nodes:
            self._reschedule(node)
        for node in self.nodes:
            self._reschedule(node)

    def mark_test_complete(self, node, item_index: int, duration: float = 0) -> None:
        nodeid = self.registered_collections[node][item_index]
        self.assigned_work[node][self._split_scope(nodeid)][nodeid] = True
        for other in [node] + [n for n in self.nodes if n is not node]:   # a boot ended: a waiting worker may boot
            self._reschedule(other)

    def _booting(self, node) -> bool:
        return any(scope in self._boot_units and not all(work.values())
                   for scope, work in self.assigned_work.get(node, {}).items())

    def _reschedule(self, node) -> None:
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work.get(node, {})) > 2:
            return
        others_booting = sum(self._booting(n) for n in self.nodes if n is not node)
        scope = next((g for g in self.workqueue if g not in self._boot_units or others_booting < self.boots_at_once),
                     None)
        if scope is None:
            return                   # only boots are left and enough run: this worker waits for one to end
        work = self.workqueue.pop(scope)
        self.assigned_work.setdefault(node, {})[scope] = work
        collection = self.registered_collections[node]
        node.send_runtest_some([collection.index(n) for n, done in work.items() if not done])


def boots_at_once(cores: int, smp: int) -> int:
    """Boots that run at once under -n: a core for each of a boot's vCPU threads."""
    return max(1, cores // max(1, smp))


# ------------------------------------------------------------------ hooks
def pytest_configure(config):
    if is_controller(config):
        if config.option.keep_qemu:
            raise pytest.UsageError("harness: --keep-qemu waits for Ctrl-C on your terminal, which an xdist "
                                    "worker does not have: run the failing test without -n")
        config._harness_groups_dir = tempfile.mkdtemp(prefix="harness-xdist-")
    if not is_worker(config):
        forget_claims(config, config.option.artifacts, mine=False)


def pytest_unconfigure(config):
    if not is_worker(config):
        forget_claims(config, config.option.artifacts, mine=True)
        if getattr(config, "_harness_groups_dir", None):
            shutil.rmtree(config._harness_groups_dir, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput[GROUPS] = node.config._harness_groups_dir
    node.config._harness_run_id = node.workerinput["testrunuid"]   # the workers' claims are this run's


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    s = BootGroupScheduling(config, log)
    s._groups, s._boot_units = {}, set()
    s.boots_at_once = _boots_at_once(config)
    return s


def _boots_at_once(config) -> int:
    """--boots-at-once, else a core for each vCPU of the board's boots."""
    q = _board_qemu(config)
    return config.option.boots_at_once or boots_at_once(len(os.sched_getaffinity(0)), q.smp if q else 2)


def mem_available_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def auto_workers(cores: int, available_mib: int | None, per_boot_mib: int) -> int:
    """-n auto: a worker per core, and no more than memory holds one boot each (a boot's
    QEMU can touch all of the board's RAM; measured peaks are ~0.7 of 2 GiB, so this is safe)."""
    by_memory = available_mib // per_boot_mib if available_mib else cores
    return max(1, min(cores, by_memory))


def _board_qemu(config):
    """The [qemu] table of the run's board (None when it does not load: pytest_plugin says why)."""
    from ..data.board import load_board
    try:
        return load_board(config.option.board or os.environ.get("HARNESS_BOARD") or "qemu-virt").qemu
    except HarnessError:
        return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    q = _board_qemu(config)
    return auto_workers(len(os.sched_getaffinity(0)), mem_available_mib(), (q.memory_mib if q else 2048) + 256)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """A worker's coverage runs join the controller's, which writes the one report."""
    from . import lifecycle
    for ws, run in getattr(node, "workeroutput", {}).get(COVERAGE, []):
        lifecycle.COVERAGE_RUNS.append((Path(ws), Path(run)))


def pytest_sessionfinish(session):
    if is_worker(session.config):
        from . import lifecycle
        session.config.workeroutput[COVERAGE] = [[str(ws), str(run)] for ws, run in lifecycle.COVERAGE_RUNS]


def pytest_addoption(parser):
    from .cli import at_least_one
    parser.getgroup("harness", "Xen SCMI harness").addoption(
        "--boots-at-once", type=at_least_one("boots"), metavar="N",
        help="under -n: at most N workers boot at a time, the others run tests that do not boot "
             "(default: cores / the board's vCPUs)")


def pytest_report_header(config):
    if is_controller(config):
        return (f"harness: {config.option.numprocesses} workers, {_boots_at_once(config)} booting at a time; a scenario's tests "
                "stay on one worker, images are built before the first test")
