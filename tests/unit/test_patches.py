"""Patch series: loading a directory or an mbox, applying with git am, explaining failures."""
import os
import shutil
import subprocess

import pytest

from harness.images import patches
from harness.errors import HarnessError
from harness.images.patches import GIT_ID, apply_series, load_series


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
    from harness.images.sut import get
    v5 = get("v5")
    if v5.missing:
        pytest.skip(f"SUT v5: {v5.missing}")
    s = load_series(v5.series)
    assert len(s.patches) == 11
    assert "multi-agent" in " ".join(p.subject for p in s.patches)


# -- parsing: only each mail's own Subject header, mails split where git am splits --------

def three_patches(tmp_path, body_of_second=""):
    """A three-patch series from git format-patch (the second commit's message body is
    `body_of_second`), and a pristine copy of its base."""
    repo = tmp_path / "up3"
    repo.mkdir()
    (repo / "a.c").write_text("base\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    for i, msg in enumerate(["xen/arm: one", "xen/arm: two\n\n" + body_of_second, "xen/arm: three"]):
        (repo / f"f{i}.c").write_text(f"{i}\n")
        git(repo, "add", f"f{i}.c")
        git(repo, "commit", "-q", "--cleanup=verbatim", "-m", msg)
    out = tmp_path / "series3"
    git(repo, "format-patch", "-q", "-o", str(out), "HEAD~3")
    base = tmp_path / "base3"
    base.mkdir()
    (base / "a.c").write_text("base\n")
    return out, base


def mbox_of(out, path):
    path.write_bytes(b"".join(p.read_bytes() for p in sorted(out.iterdir())))
    return path


def test_subject_line_in_a_commit_message_body_is_not_a_patch(tmp_path):
    body = ("Quoting the old code:\n"
            "Subject: not a patch\n"
            "From the spec: a line that a plain mbox reader takes for a new mail.\n\n"
            "Signed-off-by: A <a@example.org>\n")
    out, base = three_patches(tmp_path, body)
    for series in (out, mbox_of(out, tmp_path / "s.mbox")):
        s = load_series(series)
        assert [p.subject for p in s.patches] == ["xen/arm: one", "xen/arm: two", "xen/arm: three"], series
    apply_series(load_series(tmp_path / "s.mbox"), base)         # git am agrees: three commits
    assert git(base, "log", "--format=%s").splitlines()[:3] == ["xen/arm: three", "xen/arm: two", "xen/arm: one"]
    assert "Subject: not a patch" in git(base, "log", "-1", "--skip=1", "--format=%B")


def test_mbox_of_three_mails_is_three_patches_and_a_failure_names_the_mail(tmp_path):
    out, base = three_patches(tmp_path)
    s = load_series(mbox_of(out, tmp_path / "s.mbox"))
    assert [(p.index, p.mail, p.subject) for p in s.patches] == [
        (1, 1, "xen/arm: one"), (2, 2, "xen/arm: two"), (3, 3, "xen/arm: three")]
    assert {p.source for p in s.patches} == {tmp_path / "s.mbox"}
    (base / "f2.c").write_text("in the way\n")
    with pytest.raises(HarnessError) as e:
        apply_series(s, base)
    assert "patch 3 'xen/arm: three' does not apply" in str(e.value)
    assert f"{tmp_path / 's.mbox'} (mail 3)" in str(e.value)


FOLDED = (b"From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n"
          b"From: Ren\xc3\xa9 <rene@example.org>\n"
          b"Date: Tue, 22 Jul 2025 10:00:00 +0000\n"
          b"Subject: [PATCH v5 01/11] [RFC] =?UTF-8?q?xen/arm:_r=C3=A9sum=C3=A9_of?=\n"
          b" =?UTF-8?q?_the_SCMI?= agents,\n"
          b"\tfolded twice\n"
          b"MIME-Version: 1.0\n"
          b"Content-Type: text/plain; charset=UTF-8\n"
          b"Content-Transfer-Encoding: 8bit\n\n"
          b"The body.\nSubject: a body line, not the subject\n---\n"
          b" a.c | 1 +\n\n"
          b"diff --git a/a.c b/a.c\n--- a/a.c\n+++ b/a.c\n@@ -1 +1,2 @@\n base\n+more\n-- \n2.39.5\n\n")


def test_folded_rfc2047_subject_is_decoded_unfolded_and_untagged_like_git(tmp_path):
    f = tmp_path / "0001-resume.patch"
    f.write_bytes(FOLDED)
    (p,) = load_series(f).patches
    assert p.subject == "xen/arm: résumé of the SCMI agents, folded twice"
    info = subprocess.run(["git", "mailinfo", "/dev/null", "/dev/null"], input=FOLDED,
                          capture_output=True, check=True).stdout.decode()
    assert f"Subject: {p.subject}\n" in info            # what git am makes of it


def test_in_body_subject_at_the_top_of_the_body_wins_as_in_git_am(tmp_path):
    body = "Subject: [PATCH] xen/arm: the real\n subject\nFrom: B <b@example.org>\n\nWhy.\n"
    out, base = three_patches(tmp_path, body)
    s = load_series(out)
    assert [p.subject for p in s.patches] == ["xen/arm: one", "xen/arm: the real subject", "xen/arm: three"]
    apply_series(s, base)
    assert git(base, "log", "--format=%s").splitlines()[:3] == [p.subject for p in reversed(s.patches)]


def test_a_patch_file_that_is_not_a_mail_is_named(tmp_path, series):
    out, _ = series
    plain = out / "0003-plain-diff.patch"                 # git diff output: no mail header
    plain.write_text("diff --git a/c.c b/c.c\nnew file mode 100644\n--- /dev/null\n+++ b/c.c\n@@ -0,0 +1 @@\n+c\n")
    with pytest.raises(HarnessError) as e:
        load_series(out)
    msg = str(e.value)
    assert msg.startswith(f"{plain}: it is not a git format-patch mail: it has no Subject: header")
    assert "0001" not in msg and "0002" not in msg


def test_a_cover_letter_in_an_mbox_is_named_with_its_mail(tmp_path, series):
    out, _ = series
    cover = (b"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
             b"Subject: [PATCH 0/2] the cover letter\n\nwords, no diff\n\n")
    mbox = tmp_path / "with-cover.mbox"
    mbox.write_bytes(cover + b"".join(p.read_bytes() for p in sorted(out.iterdir())))
    with pytest.raises(HarnessError, match=r"with-cover\.mbox: mail 1 of 3 mail 'the cover letter' has no diff"):
        load_series(mbox)


def mail(subject: str, body: str = "Why.\n", eol: str = "\n") -> bytes:
    """One git format-patch mail adding f.c, with this Subject header and message body."""
    text = ("From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n"
            "From: A <a@example.org>\nDate: Tue, 22 Jul 2025 10:00:00 +0000\n"
            f"Subject: {subject}\n\n{body}---\n f.c | 1 +\n\n"
            "diff --git a/f.c b/f.c\nnew file mode 100644\n--- /dev/null\n+++ b/f.c\n@@ -0,0 +1 @@\n+x\n"
            "-- \n2.39.5\n\n")
    return text.replace("\n", eol).encode()


@pytest.mark.parametrize("subject, body, eol", [
    ("Re: [PATCH v2 3/7] [RFC]  xen/arm:\tspaced   out ", "Why.\n", "\n"),
    ("[PATCH] xen: keep [these] brackets", "Why.\n", "\n"),
    ("[PATCH] the mail's own", "From: B <b@example.org>\nSubject: [PATCH 2/2] xen: in-body\n wins\n\nWhy.\n", "\n"),
    ("[PATCH] the mail's own", "[PATCH] xen: bracketed in-body subject\n\nWhy.\n", "\n"),
    ("[PATCH] the real one", "Why.\nSubject: lower down, commit text\n", "\n"),
    ("[PATCH] xen: a CRLF mail", "Why.\n", "\r\n"),
])
def test_subject_is_read_exactly_as_git_am_commits_it(tmp_path, subject, body, eol):
    f = tmp_path / "0001-x.patch"
    f.write_bytes(mail(subject, body, eol))
    s = load_series(f)
    base = tmp_path / "base"
    base.mkdir()
    (base / "a.c").write_text("base\n")
    apply_series(s, base)
    assert [p.subject for p in s.patches] == git(base, "log", "-1", "--format=%s").splitlines()


def test_an_empty_patch_file_is_named(tmp_path):
    (tmp_path / "0001-empty.patch").write_bytes(b"")
    with pytest.raises(HarnessError, match=r"0001-empty\.patch: git mailsplit cannot read it: .*empty mbox"):
        load_series(tmp_path)


def test_msgid_series_without_b4_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "b4" else "/x")
    patches.b4_am.cache_clear()
    with pytest.raises(HarnessError) as e:
        load_series("msgid:<20250722-x@example.org>")
    assert "msgid:<20250722-x@example.org>: --xen-patches: b4 is not installed" in str(e.value)
    assert "pip install b4" in str(e.value)


def test_msgid_series_is_what_b4_am_writes(tmp_path, monkeypatch, series):
    """A stand-in b4 (no list archive here): the command run, then its .mbx loaded."""
    out, _ = series
    mbox = mbox_of(out, tmp_path / "s.mbox")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "b4").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncp {mbox} "$3/v5_20250722_x.mbx"\n')
    (bin_ / "b4").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    patches.b4_am.cache_clear()
    s = load_series("msgid:<20250722-x@example.org>")
    assert s.name == "v5_20250722_x.mbx"
    assert [p.subject for p in s.patches] == ["xen/arm: first change", "xen/arm: add b.c"]
    args = (tmp_path / "args").read_text().split()
    assert args[:2] == ["am", "-o"] and args[3:] == ["20250722-x@example.org"]
    assert load_series("msgid:<20250722-x@example.org>").path == s.path      # fetched once
