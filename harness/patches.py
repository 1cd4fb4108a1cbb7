"""Patch series: a directory of `git format-patch` files or one mbox, applied with git am.

A patch that does not apply fails with its subject, the file and the hunk.
"""
from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from email.header import decode_header, make_header
from pathlib import Path

from .errors import HarnessError

GIT_ID = ["-c", "user.name=harness", "-c", "user.email=harness@localhost",
          "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]


@dataclass(frozen=True)
class Patch:
    source: Path        # the file it comes from (the mbox for an mbox)
    index: int          # 1-based position in the series
    subject: str


@dataclass(frozen=True)
class PatchSeries:
    path: Path
    files: tuple[Path, ...]     # what git am is given, in order
    patches: tuple[Patch, ...]
    digest: str                 # sha256 over the patches' bytes, in order

    @property
    def name(self) -> str:
        return self.path.name


def _subjects(text: str) -> list[str]:
    """Subjects of the mails in an mbox or patch file (folded headers unfolded)."""
    subjects = []
    for m in re.finditer(r"^Subject: (.*(?:\n[ \t].*)*)", text, re.M):
        raw = re.sub(r"\n[ \t]+", " ", m.group(1))
        try:
            raw = str(make_header(decode_header(raw)))
        except Exception:
            pass
        subjects.append(re.sub(r"^\[[^]]*\]\s*", "", raw).strip())
    return subjects


def load_series(path: str | Path) -> PatchSeries:
    path = Path(path).expanduser().absolute()     # git am runs in the tree's copy, not here
    if not path.exists():
        raise HarnessError("patch series not found", where=str(path),
                           fix="give a directory of git format-patch files or an mbox file")
    files = sorted(p for p in path.iterdir() if p.suffix in (".patch", ".diff", ".mbox", ".eml")) \
        if path.is_dir() else [path]
    if not files:
        raise HarnessError("directory holds no *.patch files", where=str(path),
                           fix="put git format-patch output (NNNN-*.patch) there")
    patches: list[Patch] = []
    h = hashlib.sha256()
    for f in files:
        data = f.read_bytes()
        h.update(data)
        subjects = _subjects(data.decode("utf-8", "replace"))
        if not subjects or b"\n+++ " not in data and b"\ndiff --git " not in data:
            raise HarnessError("is not a git format-patch file or mbox (no Subject: header or no diff)",
                               where=str(f), fix="regenerate it with git format-patch, or remove it")
        for s in subjects if len(files) == 1 and not path.is_dir() else subjects[:1]:
            patches.append(Patch(source=f, index=len(patches) + 1, subject=s))
    return PatchSeries(path=path, files=tuple(files), patches=tuple(patches), digest=h.hexdigest())


def _git(tree: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *GIT_ID, *args], cwd=tree, capture_output=True, text=True, check=check)


def init_repo(tree: Path, message: str) -> None:
    """Make tree a git repository with everything in one commit, so git am can work."""
    if (tree / ".git").exists():
        return
    _git(tree, "init", "-q")
    _git(tree, "add", "-A", "-f")
    _git(tree, "commit", "-q", "--no-verify", "-m", message)


def apply_series(series: PatchSeries, tree: Path, log: Path | None = None) -> None:
    """git am the series onto tree (made a git repo first if needed)."""
    init_repo(tree, "pristine source")
    r = _git(tree, "am", "--whitespace=nowarn", "--keep-cr", *map(str, series.files), check=False)
    if log:
        with open(log, "a") as f:
            f.write(f"$ git am {series.path}\n{r.stdout}{r.stderr}\n")
    if r.returncode == 0:
        return
    _git(tree, "am", "--abort", check=False)
    raise patch_error(series, r.stdout + r.stderr)


def patch_error(series: PatchSeries, output: str) -> HarnessError:
    """Turn git am's output into one message: which patch, which file, which hunk."""
    applied = re.findall(r"^Applying: (.*)$", output, re.M)
    failed_idx = len(applied)   # 1-based index of the patch being applied when it failed
    patch = series.patches[failed_idx - 1] if 0 < failed_idx <= len(series.patches) else None
    m = re.search(r"^error: patch failed: (.+):(\d+)$", output, re.M)
    m2 = re.search(r"^error: (.+): (does not exist in index|already exists in index|patch does not apply)$",
                   output, re.M)
    if m:
        detail = f"file {m.group(1)}, hunk at line {m.group(2)}"
    elif m2:
        detail = f"file {m2.group(1)}: {m2.group(2)}"
    else:
        detail = (output.strip().splitlines() or ["git am failed"])[-1]
    where = str(patch.source) if patch else str(series.path)
    if patch and len(series.files) == 1 and not series.path.is_dir():
        where += f" (mail {patch.index})"
    subject = f"patch {patch.index} '{patch.subject}'" if patch else "the series"
    return HarnessError(f"{subject} does not apply: {detail}", where=where,
                        fix="rebase the series onto this Xen source, or choose the source it was made for")
