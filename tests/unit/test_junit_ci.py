"""The JUnit XML as a CI page reads it (GitLab's parser: no <properties>; a failed test's
<failure> text, then its one <system-out>, whose first [[ATTACHMENT|path]] it links, the
path relative to the project dir). pytest runs tiny tests with the harness plugin in a
subprocess, with fake builders and boots (no build, no QEMU)."""
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GITLAB_ATTACHMENT = re.compile(r"\[\[ATTACHMENT\|(?P<path>[^\[\]\|]+?)\]\]")   # GitLab's own pattern

TESTS = '''
import types
from pathlib import Path

import pytest

from harness.run import lifecycle
from harness.machine.steps import StepLog

ARTIFACTS = Path("artifacts").absolute()


class Entry:
    def __init__(self, name):
        self.name = name

    def describe(self):
        return f"{self.name} 1.0 sha256:abc"


@pytest.fixture(scope="module")
def harness_builder():
    return types.SimpleNamespace(board=types.SimpleNamespace(name="qemu-virt"),
                                 xen_spec=types.SimpleNamespace(describe=lambda: "lock"), series=None,
                                 lock={n: Entry(n) for n in ("xen", "tf-a", "kernel")})


def boot(name):
    """A boot as lifecycle.start tracks it: its directory with consoles, and its step log."""
    d = ARTIFACTS / "test_x" / name
    d.mkdir(parents=True, exist_ok=True)
    for f in ("uart0.console.log", "uart1.console.log"):
        (d / f).write_text("console")
    log = StepLog(d / "steps.log")
    lifecycle.track(name, d, log)
    return d, log


def test_passes(harness_builder):
    d, log = boot("v5-ok")
    with log.step("shell", "true"):
        pass


def test_fails(harness_builder):
    boot("v5-other")[1].record("shell", "an earlier boot's step", 0.0, 0.0)    # not during this test
    d, log = boot("v5-bad")
    with log.step("shell", "true"):
        pass
    with pytest.raises(AssertionError), log.step("check", "reset"):
        raise AssertionError("no reset")
    raise AssertionError(f"no reset in {d / 'uart1.console.log'}")


def test_unit():
    print("captured")
'''


def run(tmp_path, *args):
    (tmp_path / "test_x.py").write_text(TESTS)
    junit = tmp_path / "out" / "junit.xml"
    env = {"PATH": "/usr/bin:/bin", "CI_PROJECT_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
                        "-o", "junit_family=xunit1", *args, "test_x.py"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr         # test_fails fails, the rest pass
    return {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}


def outs(case):
    return [el.text or "" for el in case.findall("system-out")]


def test_a_failed_boot_test_has_provenance_attachments_and_relative_paths(tmp_path):
    cases = run(tmp_path)
    failed = cases["test_fails"]
    (out,) = outs(failed)                                  # exactly one: two break GitLab's parse
    assert "  board: qemu-virt" in out and "  lock_kernel: kernel 1.0 sha256:abc" in out
    assert "  xen_source: lock" in out and "  v5-bad: artifacts/test_x/v5-bad" in out
    assert "v5-other" not in out                           # it took no step during this test
    links = GITLAB_ATTACHMENT.findall(out)
    assert links[0] == "artifacts/test_x/v5-bad/uart0.console.log"     # the one GitLab links
    assert "artifacts/test_x/v5-bad/uart1.console.log" in links
    assert all(not Path(p).is_absolute() and (tmp_path / p).is_file() for p in links)
    failure = failed.find("failure")
    assert failure.get("message") == "AssertionError: no reset in artifacts/test_x/v5-bad/uart1.console.log"
    assert str(tmp_path) not in failure.get("message") + failure.text
    props = {p.get("name"): p.get("value") for p in failed.iter("property")}
    assert "harness_system_out" not in props and props["boot_dir_v5-bad"] == "artifacts/test_x/v5-bad"


def test_a_passed_boot_test_says_what_it_ran_on_without_attachments(tmp_path):
    cases = run(tmp_path)
    (out,) = outs(cases["test_passes"])
    assert "harness: what this test ran on" in out and "v5-ok: artifacts/test_x/v5-ok" in out
    assert "ATTACHMENT" not in out
    assert outs(cases["test_unit"]) == []                  # builds and boots nothing: nothing to say


def test_one_system_out_also_when_pytest_writes_its_own(tmp_path):
    cases = run(tmp_path, "-o", "junit_logging=system-out")
    (out,) = outs(cases["test_fails"])
    assert out.startswith("harness: what this test ran on") and "[[ATTACHMENT|artifacts/" in out
    assert "Captured Out" in outs(cases["test_unit"])[0]
