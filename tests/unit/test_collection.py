"""Issue 13 item 5: how pytest collects the harness's tests. Each probe runs a real
pytest (collect-only, or one tiny test) in a subprocess. Before the fix: a board copy
under another file name selected 6 scenario tests instead of 22, --collect-only never
parsed the board, one broken scenario stopped the collection, `--board /path` ran
without pyproject.toml, and a test's timeout marker beat --timeout."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.plan import scenario
from harness.errors import HarnessError

REPO = Path(__file__).resolve().parents[2]


def pytest_run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def collected(r: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in r.stdout.splitlines() if "::" in ln]


def test_a_board_copy_under_another_file_name_selects_the_same_scenarios(tmp_path):
    copy = tmp_path / "my-lab-board.toml"
    shutil.copy(REPO / "boards/qemu-virt.toml", copy)
    by_name = pytest_run("--collect-only", "-q", "tests/boot/test_scenarios.py")
    by_copy = pytest_run("--collect-only", "-q", "tests/boot/test_scenarios.py", f"--board={copy}")
    assert by_name.returncode == by_copy.returncode == 0, by_copy.stdout + by_copy.stderr
    assert len(collected(by_copy)) == len(collected(by_name)) > 10


def test_collect_only_parses_the_board(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((REPO / "boards/qemu-virt.toml").read_text().replace("smp", "smpp", 1))
    r = pytest_run("--collect-only", "-q", "tests/unit/test_board.py", f"--board={bad}")
    assert r.returncode == 4
    assert re.search(r"--board .*bad\.toml: .*smpp.*did you mean 'smp'", r.stderr), r.stderr


def test_an_option_value_after_a_space_is_explained_not_run_without_pyproject(tmp_path):
    copy = tmp_path / "board.toml"
    shutil.copy(REPO / "boards/qemu-virt.toml", copy)
    r = pytest_run("--collect-only", "-q", "--board", str(copy))
    assert r.returncode == 4
    assert "did not read" in r.stderr and "--board=/path/board.toml" in r.stderr, r.stderr


def test_one_broken_scenario_is_named_and_the_others_still_load(tmp_path, monkeypatch):
    for name in ("xl-domu", "xl-isolation"):
        shutil.copy(REPO / f"scenarios/{name}.toml", tmp_path)
    (tmp_path / "broken.toml").write_text('description = "x"\nfamilies = ["forwarding"]\n[boot]\nxen_args = "a"\n')
    monkeypatch.setattr(scenario, "SCENARIOS_DIR", tmp_path)
    broken: dict[str, str] = {}
    assert scenario.names("forwarding", board="qemu-virt", broken=broken) == ["xl-domu"]
    assert list(broken) == ["broken"] and "boot.xen_args" in broken["broken"]
    with pytest.raises(HarnessError, match="boot.xen_args"):      # without `broken` it still raises
        scenario.names("forwarding")


def test_command_line_timeout_beats_the_marker(tmp_path):
    (tmp_path / "test_slow.py").write_text(textwrap.dedent("""
        import time, pytest
        @pytest.mark.timeout(60)
        def test_slow():
            time.sleep(5)
    """))
    r = pytest_run("-q", "--timeout", "1", "test_slow.py", cwd=tmp_path)
    assert r.returncode == 1 and "Timeout" in r.stdout, r.stdout[-2000:]


def test_pairs_a_sut_cannot_run_are_left_out_with_one_line_not_skipped():
    """Issue 28: a test x SUT pair whose SUT's profile lacks what the test needs (the
    scenario's `needs`, or the test's `needs` marker) is not collected; one line says how
    many and why; every pair that can apply keeps its id."""
    from harness.images import sut as suts
    r = pytest_run("--collect-only", "-q", "-m", "boot", "--sut=v5", "--sut=upstream-4.20")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    ids = collected(r)
    lines = [ln for ln in r.stdout.splitlines() if "pairs left out" in ln]
    assert len(lines) == 1, r.stdout[-3000:]
    m = re.search(r"harness: (\d+) test x SUT pairs left out .*upstream-4\.20 (\d+) \(lacks multiagent", lines[0])
    assert m, lines[0]
    # a scenario is there under v5 exactly when v5's profile can do its needs; none of the
    # multi-agent ones under upstream-4.20
    v5 = suts.get("v5").profile
    for n in scenario.names("forwarding", board="qemu-virt"):
        needs = scenario.load_scenario(n).needs
        assert (f"tests/boot/test_scenarios.py::test_forwarding[v5-{n}]" in ids) == all(map(v5.can, needs)), n
        if "multiagent" in needs:
            assert f"tests/boot/test_scenarios.py::test_forwarding[upstream-4.20-{n}]" not in ids
    assert "tests/boot/test_scenarios.py::test_forwarding[v5-xl-domu]" in ids
    assert "tests/boot/test_scenarios.py::test_forwarding[v5-dom0-without-agent]" not in ids
    # marked tests: upstream-4.20 is the single-agent forwarder, v5 is not; v5 lacks dom0-agent-in-dt
    assert "tests/boot/test_first_boot.py::test_upstream_xen_forwards_dom0s_smc[upstream-4.20]" in ids
    assert "tests/boot/test_first_boot.py::test_upstream_xen_forwards_dom0s_smc[v5]" not in ids
    assert not [i for i in ids if "test_access_controllers_on_firmware_scmi_are_ignored" in i]
    assert "is multiagent" in lines[0] and "dom0-agent-in-dt" in lines[0]
    # the count is the pairs that went: both SUTs see the same tests (but the any_sut ones,
    # collected under the first SUT only), so what each lost plus what it kept is the same
    counts = dict(re.findall(r"([\w.-]+) (\d+) \(lacks", lines[0]))
    kept = {n: len([i for i in ids if f"[{n}]" in i or f"[{n}-" in i]) for n in ("v5", "upstream-4.20")}
    any_sut = len([i for i in ids if "[v5]" in i and ("test_native_linux" in i or "test_ssh_into_dom0" in i)])
    assert kept["v5"] - any_sut + int(counts.get("v5", 0)) == kept["upstream-4.20"] + int(counts["upstream-4.20"])
    assert int(m[1]) == int(counts.get("v5", 0)) + int(counts["upstream-4.20"])


def test_pairs_deselected_by_m_are_not_counted():
    """Counted after -m: a unit run says nothing of boot pairs it never meant to run."""
    r = pytest_run("--collect-only", "-q", "-m", "not boot and not build", "--sut=upstream-4.20", "tests/unit/test_shard.py",
                   "tests/boot/test_v10_binding.py")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert "pairs left out" not in r.stdout, r.stdout[-2000:]
