"""The stages of harness/ (harness/__init__.py): a module imports only from its own stage or
an earlier one, imports inside functions included. import-linter checks the layers contract
of pyproject.toml ([tool.importlinter]); `exhaustive` makes every top-level module of
harness/ a listed stage (a new module names its stage, or the contract breaks)."""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on root's pyproject.toml and harness/ (root first on the path)."""
    assert LINT_IMPORTS.is_file(), f"no {LINT_IMPORTS}: install the test extra (pip install -e '.[test]')"
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}, timeout=120)


def test_no_stage_imports_a_later_one():
    r = lint_imports(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 kept, 0 broken" in r.stdout, r.stdout


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_an_import_of_a_later_stage_inside_a_function_breaks_the_contract(tmp_path):
    root = _copy(tmp_path)
    spec = root / "harness" / "data" / "spec.py"
    spec.write_text(spec.read_text() + "\n\ndef _late():\n    from ..run import cli\n    return cli\n")
    r = lint_imports(root)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "harness.data is not allowed to import harness.run" in r.stdout, r.stdout
    assert "harness.data.spec -> harness.run.cli" in r.stdout, r.stdout


def test_a_module_outside_the_stages_breaks_the_contract(tmp_path):
    root = _copy(tmp_path)
    (root / "harness" / "stray.py").write_text('"""in no stage"""\n')
    r = lint_imports(root)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "harness.stray" in r.stdout + r.stderr, r.stdout + r.stderr
