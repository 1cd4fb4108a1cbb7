"""Patch series: a directory of `git format-patch` files or one mbox, applied with git am.

A patch that does not apply fails with its subject, the file and the hunk.
"""
from __future__ import annotations

import email.policy
import hashlib
import mailbox
import re
import subprocess
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from .errors import HarnessError

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


def _is_from_line(line: bytes) -> bool:
    """Whether `line` starts a new mail in an mbox, by git mailsplit's own test
    (builtin/mailsplit.c is_from_line): "From ", digits around the line's last colon as
    in a time "hh:mm:ss", then a year after 90, as in
    "From 87b39e88... Mon Sep 17 00:00:00 2001". A body line such as "From the spec:"
    does not start a mail, for git am nor here."""
    s = line.rstrip(b"\r\n") if line.endswith(b"\n") else line
    if len(s) + 1 < 20 or not s.startswith(b"From "):
        return False
    c = s.rfind(b":", 5, len(s) - 1)
    if c < 0:
        return False
    if not all(0 <= c + d < len(s) and s[c + d:c + d + 1].isdigit() for d in (-4, -2, -1, 1, 2)):
        return False
    year = re.match(rb"\s*[+-]?\d+", s[c + 3:])
    return bool(year) and int(year.group()) > 90


class _GitMbox(mailbox.mbox):
    """mailbox.mbox that splits where git mailsplit (so git am) does: at every line that
    _is_from_line() accepts. The standard mbox splits at any line starting with "From ",
    which a commit message may hold (git format-patch does not escape it)."""

    def _generate_toc(self):
        starts, stops = [], []
        self._file.seek(0)
        while True:
            pos = self._file.tell()
            line = self._file.readline()
            if not line:
                break
            if _is_from_line(line):
                if starts:
                    stops.append(pos)
                starts.append(pos)
        if starts:
            stops.append(pos)
        self._toc = dict(enumerate(zip(starts, stops)))
        self._next_key = len(self._toc)
        self._file_length = pos


def _mails(f: Path, data: bytes) -> list[EmailMessage]:
    """The mails git am finds in one file: an mbox (it starts with a "From <sha> <date>"
    line, as git format-patch writes) split at each such line, else the whole file as one
    bare mail (git am runs git mailsplit -b)."""
    parse = BytesParser(policy=email.policy.default).parsebytes
    if not _is_from_line(data.lstrip().split(b"\n", 1)[0] + b"\n"):
        return [parse(data)]
    box = _GitMbox(str(f), create=False)
    try:
        return [parse(box.get_bytes(key)) for key in box.keys()]
    finally:
        box.close()


def _clean_subject(subject: str) -> str:
    """The commit subject git am makes of a Subject header, as git mailinfo does: leading
    "Re:", ":", whitespace and [...] tags ([PATCH v5 01/11], [RFC]) removed, every run of
    whitespace made one space."""
    while True:
        cut = re.sub(r"^(?:[ \t:]+|[Rr][Ee]:|\[[^\]]*\])", "", subject)
        if cut == subject:
            return re.sub(r"[ \t\r\n]+", " ", subject).strip()
        subject = cut


def _header_text(value) -> str:
    """A header's value as text: unfolded, RFC 2047 words decoded, raw 8-bit as UTF-8."""
    text = re.sub(r"\r?\n(?=[ \t])", "", str(value))
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _inbody_subject(msg: EmailMessage) -> str | None:
    """A Subject given at the very top of the mail's text, which git am takes over the
    mail's own (git mailinfo's in-body headers, used to send someone else's patch): the
    first lines of the body, before a blank line, may be "From:", "Subject:", "Date:"
    (each once, continuation lines folded in) or "[PATCH] subject". A "Subject:" line
    anywhere further down is commit message text."""
    part = msg.get_body(preferencelist=("plain",)) if msg.is_multipart() else msg
    if part is None:
        return None
    try:
        body = part.get_content()
    except Exception:
        body = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    seen: dict[str, str] = {}
    accum: list[str] | None = None            # [name, text] of the in-body header being read
    for line in body.split("\n"):
        line = line.rstrip("\r")
        if accum and line[:1] in (" ", "\t"):
            accum[1] += line
            continue
        if accum:
            seen[accum[0]], accum = accum[1], None
            if not line.strip():
                break                          # a blank line ends the in-body headers
        if not line.strip():
            continue                           # blank lines before them are skipped
        m = re.match(r"(from|subject|date):\s*(.*)", line, re.I)
        if m and m.group(1).lower() not in seen:
            accum = [m.group(1).lower(), m.group(2)]
        elif re.match(r"\[PATCH\]\s", line):
            seen["subject"] = line
        elif not re.match(r">From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$", line):
            break
    if accum:
        seen[accum[0]] = accum[1]
    if "subject" not in seen:
        return None
    return _header_text(email.policy.default.header_factory("subject", seen["subject"]))


def _subject(msg: EmailMessage) -> str | None:
    """The commit subject git am makes of a mail: its Subject header (or an in-body one),
    unfolded and RFC 2047-decoded, without its [PATCH] tag; None if it has no Subject."""
    try:
        raw = msg["Subject"]
    except Exception:           # a header the parser cannot make sense of: take it as is
        raw = next((v for k, v in msg.raw_items() if k.lower() == "subject"), None)
    if raw is None:
        return None
    inbody = _inbody_subject(msg)
    return _clean_subject(inbody if inbody is not None else _header_text(raw))


def _has_diff(msg: EmailMessage) -> bool:
    """Whether a mail carries a patch (in its body or a MIME part, decoded)."""
    for part in msg.walk():
        if part.is_multipart():
            continue
        body = part.get_payload(decode=True) or b""
        if re.search(rb"^(?:diff --git |\+\+\+ )", body, re.M):
            return True
    return False


def load_series(path: str | Path) -> PatchSeries:
    """A series as git am sees it: each file (a directory's *.patch/*.diff/*.mbox/*.eml in
    name order, or the one file given) split into its mails. Every mail must have a
    Subject header and a diff, or one HarnessError names the file (and the mail)."""
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
        mails = _mails(f, data)
        for n, msg in enumerate(mails, 1):
            mail = f"mail {n} of {len(mails)} " if len(mails) > 1 else ""
            subject = _subject(msg)
            if subject is None:
                raise HarnessError(f"{mail or 'it '}is not a git format-patch mail: it has no Subject: header "
                                   "(a plain diff? git am applies mails only)", where=str(f),
                                   fix="regenerate it with git format-patch, or remove it")
            if not _has_diff(msg):
                raise HarnessError(f"{mail or 'the '}mail '{subject}' has no diff, so it is not a git format-patch "
                                   "mail (a cover letter or a reply? git am would stop at it)", where=str(f),
                                   fix="remove that mail (b4 am writes an mbox of the patches only)")
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
    if patch and sum(p.source == patch.source for p in series.patches) > 1:
        where += f" (mail {patch.mail})"
    subject = f"patch {patch.index} '{patch.subject}'" if patch else "the series"
    return HarnessError(f"{subject} does not apply: {detail}", where=where,
                        fix="rebase the series onto this Xen source, or choose the source it was made for")
