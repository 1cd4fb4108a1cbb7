"""pytest -n N (harness/run/parallel.py): whole boot groups per worker, longest first; boots
of one run never share a directory; a dead worker's claim is taken over, its boot kept."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.run import parallel
from harness.errors import HarnessError

REPO = Path(__file__).resolve().parents[2]


def _config(run="run-1"):
    return SimpleNamespace(workerinput={"testrunuid": run, "workerid": "gw0"}, option=SimpleNamespace())


def test_a_boot_directory_claimed_by_another_live_process_of_the_run_fails(tmp_path):
    d = tmp_path / "test_scenarios" / "v5-xl-domu"
    other = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time, types
        from pathlib import Path
        from harness.run import parallel
        cfg = types.SimpleNamespace(workerinput={{"testrunuid": "run-1", "workerid": "gw1"}})
        parallel.claim_boot_dir(cfg, Path({str(tmp_path)!r}), Path({str(d)!r}), "test_forwarding[v5-xl-domu]")
        print("claimed", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert other.stdout.readline().strip() == "claimed"
        with pytest.raises(HarnessError, match="two boots of one run share the directory") as e:
            parallel.claim_boot_dir(_config(), tmp_path, d, "test_reset_on_destroy[v5-xl-domu]")
        assert "test_forwarding[v5-xl-domu]" in str(e.value) and f"pid {other.pid}" in str(e.value)
        parallel.claim_boot_dir(_config("run-2"), tmp_path, d, "another run")   # another run: its own claims
    finally:
        other.kill()
        other.wait()
    # the claimer died (xdist replaced the worker): its boot is kept aside, the claim taken over
    d.mkdir(parents=True)
    (d / "uart0.console.log").write_text("Xen panic\n")
    parallel.claim_boot_dir(_config(), tmp_path, d, "test_reset_on_destroy[v5-xl-domu]")
    assert (d.parent / f"v5-xl-domu.died-{other.pid}" / "uart0.console.log").read_text() == "Xen panic\n"
    parallel.claim_boot_dir(_config(), tmp_path, d, "the same process boots there again")


def test_work_order_deals_whole_groups_boots_first_biggest_first():
    collection = ["u::a", "s::f[v5-x]", "s::g[v5-x]", "s::f[v5-y]", "s::g[v5-y]", "s::h[v5-y]", "b::one", "u::b"]
    groups = {n: [n, False, None] for n in collection}
    for n in collection[1:6]:
        groups[n] = ["s[" + n.split("[")[1], True, "v5"]
    groups["b::one"] = ["b::one", True, "v5"]
    order = parallel.work_order(collection, groups)
    assert [g for g, _ in order] == ["s[v5-y]", "s[v5-x]", "b::one", "u::a", "u::b"]
    assert dict(order)["s[v5-y]"] == ["s::f[v5-y]", "s::g[v5-y]", "s::h[v5-y]"]   # collection order kept


def test_under_n_2_a_scenarios_tests_share_one_worker_and_outcomes_match_serial(tmp_path):
    """A real pytest -n 2 with the harness plugin: tests that share a boot (shared_boot,
    one module-scoped scenario) run on one worker, in order, and the ids and outcomes are
    those of the serial run."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import os, pytest
        @pytest.fixture(scope="module")
        def name(request):
            return request.param
        @pytest.fixture(scope="module")
        def shared_boot(request, name):   # what the real one shares: one boot per scenario and module
            from harness.run import parallel
            root = request.config.option.artifacts       # and its directory, claimed for the run
            parallel.claim_boot_dir(request.config, root, root / "test_groups" / name, name)
            return {"scenario": name, "pid": os.getpid()}
    """))
    (tmp_path / "test_groups.py").write_text(textwrap.dedent("""
        import os, pytest
        SCENARIOS = ["a", "b", "c", "d"]
        pytestmark = pytest.mark.parametrize("name", SCENARIOS, indirect=True, scope="module")
        def _note(shared_boot, test):
            with open(os.environ["GROUPS_LOG"], "a") as f:
                f.write(f"{shared_boot['scenario']} {test} {os.getpid()} {shared_boot['pid']}\\n")
        def test_first(shared_boot): _note(shared_boot, "first")
        def test_second(shared_boot): _note(shared_boot, "second")
        def test_third(shared_boot, name):
            _note(shared_boot, "third")
            assert name != "c"
    """))
    runs = {}
    for label, extra in (("serial", []), ("n2", ["-n", "2"])):
        log = tmp_path / f"{label}.log"
        junit = tmp_path / f"{label}.xml"
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                            f"--rootdir={tmp_path}", f"--artifacts={tmp_path / label}", f"--junitxml={junit}",
                            str(tmp_path / "test_groups.py"), *extra],
                           cwd=tmp_path, env={**os.environ, "GROUPS_LOG": str(log)}, capture_output=True, text=True)
        assert r.returncode == 1, r.stdout + r.stderr        # test_third[c] fails in both
        runs[label] = (log.read_text().split("\n")[:-1], r.stdout)
    serial, par = runs["serial"][0], runs["n2"][0]
    assert sorted(serial) != [] and len(serial) == len(par) == 12
    by_scenario: dict[str, set] = {}
    for line in par:
        scenario, test, pid, boot_pid = line.split()
        assert pid == boot_pid
        by_scenario.setdefault(scenario, set()).add(pid)
    assert all(len(pids) == 1 for pids in by_scenario.values()), f"a scenario's tests were split: {par}"
    assert len({p for pids in by_scenario.values() for p in pids}) == 2, "both workers booted"
    for s in "abcd":      # each scenario's tests in their own order
        assert [ln.split()[1] for ln in par if ln.startswith(s)] == ["first", "second", "third"]
    assert "1 failed, 11 passed" in runs["serial"][1] and "1 failed, 11 passed" in runs["n2"][1]
    import xml.etree.ElementTree as ET
    ids = [{(c.get("classname"), c.get("name"), bool(list(c))) for c in ET.parse(tmp_path / f"{x}.xml").iter("testcase")}
           for x in ("serial", "n2")]
    assert ids[0] == ids[1]
    for label in ("serial", "n2"):   # the run's claims go with it (the workers' too: one run id)
        assert not list((tmp_path / label / parallel.CLAIMS).glob("*")), label


def test_keep_qemu_is_refused_with_n():
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--keep-qemu",
                        "--collect-only", "tests/unit/test_parallel.py"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode != 0 and "--keep-qemu waits for Ctrl-C" in r.stdout + r.stderr


def test_auto_workers_is_one_per_core_as_memory_allows():
    assert parallel.auto_workers(32, 64 * 1024, 2304) == 28          # memory bounds a big runner
    assert parallel.auto_workers(2, 23 * 1024, 2304) == 2             # cores bound this machine
    assert parallel.auto_workers(8, 1024, 2304) == 1 and parallel.auto_workers(4, None, 2304) == 4


def test_bench_parallel_projection_deals_groups_longest_first_and_respects_cpu():
    from harness.run import bench_parallel as b
    assert b.lpt([5, 4, 3, 3, 3], 2) == 10 and b.lpt([10, 1, 1], 8) == 10 and b.lpt([], 4) == 0
    serial = b.Run("serial", wall=32.0, cpu=40.0, exit_code=0)
    serial.test_times = {"t1": 10.0, "t2": 5.0, "t3": 8.0, "t4": 7.0}
    serial.test_boots = {"t1": ["a/x"], "t2": ["a/x"], "t3": ["a/y"], "t4": []}   # t1+t2 share a boot
    assert sorted(b.groups(serial)) == [(7.0, 0.0, False), (8.0, 0.0, True), (15.0, 0.0, True)]
    assert b.project(serial, 2) == (2.0 + 23.0, "boots at once")     # 2 cores: one 2-vCPU boot at a time
    assert b.project(serial, 8) == (2.0 + 15.0, "the longest group")
    assert b.project(serial, 8, cpu=200.0) == (2.0 + 25.0, "CPU")


class _Node:
    def __init__(self, name):
        self.name, self.sent, self.shutting_down = name, [], False

    def send_runtest_some(self, indices):
        self.sent += indices

    def shutdown(self):
        self.shutting_down = True


def test_at_most_boots_at_once_workers_boot_the_others_run_what_does_not_boot():
    """2 workers, 1 boot at a time: while one boots, the other takes the tests that do not
    boot, and the second boot group waits for the first to end."""
    from collections import OrderedDict
    collection = [f"s::t{i}[A]" for i in range(3)] + [f"s::t{i}[B]" for i in range(3)] + [f"u::{i}" for i in range(6)]
    groups = {n: ["s[" + n.split("[")[1], True, "v5"] if "[" in n else [n, False, None] for n in collection}
    s = object.__new__(parallel.BootGroupScheduling)
    nodes = [_Node("gw0"), _Node("gw1")]
    s.workqueue, s.assigned_work, s.collection, s.log = OrderedDict(), {n: {} for n in nodes}, collection, print
    s.registered_collections = {n: collection for n in nodes}
    s._groups, s._boot_units, s.boots_at_once = groups, set(), 1
    for g, ids in parallel.work_order(collection, groups):
        s.workqueue[g] = dict.fromkeys(ids, False)
        s._boot_units |= {g} if groups[ids[0]][1] else set()
    for _ in (1, 2):
        for n in nodes:
            s._reschedule(n)
    a, b = nodes
    assert [collection[i] for i in a.sent] == ["s::t0[A]", "s::t1[A]", "s::t2[A]"]
    assert all(collection[i].startswith("u::") for i in b.sent) and b.sent      # not s[B]: A is booting
    for i in list(b.sent):
        s.mark_test_complete(b, i)
    assert not any("[B]" in collection[i] for i in a.sent + b.sent)               # still waiting for A
    for i in list(a.sent):
        s.mark_test_complete(a, i)
    booted_b = [n for n in nodes if any("[B]" in collection[i] for i in n.sent)]
    assert len(booted_b) == 1 and sorted(collection[i] for i in booted_b[0].sent if "[B]" in collection[i]) == \
        ["s::t0[B]", "s::t1[B]", "s::t2[B]"]
    assert parallel.boots_at_once(2, 2) == 1 and parallel.boots_at_once(16, 2) == 8 and parallel.boots_at_once(1, 4) == 1
