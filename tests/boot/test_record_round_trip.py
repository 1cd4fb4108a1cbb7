"""A record is what a boot shows, not what someone wrote: delete part of a revision's record
(a copy of records/, HARNESS_RECORDS), record it again with `pytest --record` in a pytest of
its own, and the pending entries are the accepted ones (a reviewer's defect words aside).
A sample that costs four short boots: a crash, a reset fault's whole sequence, a broken
configuration, the assign domctl's errnos."""
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness.checks import records

pytestmark = [pytest.mark.boot, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
# (section, key, the -k expression that runs the test that records it); the first present ones
SAMPLE = (
    ("fault", "fault-setperm-denied", "test_xen_against_a_faulty_firmware and fault-setperm-denied"),
    ("fault", "fault-reset-smc-unsupported", "test_a_failed_reset_and_the_agent_after_it and fault-reset-smc-unsupported"),
    ("bad-config", "bad-duplicate-agent-id", "test_bad_config_is_refused and bad-duplicate-agent-id"),
    ("assign-domctl", "qemu-virt", "test_assign_domctl_without_an_iommu"),
)


def test_a_record_deleted_and_recorded_again_is_the_same(harness_builder, request, tmp_path):
    sut = harness_builder.sut
    if request.config.option.record:
        pytest.skip("this run records: the round trip is for a run that asserts")
    name = records.sut_record(sut)
    accepted = records.load(name)
    sample = [(sec, key, k) for sec, key, k in SAMPLE if key in accepted.get(sec, {})]
    if not sample:
        pytest.skip(f"records/{name}.toml holds none of the sampled entries")
    copy = tmp_path / "records"
    shutil.copytree(records.RECORDS, copy, ignore=shutil.ignore_patterns("*.pending.toml*"))
    data = tomllib.loads((copy / f"{name}.toml").read_text())
    for sec, key, _ in sample:
        del data[sec][key]
    (copy / f"{name}.toml").write_text(records.render(data, "the record with the sampled entries deleted"))
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"HARNESS_RECORDS": str(copy)}
    cmd = [sys.executable, "-m", "pytest", "-m", "boot", f"--sut={sut.name}", "--record", "-p", "no:cacheprovider",
           f"--artifacts={tmp_path / 'artifacts'}", "-q", "-k", " or ".join(f"({k})" for _, _, k in sample)]
    if request.config.option.harness_cache:
        cmd.append(f"--harness-cache={request.config.option.harness_cache}")
    if request.config.option.board:
        cmd.append(f"--board={request.config.option.board}")
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=850)
    assert run.returncode == 0, f"recording again failed:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
    pending = tomllib.loads((copy / f"{name}.pending.toml").read_text())
    for sec, key, _ in sample:
        want = {f: v for f, v in accepted[sec][key].items() if f not in records.HUMAN}
        assert pending.get(sec, {}).get(key) == want, \
            f"[{sec}.{key}] recorded again differs from records/{name}.toml:\n  accepted {want}\n  " \
            f"recorded {pending.get(sec, {}).get(key)}"
