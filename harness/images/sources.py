"""Upstream source trees: from the lock (verified tarballs), a local checkout, a tarball
of the user's (FILE.tar.xz, with an optional sha256), or git URL + ref.

A SourceSpec is what the user asked for; `fingerprint` identifies its exact
content for cache keys, and `extract` puts a clean copy of the tree in a directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .cache import Cache
from ..errors import HarnessError
from .lock import Lock

SKIP_DIRS = {".git", ".hg", ".svn"}
TARBALL = re.compile(r"\.(tar(\.(xz|gz|bz2|zst))?|tgz|txz)$")
GIT_SCHEMES = ("https://", "http://", "git://", "ssh://", "file://")


_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """text with the user:password@ of every URL in it replaced by ***@: what is printed,
    recorded (JUnit, manifests) or put in an error never carries credentials."""
    return _USERINFO.sub(r"\1***@", text)


@dataclass(frozen=True)
class SourceSpec:
    """kind: 'lock' (value = lock entry name), 'dir' (value = path), 'tarball' (value = path,
    sha256 = the digest it must have, or empty) or 'git' (value = URL, ref)."""
    name: str           # what it is for: "xen", "tf-a"
    kind: str
    value: str
    ref: str = ""
    sha256: str = ""

    def describe(self) -> str:
        return {"lock": f"lock entry [{self.value}]", "dir": f"local tree {self.value}",
                "tarball": f"tarball {self.value}" + (f" (sha256 {self.sha256[:16]}...)" if self.sha256 else ""),
                "git": f"git {redact(self.value)} @ {self.ref}"}[self.kind]


def parse_source(name: str, text: str | None, option: str, sha256: str | None = None) -> SourceSpec:
    """'lock' (or empty) | a local directory | a tarball FILE.tar.xz (sha256 checked when given) |
    git URL with '#REF' or '@REF' (e.g. https://host/xen.git#staging)."""
    if sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise HarnessError(f"{sha256!r} is not a sha256 digest", field=f"{option} sha256",
                           fix="give the 64 hex digits `sha256sum FILE` prints")
    if not text or text == "lock":
        return SourceSpec(name, "lock", name)
    if text.startswith("-"):
        raise HarnessError(f"{text!r} looks like an option, not a source", field=option,
                           fix="give 'lock', a directory, a FILE.tar.xz or URL#REF")
    if TARBALL.search(text) and not re.match(r"^\w+://", text):
        path = Path(text).expanduser().absolute()
        if not path.is_file():
            raise HarnessError(f"tarball {text!r} does not exist", where=str(path), field=option,
                               fix="give the path of a Xen source tarball (e.g. xen-4.21.0.tar.gz)")
        return SourceSpec(name, "tarball", str(path), sha256=(sha256 or "").lower())
    m = re.match(r"^(?:git\+)?((?:https?|git|ssh|file)://.+?|[^/\s]+@[^:\s]+:.+?)(?:#|@(?=[^/@]+$))([^#@\s]+)$", text)
    if m:
        url, ref = m.group(1), m.group(2)
        if not url.startswith(GIT_SCHEMES) and not re.match(r"^[\w.-]+@[\w.-]+:", url):
            raise HarnessError(f"git URL {redact(url)!r} has an unsupported scheme", field=option,
                               fix="use https://, http://, git://, ssh://, file:// or user@host:path")
        if ref.startswith("-") or not re.fullmatch(r"[\w./+-]+", ref):
            raise HarnessError(f"git ref {ref!r} is not a branch, tag or commit name", field=option,
                               fix="give a ref such as staging, RELEASE-4.21.0 or a commit id")
        return SourceSpec(name, "git", url, ref)
    if re.match(r"^(?:https?|git|ssh)://", text) or text.endswith(".git"):
        raise HarnessError(f"git source {redact(text)!r} has no ref", field=option,
                           fix=f"append the branch, tag or commit: {redact(text)}#<ref>")
    path = Path(text).expanduser().resolve()
    if not path.is_dir():
        raise HarnessError(f"{redact(text)!r} is neither 'lock', a directory nor a git URL#ref", field=option,
                           fix="give an existing source directory, 'lock', or URL#ref")
    return SourceSpec(name, "dir", str(path))


# What a local tree must hold to be what its option says (checked before anything builds)
TREE_MARKERS = {"xen": ("xen/Makefile", "xen/arch/arm"), "tf-a": ("Makefile", "plat/qemu")}
TREE_KIND = {"xen": "a Xen source tree (the directory holding xen/arch/arm)",
             "tf-a": "a TF-A source tree (the directory holding plat/qemu)"}


def check_tree(spec: "SourceSpec", option: str) -> None:
    """A local tree given for Xen or TF-A is one: a wrong directory is said here, naming the
    option, not in make's defconfig."""
    if spec.kind != "dir" or spec.name not in TREE_MARKERS:
        return
    root = Path(spec.value)
    missing = [m for m in TREE_MARKERS[spec.name] if not (root / m).exists()]
    if not missing:
        return
    inner = spec.name == "xen" and (root / "arch/arm").is_dir() and (root.parent / "xen/Makefile").is_file()
    raise HarnessError(f"is not {TREE_KIND[spec.name]}: it has no {', '.join(missing)}", where=str(root),
                       field=option, fix=f"give its parent, {root.parent} (the top of the tree)" if inner else
                       f"give the top directory of {TREE_KIND[spec.name].split(' (')[0]}")


def is_git_tree(root: Path) -> bool:
    try:
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and r.stdout.strip() == "true"


def tree_view(root: Path) -> list[str]:
    """The files of a local tree as its owner sees them, relative to root, sorted.
    A git work tree: git's view - tracked files (as they are on disk, uncommitted edits
    included) and untracked files that .gitignore does not exclude (a new source file
    not yet added) - so in-place build output (.o, .config, tools' generated files) is
    never part of it. A plain directory: every file but VCS directories."""
    root = Path(root)
    if is_git_tree(root):
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard", "--", "."], capture_output=True, timeout=300)
        if out.returncode:
            raise HarnessError(f"git ls-files failed: {out.stderr.decode(errors='replace').strip()[-300:]}",
                               where=str(root), fix="check that the tree is a readable git work tree")
        names = {n for n in out.stdout.decode("utf-8", "surrogateescape").split("\0") if n}
        # deleted tracked files are listed too; directories appear for submodules
        return sorted(n for n in names if (root / n).is_symlink() or (root / n).is_file())
    files = []
    for dirpath, dirs, fs in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        files += [(Path(dirpath) / f).relative_to(root).as_posix() for f in fs]
    return sorted(files)


class StatCache:
    """sha256 of files by (path, size, mtime_ns, mode), kept in a JSON file: a 10,000-file
    tree is re-fingerprinted by hashing only what changed since the last time (like git's
    index). A file changed within the same mtime tick is hashed again (racy-git rule)."""

    def __init__(self, path: Path | None):
        self.path, self.data, self.dirty = path, {}, False
        if path and path.is_file():
            try:
                self.data = json.loads(path.read_text())
            except (OSError, ValueError):
                self.data = {}

    def sha(self, p: Path, rel: str, st: os.stat_result) -> str:
        stamp = [st.st_size, st.st_mtime_ns, st.st_mode]
        hit = self.data.get(rel)
        if hit and hit[:3] == stamp and time.time_ns() - st.st_mtime_ns > 2_000_000_000:
            return hit[3]
        with open(p, "rb") as fh:
            sha = hashlib.sha256(fh.read()).hexdigest()
        self.data[rel] = [*stamp, sha]
        self.dirty = True
        return sha

    def save(self, keep: set[str]) -> None:
        if self.path and self.dirty:
            self.data = {k: v for k, v in self.data.items() if k in keep}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}")
            tmp.write_text(json.dumps(self.data))
            os.replace(tmp, self.path)


