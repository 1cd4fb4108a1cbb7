"""A content-addressed build cache.

An entry is keyed by the sha256 of every input of its recipe (sources, patches,
config fragments, toolchain, recipe version, keys of the entries it depends on).
Builds run in a staging directory and become visible by one atomic rename, with
manifest.json written last inside it: an interrupted build never leaves a
usable-looking entry.

The manifest records the size and sha256 of every file of the entry ("files"; a
symbolic link by its target). An entry is checked against it on its first use in a
process: a damaged entry (a file truncated, changed, missing or added) is moved
aside and rebuilt, with one line saying so. A directory without a manifest (a
build killed at the wrong moment, a manifest deleted by hand) is not an entry: it
is replaced. Downloads are checked by sha256 against the lock the same way.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import debian
from ..errors import HarnessError

CACHE_ENV = "HARNESS_CACHE"
MANIFEST = "manifest.json"
WORK_LOCK = ".lock"     # in a local tree's workspace (work/xen-*): held by the build using it
SUBDIRS = ("store", "downloads", "tmp", "logs", "work", "locks")   # work: warm trees of local sources;
# locks: one file per entry ever built, held while it builds (two processes build it once)
# A cache root carries this file: the harness removes things only inside a directory it
# made (or adopted: one holding nothing but SUBDIRS and OTHER_OWN), never in one a user pointed it at.
MARK = ".xen-scmi-harness-cache"
OTHER_OWN = ("ssh",)    # what else the harness keeps at a cache root (harness/machine/ssh.py: boot keys)
# What tmp/ holds that we wrote: staging (RECIPE-KEY.PID) and set-aside entries
# (RECIPE-KEY.damaged.PID, RECIPE-KEY.pruned.PID); KEY is 24 hex digits
OUR_TMP = re.compile(r"(?:[a-z0-9][a-z0-9-]*-[0-9a-f]{24}|[a-z0-9][a-z0-9.-]*\.(?:damaged|pruned))\.(\d+)")
FIELD = f"cache directory (--cache; pytest --harness-cache; {CACHE_ENV})"

# What this process has checked already: entry path -> manifest key; download path ->
# (size, mtime_ns). A file changed after its check in the same process is not seen again.
_VERIFIED_ENTRIES: dict[str, str] = {}
_VERIFIED_DOWNLOADS: dict[str, tuple[int, int]] = {}


def forget_checks() -> None:
    """Check every entry and download again at its next use (as a new process would)."""
    _VERIFIED_ENTRIES.clear()
    _VERIFIED_DOWNLOADS.clear()


def default_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xen-scmi-harness"


def digest(inputs) -> str:
    """The key of a JSON-serialisable description of inputs (order-independent for dicts)."""
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree_files(root: Path) -> dict[str, dict]:
    """Every file below root except the manifest: relative path -> {"size", "sha256"},
    or {"symlink": target} for a symbolic link (to a file or a directory)."""
    out: dict[str, dict] = {}
    for dirpath, dirs, files in os.walk(root):
        d = Path(dirpath)
        for name in sorted(files) + sorted(dirs):
            p = d / name
            rel = p.relative_to(root).as_posix()
            if rel == MANIFEST:
                continue
            if p.is_symlink():
                out[rel] = {"symlink": os.readlink(p)}
            elif name in files:
                out[rel] = {"size": p.stat().st_size, "sha256": file_digest(p)}
        dirs[:] = [n for n in dirs if not (d / n).is_symlink()]
    return dict(sorted(out.items()))


def compare_tree(root: Path, recorded: dict[str, dict], limit: int = 3) -> list[str]:
    """What differs between the files below root and the recorded ones (empty: intact).
    Sizes and links first (cheap), then the sha256 of every file."""
    problems: list[str] = []
    seen = set()
    for dirpath, dirs, files in os.walk(root):
        d = Path(dirpath)
        for name in files + dirs:
            p = d / name
            rel = p.relative_to(root).as_posix()
            if rel != MANIFEST and rel not in recorded and (name in files or p.is_symlink()):
                problems.append(f"{rel} is not in the manifest")
            seen.add(rel)
        dirs[:] = [n for n in dirs if not (d / n).is_symlink()]
    hash_later = []
    for rel, rec in recorded.items():
        p = root / rel
        if rel not in seen and not p.is_symlink():
            problems.append(f"{rel} is missing")
        elif "symlink" in rec:
            if not p.is_symlink() or os.readlink(p) != rec["symlink"]:
                problems.append(f"{rel} is no longer a link to {rec['symlink']}")
        elif p.is_symlink() or not p.is_file():
            problems.append(f"{rel} is no longer a regular file")
        elif (size := p.stat().st_size) != rec["size"]:
            problems.append(f"{rel} is {size} bytes, recorded {rec['size']}")
        else:
            hash_later.append((rel, p, rec))
    if not problems:
        for rel, p, rec in hash_later:
            if file_digest(p) != rec["sha256"]:
                problems.append(f"{rel} has other bytes than recorded (sha256 differs)")
                if len(problems) >= limit:
                    break
    return problems[:limit] + ([f"and {len(problems) - limit} more"] if len(problems) > limit else [])


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _stderr(msg: str) -> None:
    print(f"harness: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Entry:
    """A finished cache entry: a directory of outputs plus its manifest."""
    recipe: str
    key: str
    path: Path

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / MANIFEST).read_text())

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel


class Cache:
    def __init__(self, root: Path | None = None, notify: Callable[[str], None] | None = None):
        if root is not None and not str(root).strip():
            raise HarnessError("the cache directory is an empty path (it would mean the current directory)",
                               field=FIELD, fix="give a directory of its own, e.g. --cache ~/.cache/xen-scmi-harness")
        self.root = Path(root).expanduser() if root else default_root()
        self.notify = notify or _stderr     # one line for each entry repaired or replaced
        self.busy: list[Stored] = []         # workspaces the last prune kept: a build held them
        fix = f"give a writable directory with --cache (or {CACHE_ENV}), or fix this one's permissions"
        self._claim(fix)
        for sub in SUBDIRS:
            d = self.root / sub
            try:
                d.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise HarnessError(f"the cache path {d} is a file, not a directory", where=str(self.root),
                                   field=FIELD, fix=fix) from None
            except NotADirectoryError:
                raise HarnessError("the cache path (or a directory above it) is a file, not a directory",
                                   where=str(self.root), field=FIELD, fix=fix) from None
            except OSError as e:
                raise HarnessError(f"cannot create the cache directory {d}: {e.strerror or e}",
                                   where=str(self.root), field=FIELD, fix=fix) from None
            if not os.access(d, os.W_OK | os.X_OK):
                raise HarnessError(f"the cache directory {d} is not writable", where=str(self.root),
                                   field=FIELD, fix=fix)
        self.clean_tmp()

    def _claim(self, fix: str) -> None:
        """Make sure root is ours: create it with the mark, adopt a directory that holds
        nothing but our subdirectories (a cache from before the mark), refuse anything else."""
        try:
            if (self.root / MARK).is_file():
                return
            found = sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []
        except OSError as e:
            raise HarnessError(f"cannot read the cache directory: {e.strerror or e}", where=str(self.root),
                               field=FIELD, fix=fix) from None
        foreign = [n for n in found if n not in (*SUBDIRS, *OTHER_OWN)]
        if foreign:
            raise HarnessError(f"{self.root} is not a harness cache: it holds {', '.join(foreign[:5])}"
                               f"{' ...' if len(foreign) > 5 else ''} and no {MARK} (the harness creates and "
                               f"deletes files in its cache)", where=str(self.root), field=FIELD,
                               fix=f"give an empty or new directory with --cache (or {CACHE_ENV}); if this "
                                   f"is a harness cache, create {self.root / MARK}")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / MARK).write_text("xen-scmi-harness build cache: the harness removes files in here\n")
        except FileExistsError:
            raise HarnessError("the cache path is a file, not a directory", where=str(self.root),
                               field=FIELD, fix=fix) from None
        except NotADirectoryError:
            raise HarnessError("the cache path (or a directory above it) is a file, not a directory",
                               where=str(self.root), field=FIELD, fix=fix) from None
        except OSError as e:
            raise HarnessError(f"cannot create the cache directory: {e.strerror or e}", where=str(self.root),
                               field=FIELD, fix=fix) from None

    def entry_path(self, recipe: str, key: str) -> Path:
        return self.root / "store" / recipe / key[:24]

    def lookup(self, recipe: str, key: str) -> Entry | None:
        """The entry if its directory has a manifest (not checked: see verified())."""
        path = self.entry_path(recipe, key)
        return Entry(recipe, key, path) if (path / MANIFEST).is_file() else None

    def log_path(self, recipe: str, key: str) -> Path:
        return self.root / "logs" / f"{recipe}-{key[:24]}.log"

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def damage(self, entry: Entry) -> list[str]:
        """Why entry cannot be used (empty: it is intact). Checked once per process.
        An entry whose manifest records no files is damaged: nothing says what it held."""
        if _VERIFIED_ENTRIES.get(str(entry.path)) == entry.key:
            return []
        try:
            manifest = entry.manifest
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            return [f"{MANIFEST} is unreadable ({e})"]
        if manifest.get("key") not in (None, entry.key):
            return [f"{MANIFEST} is for key {manifest.get('key')}, not {entry.key}"]
        files = manifest.get("files")
        try:
            if files is None:        # nothing to check it against: what is there may be damaged
                return [f"{MANIFEST} records no files (nothing to check the entry against)"]
            elif not isinstance(files, dict):
                return [f"{MANIFEST}: 'files' is not a table"]
            else:
                problems = compare_tree(entry.path, files)
        except OSError as e:
            return [f"cannot read {e.filename}: {e.strerror}"]
        if not problems:
            _VERIFIED_ENTRIES[str(entry.path)] = entry.key
        return problems

    def verified(self, recipe: str, key: str) -> Entry | None:
        """The entry if it exists and is intact; a damaged entry or a directory without
        a manifest is moved aside (one line says why) and None is returned."""
        path = self.entry_path(recipe, key)
        found = self.lookup(recipe, key)
        if found:
            problems = self.damage(found)
            if not problems:
                with contextlib.suppress(OSError):     # its last use, for `harness cache prune`
                    os.utime(path)
                return found
            self._discard(path, f"cache entry {self._rel(path)} is damaged ({'; '.join(problems)}): rebuilding it")
        elif path.exists() or path.is_symlink():
            self._discard(path, f"cache entry {self._rel(path)} has no {MANIFEST} (an interrupted build, "
                                f"or the manifest was deleted): replacing it")
        return None

    def _discard(self, path: Path, why: str) -> None:
        self.notify(why)
        try:                         # also kept (a pytest run captures stderr during collection)
            with open(self.root / "logs" / "cache-repairs.log", "a") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: {why}\n")
        except OSError:
            pass
        _VERIFIED_ENTRIES.pop(str(path), None)
        trash = self.root / "tmp" / f"{path.parent.name}-{path.name}.damaged.{os.getpid()}"
        _remove(trash)
        try:
            os.rename(path, trash)
        except FileNotFoundError:     # another process moved it first
            return
        _remove(trash)

    def _write_manifest(self, where: Path, manifest: dict) -> None:
        tmp = where / f".{MANIFEST}.{os.getpid()}"
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        os.replace(tmp, where / MANIFEST)

    def build(self, recipe: str, inputs: dict, builder: Callable[[Path, Path], dict | None]) -> tuple[Entry, bool]:
        """Return (entry, built_now). builder(out_dir, log_path) fills out_dir and may
        return extra manifest fields; it raises to fail, leaving nothing in the store."""
        key = digest({"recipe": recipe, **inputs})
        if (self.root / "store" / recipe).exists() and not (self.root / "store" / recipe).is_dir():
            raise HarnessError(f"store/{recipe} is a file, not the directory of {recipe} entries",
                               where=str(self.root / "store" / recipe), field=FIELD,
                               fix=f"remove it ({self.root / 'store' / recipe}); the cache makes it again")
        found = self.verified(recipe, key)
        if found:
            return found, False
        with self._building(recipe, key):
            found = self.verified(recipe, key)   # built by another process while this one waited
            if found:
                return found, False
            return self._build(recipe, key, inputs, builder), True

    @contextlib.contextmanager
    def _building(self, recipe: str, key: str):
        """Hold the entry's build lock: two processes (pytest -n workers, two runs) that want
        one entry build it once; the second waits, then finds it in the store."""
        import fcntl
        with open(self.root / "locks" / f"{recipe}-{key[:24]}", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.notify(f"{recipe}: another process is building this entry; waiting for it")
                fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _build(self, recipe: str, key: str, inputs: dict, builder) -> Entry:
        stage = self.root / "tmp" / f"{recipe}-{key[:24]}.{os.getpid()}"
        _remove(stage)
        stage.mkdir(parents=True)
        log = self.log_path(recipe, key)
        log.unlink(missing_ok=True)
        start = time.monotonic()
        final = self.entry_path(recipe, key)
        try:
            extra = builder(stage, log) or {}
            manifest = {"recipe": recipe, "key": key, "inputs": inputs, "built_at": time.time(),
                        "build_seconds": round(time.monotonic() - start, 2), **extra,
                        "files": tree_files(stage)}
            self._write_manifest(stage, manifest)
            if final.parent.exists() and not final.parent.is_dir():
                raise HarnessError(f"{self._rel(final.parent)} is a file, not the directory of {recipe} entries",
                                   where=str(final.parent), field=FIELD,
                                   fix=f"remove it ({final.parent}); the cache makes it again")
            final.parent.mkdir(parents=True, exist_ok=True)
            for attempt in (1, 2):
                try:
                    os.rename(stage, final)
                    break
                except OSError as e:
                    if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                        raise
                    if self.lookup(recipe, key):   # a concurrent identical build won: use it
                        break
                    if attempt == 2:
                        raise
                    # a directory without a manifest appeared meanwhile: not an entry
                    self._discard(final, f"cache entry {self._rel(final)} has no {MANIFEST}: replacing it")
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
        _VERIFIED_ENTRIES[str(final)] = key
        return Entry(recipe, key, final)

    def download_path(self, entry) -> Path:
        return self.root / "downloads" / entry.sha256[:24] / entry.filename

    def download_damage(self, entry) -> str | None:
        """Why the cached download of a lock entry is bad (None: absent or intact)."""
        dest = self.download_path(entry)
        if not dest.is_file():
            return None
        st = dest.stat()
        if _VERIFIED_DOWNLOADS.get(str(dest)) == (st.st_size, st.st_mtime_ns):
            return None
        if st.st_size != entry.size:
            return f"{dest} is {st.st_size} bytes, the lock says {entry.size}"
        got = file_digest(dest)
        if got != entry.sha256:
            return f"{dest} has sha256 {got}, the lock says {entry.sha256}"
        _VERIFIED_DOWNLOADS[str(dest)] = (st.st_size, st.st_mtime_ns)
        return None

    def download(self, entry) -> Path:
        """A verified copy of a lock entry's file, fetched once; a cached copy whose size
        or sha256 differs from the lock's is fetched again (one line says so)."""
        dest = self.download_path(entry)
        if dest.exists() and not dest.is_file():     # a directory (or worse) where the file goes
            self.notify(f"cached download of [{entry.name}] is not a file ({dest}): downloading it again")
            _remove(dest)
        if dest.is_file():
            problem = self.download_damage(entry)
            if problem is None:
                return dest
            self.notify(f"cached download of [{entry.name}] is damaged ({problem}): downloading it again")
            dest.unlink(missing_ok=True)
        url = f"{debian.mirror()}/{entry.path}"
        debian.fetch(url, dest, entry.sha256, what=f"lock entry [{entry.name}] ({entry.describe()})")
        st = dest.stat()
        _VERIFIED_DOWNLOADS[str(dest)] = (st.st_size, st.st_mtime_ns)
        return dest

    def size_bytes(self) -> int:
        total = 0
        for dirpath, _, files in os.walk(self.root):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_size
                except OSError:
                    pass
        return total

    def entries(self) -> list["Stored"]:
        """Every entry of the store and every warm workspace (work/), with size and last use."""
        out = []
        for recipe in sorted(p for p in (self.root / "store").iterdir() if p.is_dir()):
            for e in recipe.iterdir():
                out.append(Stored(recipe.name, e, _du(e), _mtime(e)))
        for w in sorted([*(self.root / "work").glob("xen-*"), *(self.root / "work").glob("cov-*")]):
            out.append(Stored("work", w, _du(w), _mtime(w / WORK_LOCK) or _mtime(w)))
        return out

    def prune(self, older_than_days: float | None = None, keep_last: int | None = None,
              dry_run: bool = False) -> list["Stored"]:
        """Remove entries not used for older_than_days, and all but the keep_last most
        recently used of each recipe. An entry is only ever removed whole (its directory
        renamed away first), so a concurrent run sees it or rebuilds it, never half of it;
        a local tree's workspace that a build holds (its .lock) is kept, listed in self.busy."""
        now, doomed = time.time(), []
        by_recipe: dict[str, list[Stored]] = {}
        for e in self.entries():
            by_recipe.setdefault(e.recipe, []).append(e)
        for items in by_recipe.values():
            items.sort(key=lambda e: e.last_used, reverse=True)
            for i, e in enumerate(items):
                if (older_than_days is not None and now - e.last_used > older_than_days * 86400) or \
                        (keep_last is not None and i >= keep_last):
                    doomed.append(e)
        self.busy = []
        if not dry_run:
            for e in list(doomed):
                lockable = e.recipe == "work" and (e.path / WORK_LOCK).exists()
                with workspace_lock(e.path, wait=False) if lockable else contextlib.nullcontext(True) as free:
                    if not free:                 # a build holds this workspace: keep it
                        doomed.remove(e)
                        self.busy.append(e)
                        continue
                    trash = self.root / "tmp" / f"{e.recipe}-{e.path.name}.pruned.{os.getpid()}"
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(e.path, trash)
                        _remove(trash)
                _VERIFIED_ENTRIES.pop(str(e.path), None)
                if e.recipe != "work":
                    (self.root / "locks" / f"{e.recipe}-{e.path.name}").unlink(missing_ok=True)
                    for log in (self.root / "logs").glob(f"{e.recipe}-{e.path.name}*.log"):
                        log.unlink(missing_ok=True)
        return doomed

    def clean_tmp(self) -> list[Path]:
        """Remove what builds and downloads of dead processes left: staging and
        set-aside directories in tmp/ (NAME.PID), partial downloads (NAME.partPID)."""
        removed = []
        leftovers = [(p, m.group(1)) for p in (self.root / "tmp").iterdir() if (m := OUR_TMP.fullmatch(p.name))]
        for d in (self.root / "downloads").glob("*/*.part*"):
            leftovers.append((d, d.name.rsplit(".part", 1)[-1]))
        for p, pid in leftovers:
            if pid.isdigit() and not _alive(int(pid)):
                _remove(p)
                removed.append(p)
        return removed


@contextlib.contextmanager
def workspace_lock(ws: Path, *, wait: bool = True):
    """Hold a workspace's lock: builds wait for it (build/xen.py locked()); with wait=False
    (prune) yields False instead when another process holds it. Opening it leaves its
    mtime, the workspace's last use, alone."""
    import fcntl
    with open(ws / WORK_LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True


@dataclass(frozen=True)
class Stored:
    recipe: str          # a store recipe, or "work" for a local tree's warm workspace
    path: Path
    size: int
    last_used: float     # epoch seconds: the entry directory's mtime, touched on each use


def _du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
