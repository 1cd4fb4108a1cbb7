"""Patch series: loading a directory or an mbox, applying with git am, explaining failures."""
import subprocess

import pytest

from harness.errors import HarnessError
from harness.patches import GIT_ID, apply_series, load_series


def git(cwd, *args):
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def series(tmp_path):
    """A two-patch series made with git format-patch, and a pristine copy of its base."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    (repo / "a.c").write_text("".join(f"line {i}\n" for i in range(20)))
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    (repo / "a.c").write_text((repo / "a.c").read_text().replace("line 5\n", "line 5 changed\n"))
    git(repo, "commit", "-qam", "xen/arm: first change")
    (repo / "b.c").write_text("new file\n")
    git(repo, "add", "b.c")
    git(repo, "commit", "-qm", "xen/arm: add b.c")
    out = tmp_path / "series"
    git(repo, "format-patch", "-q", "-o", str(out), "HEAD~2")
    base = tmp_path / "base"
    base.mkdir()
    (base / "a.c").write_text("".join(f"line {i}\n" for i in range(20)))
    return out, base


def test_directory_series_applies(series):
    out, base = series
    s = load_series(out)
    assert [p.subject for p in s.patches] == ["xen/arm: first change", "xen/arm: add b.c"]
    apply_series(s, base)
    assert "line 5 changed" in (base / "a.c").read_text()
    assert (base / "b.c").exists()
    assert git(base, "log", "--format=%s").splitlines()[:2] == ["xen/arm: add b.c", "xen/arm: first change"]


def test_mbox_series_applies_and_digest_matches_content(series, tmp_path):
    out, base = series
    mbox = tmp_path / "series.mbox"
    mbox.write_bytes(b"".join(p.read_bytes() for p in sorted(out.iterdir())))
    s = load_series(mbox)
    assert len(s.patches) == 2 and s.patches[1].subject == "xen/arm: add b.c"
    assert s.digest == load_series(out).digest      # same bytes, same key
    apply_series(s, base)
    assert (base / "b.c").exists()


def test_patch_that_does_not_apply_names_subject_file_and_hunk(series):
    out, base = series
    (base / "a.c").write_text("something else entirely\n")
    with pytest.raises(HarnessError) as e:
        apply_series(load_series(out), base)
    msg = str(e.value)
    assert "patch 1 'xen/arm: first change' does not apply" in msg
    assert "a.c" in msg and "hunk at line" in msg
    assert "0001-xen-arm-first-change.patch" in msg
    assert not (base / ".git" / "rebase-apply").exists(), "git am must be aborted"


def test_second_patch_failure_is_attributed_to_it(series):
    out, base = series
    (base / "b.c").write_text("already here\n")
    with pytest.raises(HarnessError, match=r"patch 2 'xen/arm: add b.c'.*b\.c"):
        apply_series(load_series(out), base)


def test_bad_series_inputs(tmp_path):
    with pytest.raises(HarnessError, match="not found"):
        load_series(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="no \\*.patch files"):
        load_series(tmp_path / "empty")
    (tmp_path / "notes.patch").write_text("just some notes\n")
    with pytest.raises(HarnessError, match="not a git format-patch"):
        load_series(tmp_path / "notes.patch")


def test_sut_series_loads_when_present():
    from harness.sut import get
    v5 = get("v5")
    if v5.missing:
        pytest.skip(f"SUT v5: {v5.missing}")
    s = load_series(v5.series)
    assert len(s.patches) == 11
    assert "multi-agent" in " ".join(p.subject for p in s.patches)