def view_digest(root: Path, files: list[str], stat_cache: Path | None = None) -> str:
    """Content hash of the listed files of root (paths, exec bits, bytes; links by target)."""
    h = hashlib.sha256()
    cache = StatCache(stat_cache)
    for rel in files:
        p = root / rel
        if p.is_symlink():
            h.update(f"L {rel} {os.readlink(p)}\n".encode())
            continue
        st = p.stat()
        h.update(f"F {rel} {st.st_mode & 0o111}\n".encode())
        h.update(bytes.fromhex(cache.sha(p, rel, st)))
    cache.save(set(files))
    return h.hexdigest()


def _tree_digest(root: Path, stat_cache: Path | None = None) -> str:
    return view_digest(root, tree_view(root), stat_cache)


def sync_tree(src: Path, files: list[str], dest: Path) -> int:
    """Make dest hold exactly the listed files of src, copying only those whose size or
    mtime differ (mtimes are kept, so make in a warm build directory recompiles only
    what changed). Returns how many files were copied."""
    dest.mkdir(parents=True, exist_ok=True)
    listing = dest.parent / (dest.name + ".files.json")
    try:
        before = set(json.loads(listing.read_text()))
    except (OSError, ValueError):
        before = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if not p.is_dir()}
    wanted = set(files)
    for rel in before - wanted:
        (dest / rel).unlink(missing_ok=True)
    copied = 0
    for rel in files:
        s, d = src / rel, dest / rel
        if s.is_symlink():
            if not d.is_symlink() or os.readlink(d) != os.readlink(s):
                d.parent.mkdir(parents=True, exist_ok=True)
                if d.is_symlink() or d.exists():
                    d.unlink()
                os.symlink(os.readlink(s), d)
                copied += 1
            continue
        st = s.stat()
        try:
            dt = d.lstat()
            same = not d.is_symlink() and dt.st_size == st.st_size and dt.st_mtime_ns == st.st_mtime_ns \
                and (dt.st_mode & 0o111) == (st.st_mode & 0o111)
        except FileNotFoundError:
            same = False
        if not same:
            d.parent.mkdir(parents=True, exist_ok=True)
            if d.is_symlink():
                d.unlink()
            shutil.copy2(s, d)
            copied += 1
    listing.write_text(json.dumps(sorted(wanted)))
    return copied


