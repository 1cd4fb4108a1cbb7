"""Patch series: a directory of `git format-patch` files or one mbox, applied with git am.

A patch that does not apply fails with its subject, the file and the hunk.
"""
from __future__ import annotations

import atexit
import functools
import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import HarnessError

GIT_ID = ["-c", "user.name=harness", "-c", "user.email=harness@localhost",
          "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]


@dataclass(frozen=True)
class Patch:
    source: Path        # the file it comes from (the mbox for an mbox)
    index: int          # 1-based position in the series
    subject: str
    mail: int = 1       # 1-based position of its mail in `source` (an mbox holds several)


@dataclass(frozen=True)
class PatchSeries:
    path: Path
    files: tuple[Path, ...]     # what git am is given, in order
    patches: tuple[Patch, ...]
    digest: str                 # sha256 over the patches' bytes, in order

    @property
    def name(self) -> str:
        return self.path.name


# apply_series gives git am this, which changes how mails are split: listing them must too.
KEEP_CR = ["--keep-cr"]


def _run_git(*args: str, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], stdin=stdin, capture_output=True)


def _split(f: Path, out: Path) -> list[Path]:
    """The mails git am finds in f, split by git mailsplit as git am runs it: -b takes a
    file that is not an mbox as one bare mail."""
    out.mkdir()
    r = _run_git("mailsplit", "-b", *KEEP_CR, f"-o{out}", "--", str(f))
    if r.returncode:
        raise HarnessError(f"git mailsplit cannot read it: {r.stderr.decode(errors='replace').strip()}",
                           where=str(f), fix="give git format-patch output (or an mbox of it)")
    return sorted(out.iterdir())


def _mailinfo(mail: Path, where: str) -> tuple[dict[str, str], bool]:
    """What git am takes from one mail, by git mailinfo: its Author/Email/Subject/Date
    (in-body headers and [PATCH] tags handled as git am does), and whether it has a diff."""
    patch = mail.with_name(mail.name + ".diff")
    with open(mail, "rb") as stdin:
        r = _run_git("mailinfo", str(mail.with_name(mail.name + ".msg")), str(patch), stdin=stdin)
    if r.returncode:
        raise HarnessError(f"git mailinfo cannot read it: {r.stderr.decode(errors='replace').strip()}",
                           where=where, fix="regenerate it with git format-patch")
    info = dict(line.split(": ", 1) for line in r.stdout.decode("utf-8", "replace").split("\n") if ": " in line)
    return info, patch.stat().st_size > 0


def b4_command(msgid: str, out: Path) -> list[str]:
    return ["b4", "am", "-o", str(out), msgid.strip().strip("<>")]


@functools.lru_cache(maxsize=None)      # one fetch per run, however often the series is loaded
def b4_am(msgid: str) -> Path:
    """The mbox of the patches of thread `msgid` (trailers from the replies applied, the
    cover letter left out), fetched from the list archive by b4 into a directory kept
    until this process ends (the build applies it later)."""
    where = f"msgid:{msgid}"
    if shutil.which("b4") is None:
        raise HarnessError("b4 is not installed, so a series cannot be taken by message id", where=where,
                           field="--xen-patches", fix="pip install b4 (PyPI 'b4'), or give a directory or mbox")
    out = Path(tempfile.mkdtemp(prefix="harness-b4-"))
    atexit.register(shutil.rmtree, out, True)
    r = subprocess.run(b4_command(msgid, out), capture_output=True, text=True)
    mbx = sorted(out.glob("*.mbx"))
    if r.returncode or len(mbx) != 1:
        last = (r.stderr.strip() or r.stdout.strip() or "no .mbx written").splitlines()[-1]
        raise HarnessError(f"b4 am failed: {last}", where=where, field="--xen-patches",
                           fix="check the message id and that b4 reaches the list archive")
    return mbx[0]


def load_series(path: str | Path) -> PatchSeries:
    """A series as git am sees it: each file (a directory's *.patch/*.diff/*.mbox/*.eml in
    name order, or the one file given) split into its mails. Every mail must have a
    Subject header and a diff, or one HarnessError names the file (and the mail).
    "msgid:<id>" is the series of that list thread, as `b4 am` writes it."""
    if str(path).startswith("msgid:"):
        path = b4_am(str(path)[len("msgid:"):])
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
    with tempfile.TemporaryDirectory(prefix="harness-mailsplit-") as scratch:
        for i, f in enumerate(files):
            h.update(f.read_bytes())
            mails = _split(f, Path(scratch) / str(i))
            for n, m in enumerate(mails, 1):
                mail = f"mail {n} of {len(mails)} " if len(mails) > 1 else ""
                info, has_diff = _mailinfo(m, f"{f} (mail {n})" if mail else str(f))
                subject = info.get("Subject")
                if subject is None:
                    raise HarnessError(f"{mail or 'it '}is not a git format-patch mail: it has no Subject: header "
                                       "(a plain diff? git am applies mails only)", where=str(f),
                                       fix="regenerate it with git format-patch, or remove it")
                if not has_diff:
                    raise HarnessError(f"{mail or 'the '}mail '{subject}' has no diff, so it is not a git "
                                       "format-patch mail (a cover letter or a reply? git am would stop at it)",
                                       where=str(f), fix="remove that mail (b4 am writes an mbox of the patches only)")
                patches.append(Patch(source=f, index=len(patches) + 1, subject=subject, mail=n))
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
    r = _git(tree, "am", "--whitespace=nowarn", *KEEP_CR, *map(str, series.files), check=False)
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
    if patch and sum(p.source == patch.source for p in series.patches) > 1:
        where += f" (mail {patch.mail})"
    subject = f"patch {patch.index} '{patch.subject}'" if patch else "the series"
    return HarnessError(f"{subject} does not apply: {detail}", where=where,
                        fix="rebase the series onto this Xen source, or choose the source it was made for")
