"""--shard I/N (harness/run/shard.py), and the CI pipelines that use it (ci/)."""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.run.shard import parse_shard, select

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "ci"


def test_parse_shard():
    assert parse_shard("2/4") == (2, 4) and parse_shard(" 1 / 1 ") == (1, 1)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "", "-1/2"):
        with pytest.raises(pytest.UsageError, match="expected I/N"):
            parse_shard(bad)


def test_shards_are_disjoint_complete_and_deterministic():
    ids = [f"tests/boot/test_{m}.py::test_{t}[{p}]" for m in "ab" for t in range(5) for p in ("x", "y")]
    shards = [select(ids, i, 3) for i in (1, 2, 3)]
    assert set().union(*shards) == set(ids)
    assert sum(len(s) for s in shards) == len(ids)
    assert sorted(len(s) for s in shards) == [6, 7, 7]
    assert select(list(reversed(ids)), 2, 3) == shards[1]            # collection order does not matter
    assert select(ids, 1, 1) == set(ids)
    first = sorted(ids)
    assert first[0] in shards[0] and first[1] in shards[1] and first[3] in shards[0]


def test_a_boot_group_is_never_split():
    """Tests sharing a boot (one scenario on one SUT) go to one shard: 12 v5 boots stay 12."""
    ids = [f"tests/boot/test_scenarios.py::test_{t}[v5-{sc}]" for sc in ("a", "b", "c", "d") for t in ("f", "p", "r")]
    groups = {n: n.split("::")[0] + "[" + n.split("[")[1] for n in ids}
    shards = [select(ids, i, 3, groups) for i in (1, 2, 3)]
    assert set().union(*shards) == set(ids) and sum(len(s) for s in shards) == len(ids)
    for shard in shards:
        assert {groups[n] for n in shard} and all(
            {m for m in ids if groups[m] == groups[n]} <= shard for n in shard), "a scenario's tests were split"


TESTS = '''
import pytest

@pytest.mark.parametrize("i", range(7))
def test_unit(i):
    pass

@pytest.mark.boot
@pytest.mark.parametrize("i", range(5))
def test_boot(i):
    pass
'''


def collect(tmp_path, *args):
    """Node ids pytest (with the harness plugin, as installed) collects in a synthetic project."""
    (tmp_path / "test_synthetic.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                        "-o", "markers=boot", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    return p.returncode, [line for line in p.stdout.splitlines() if "::" in line], p.stdout + p.stderr


def test_the_plugin_shards_what_is_left_after_marker_selection(tmp_path):
    rc, everything, out = collect(tmp_path, "-m", "not boot")
    assert rc == 0 and len(everything) == 7, out
    shards = []
    for i in (1, 2, 3):
        rc, ids, out = collect(tmp_path, "-m", "not boot", "--shard", f"{i}/3")
        assert rc == 0, out
        assert f"{len(ids)}/12 tests collected ({12 - len(ids)} deselected)" in out
        shards.append(ids)
    assert sorted(len(s) for s in shards) == [2, 2, 3]                 # 7 unit tests, not 12 tests, are dealt
    assert sorted(sum(shards, [])) == sorted(everything)


def test_a_bad_shard_is_a_usage_error(tmp_path):
    rc, _, out = collect(tmp_path, "--shard", "3/2")
    assert rc == 4 and "--shard '3/2': expected I/N with 1 <= I <= N" in out

# The pipelines and ci/cell-env.sh: tests/unit/test_ci_cells.py


def test_shared_boot_tests_without_a_scenario_share_their_modules_group():
    """test_first_boot's shared boots are named by what its tests ask (v5-cells3 serves
    two tests with different parameters): its shared_boot tests of one SUT are one group."""
    script = textwrap.dedent("""
        import sys, pytest
        from harness.run.shard import boot_group
        class Groups:
            @pytest.hookimpl(trylast=True)
            def pytest_collection_modifyitems(self, items):
                for i in items:
                    print("GROUP", i.nodeid, boot_group(i))
        sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--sut=v5", "--sut=v11",
                              "tests/boot/test_first_boot.py"], plugins=[Groups()]))
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    groups = dict(line.split()[1:3] for line in r.stdout.splitlines() if line.startswith("GROUP "))
    for sut in ("v5", "v11"):
        shared = {g for n, g in groups.items() if n.endswith(f"[{sut}-agent-ids-in-dt]")
                  or n.endswith(f"[{sut}-agent-ids-discovered]") or "test_ssh_into_dom0" in n and f"[{sut}]" in n}
        assert len(shared) == 1, (sut, shared, r.stdout[-2000:] + r.stderr[-2000:])