def _git_out(args: list[str], cwd: Path | None = None) -> str:
    try:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                              timeout=300).stdout.strip()
    except subprocess.CalledProcessError as e:
        raise HarnessError(redact(f"git {' '.join(args)} failed: {e.stderr.strip()[-400:]}"),
                           fix="check the URL and the ref, and that the host can reach it") from None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_tarball(spec: SourceSpec, cache: Cache) -> tuple[Path, str]:
    """The user's tarball, verified (when a sha256 was given) and copied into the cache's
    downloads by its digest, like a lock entry: (cached path, sha256)."""
    src = Path(spec.value)
    digest = file_sha256(src)
    if spec.sha256 and digest != spec.sha256:
        raise HarnessError(f"tarball has sha256 {digest}, not the {spec.sha256} it must have", where=str(src),
                           field=f"{spec.name} sha256", fix="use the right file, or correct the sha256")
    dest = cache.root / "downloads" / digest[:24] / src.name
    if not dest.is_file() or dest.stat().st_size != src.stat().st_size:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".part{os.getpid()}")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    return dest, digest


def fingerprint(spec: SourceSpec, lock: Lock, cache: Cache | None = None) -> str:
    if spec.kind == "lock":
        return "sha256:" + lock[spec.value].sha256
    if spec.kind == "tarball":
        return "sha256:" + (cached_tarball(spec, cache)[1] if cache else spec.sha256 or file_sha256(Path(spec.value)))
    if spec.kind == "git":
        if re.fullmatch(r"[0-9a-f]{40}", spec.ref):
            return "git:" + spec.ref
        out = _git_out(["ls-remote", "--", spec.value, spec.ref])
        if not out:
            raise HarnessError(f"ref {spec.ref!r} not found at {redact(spec.value)}", field=spec.name,
                               fix="give an existing branch, tag or full commit id")
        return "git:" + out.split()[0]
    stats = cache.root / "work" / f"stat-{hashlib.sha256(spec.value.encode()).hexdigest()[:16]}.json" \
        if cache else None
    return "tree:" + _tree_digest(Path(spec.value), stats)


def extract(spec: SourceSpec, lock: Lock, cache: Cache, dest: Path) -> None:
    """Put a clean copy of the source tree at dest (which must not exist)."""
    if spec.kind == "lock":
        tarball = cache.download(lock[spec.value])
        _untar_strip(tarball, dest)
    elif spec.kind == "tarball":
        _untar_strip(cached_tarball(spec, cache)[0], dest)
    elif spec.kind == "dir":
        sync_tree(Path(spec.value), tree_view(Path(spec.value)), dest)
        (dest.parent / (dest.name + ".files.json")).unlink(missing_ok=True)
    else:
        dest.mkdir(parents=True)
        _git_out(["init", "-q"], dest)
        _git_out(["fetch", "-q", "--depth", "1", "--", spec.value, spec.ref], dest)
        _git_out(["-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD"], dest)
        shutil.rmtree(dest / ".git")


def _untar_strip(tarball: Path, dest: Path) -> None:
    """Extract a tarball without its top directory when all its members live under one
    (release and Debian orig tarballs), as it is otherwise."""
    dest.mkdir(parents=True)
    listing = subprocess.run(["tar", "-tf", str(tarball)], capture_output=True, text=True)
    tops = {n.lstrip("./").split("/", 1)[0] for n in listing.stdout.splitlines() if n.lstrip("./")}
    nested = all("/" in n.lstrip("./") or n.endswith("/") for n in listing.stdout.splitlines() if n.lstrip("./"))
    strip = ["--strip-components=1"] if len(tops) == 1 and nested else []
    r = subprocess.run(["tar", "-xf", str(tarball), "-C", str(dest), *strip,
                        "--no-same-owner"], capture_output=True, text=True)
    if r.returncode:
        raise HarnessError(f"cannot extract: {r.stderr.strip()[-300:]}", where=str(tarball),
                           fix="delete the download and try again")
