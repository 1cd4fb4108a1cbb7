"""The step log (harness/machine/steps.py) and the lifecycle's report of it (harness/run/lifecycle.py),
without QEMU: what a failing boot test's report quotes."""
import time
import types

import pytest

from harness.run import lifecycle
from harness.machine.steps import StepLog, checked


def test_steps_record_duration_result_and_nesting(tmp_path):
    log = StepLog(tmp_path / "steps.log")
    with log.step("shell", "xl create /guests/domu.cfg"):
        with log.step("put", "/guests/domu.cfg (120 bytes)"):
            time.sleep(0.05)
    with pytest.raises(AssertionError):
        with log.step("check", "agent_reset domu"):
            raise AssertionError("Xen never reset agent 2\nmore lines")
    put, shell, check = log.steps
    assert (put.name, shell.name, check.name) == ("put", "shell", "check")
    assert put.detail.startswith("  ") and not shell.detail.startswith(" "), "nested steps are indented"
    assert shell.seconds >= put.seconds >= 0.05 and put.result == shell.result == "ok"
    assert check.result == "AssertionError: Xen never reset agent 2"
    written = (tmp_path / "steps.log").read_text().splitlines()
    assert len(written) == 3 and "check: agent_reset domu" in written[2] and "AssertionError" in written[2]


def test_between_and_report_keep_the_tail():
    log = StepLog()
    for i in range(20):
        with log.step("shell", f"cmd {i}"):
            pass
    assert len(log.between(log.steps[5].wall, log.steps[9].wall)) >= 5
    text = log.report()
    assert text.startswith("(5 earlier steps") and "cmd 19" in text and "cmd 4" not in text


def test_checked_makes_a_check_one_step_of_its_system():
    s = types.SimpleNamespace(steps=StepLog())
    g = types.SimpleNamespace(name="domu")

    @checked()
    def device_granted(system, guest, device):
        return device

    assert device_granted(s, g, "periph") == "periph"
    assert s.steps.steps[0].detail == "device_granted domu periph"


def test_failure_report_quotes_the_running_systems_steps(monkeypatch):
    s = types.SimpleNamespace(steps=StepLog(), spec=types.SimpleNamespace(name="v5-xl-domu"))
    monkeypatch.setattr(lifecycle, "RUNNING", [s])
    t0 = time.time()
    with s.steps.step("wait-guest", "domu: 'HARNESS: domU ready' (120 s)"):
        pass
    (title, text), = lifecycle.steps_report(t0, time.time())
    assert "v5-xl-domu" in title and "wait-guest: domu" in text
    assert lifecycle.steps_report(t0 - 10, t0 - 5) == []


def test_provenance_names_board_sources_series_and_locks():
    from harness.images.build import Builder
    p = lifecycle.provenance(Builder())
    assert {"board", "xen_source", "xen_patches", "lock_xen", "lock_tf-a", "lock_kernel"} <= p.keys()
    assert p["board"] == "qemu-virt"


def test_the_report_shows_a_nested_step_under_its_parent():
    log = StepLog()
    with log.step("xl-create", "domu"):
        with log.step("shell", "xl create domu.cfg"):
            pass
    assert [s.name for s in log.steps] == ["shell", "xl-create"], "the log holds a step when it ends"
    lines = log.report().splitlines()
    assert "xl-create: domu" in lines[0] and "shell:   xl create" in lines[1]
