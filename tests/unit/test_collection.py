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

from harness import scenario
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
