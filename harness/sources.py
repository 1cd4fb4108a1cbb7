"""Upstream source trees: from the lock (verified tarballs), a local checkout, or git URL + ref.

A SourceSpec is what the user asked for; `fingerprint` identifies its exact
content for cache keys, and `extract` puts a clean copy of the tree in a directory.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .cache import Cache
from .errors import HarnessError
from .lock import Lock

SKIP_DIRS = {".git", ".hg", ".svn"}


@dataclass(frozen=True)
class SourceSpec:
    """kind: 'lock' (value = lock entry name), 'dir' (value = path) or 'git' (value = URL, ref)."""
    name: str           # what it is for: "xen", "tf-a"
    kind: str
    value: str
    ref: str = ""

    def describe(self) -> str:
        return {"lock": f"lock entry [{self.value}]", "dir": f"local tree {self.value}",
                "git": f"git {self.value} @ {self.ref}"}[self.kind]


def parse_source(name: str, text: str | None, option: str) -> SourceSpec:
    """'lock' (or empty) | a local directory | git URL with '#REF' or '@REF' (e.g. https://host/xen.git#staging)."""
    if not text or text == "lock":
        return SourceSpec(name, "lock", name)
    m = re.match(r"^(?:git\+)?((?:https?|git|ssh|file)://.+?|[^/\s]+@[^:\s]+:.+?)(?:#|@(?=[^/@]+$))([^#@\s]+)$", text)
    if m:
        return SourceSpec(name, "git", m.group(1), m.group(2))
    if re.match(r"^(?:https?|git|ssh)://", text) or text.endswith(".git"):
        raise HarnessError(f"git source {text!r} has no ref", field=option,
                           fix=f"append the branch, tag or commit: {text}#<ref>")
    path = Path(text).expanduser().resolve()
    if not path.is_dir():
        raise HarnessError(f"{text!r} is neither 'lock', a directory nor a git URL#ref", field=option,
                           fix="give an existing source directory, 'lock', or URL#ref")
    return SourceSpec(name, "dir", str(path))


def _tree_digest(root: Path) -> str:
    """Content hash of a directory tree (paths, modes and bytes; VCS dirs skipped)."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for f in sorted(files):
            p = Path(dirpath) / f
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                h.update(f"L {rel} {os.readlink(p)}\n".encode())
                continue
            st = p.stat()
            h.update(f"F {rel} {st.st_mode & 0o111}\n".encode())
            with open(p, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def _git_out(args: list[str], cwd: Path | None = None) -> str:
    try:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                              timeout=300).stdout.strip()
    except subprocess.CalledProcessError as e:
        raise HarnessError(f"git {' '.join(args)} failed: {e.stderr.strip()[-400:]}",
                           fix="check the URL and the ref, and that the host can reach it") from None


def fingerprint(spec: SourceSpec, lock: Lock) -> str:
    if spec.kind == "lock":
        return "sha256:" + lock[spec.value].sha256
    if spec.kind == "git":
        if re.fullmatch(r"[0-9a-f]{40}", spec.ref):
            return "git:" + spec.ref
        out = _git_out(["ls-remote", spec.value, spec.ref])
        if not out:
            raise HarnessError(f"ref {spec.ref!r} not found at {spec.value}", field=spec.name,
                               fix="give an existing branch, tag or full commit id")
        return "git:" + out.split()[0]
    return "tree:" + _tree_digest(Path(spec.value))


def extract(spec: SourceSpec, lock: Lock, cache: Cache, dest: Path) -> None:
    """Put a clean copy of the source tree at dest (which must not exist)."""
    if spec.kind == "lock":
        tarball = cache.download(lock[spec.value])
        _untar_strip(tarball, dest)
    elif spec.kind == "dir":
        shutil.copytree(spec.value, dest, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_DIRS))
    else:
        dest.mkdir(parents=True)
        _git_out(["init", "-q"], dest)
        _git_out(["fetch", "-q", "--depth", "1", spec.value, spec.ref], dest)
        _git_out(["-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD"], dest)
        shutil.rmtree(dest / ".git")


def _untar_strip(tarball: Path, dest: Path) -> None:
    """Extract a tarball whose members live under one top directory, without that directory."""
    dest.mkdir(parents=True)
    r = subprocess.run(["tar", "-xf", str(tarball), "-C", str(dest), "--strip-components=1",
                        "--no-same-owner"], capture_output=True, text=True)
    if r.returncode:
        raise HarnessError(f"cannot extract: {r.stderr.strip()[-300:]}", where=str(tarball),
                           fix="delete the download and try again")
