"""A content-addressed build cache.

An entry is keyed by the sha256 of every input of its recipe (sources, patches,
config fragments, toolchain, recipe version, keys of the entries it depends on).
Builds run in a staging directory and become visible by one atomic rename, with
manifest.json written last inside it: an interrupted build never leaves a
usable-looking entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import debian

CACHE_ENV = "HARNESS_CACHE"
MANIFEST = "manifest.json"


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
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_root()
        for sub in ("store", "downloads", "tmp", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def entry_path(self, recipe: str, key: str) -> Path:
        return self.root / "store" / recipe / key[:24]

    def lookup(self, recipe: str, key: str) -> Entry | None:
        path = self.entry_path(recipe, key)
        return Entry(recipe, key, path) if (path / MANIFEST).is_file() else None

    def log_path(self, recipe: str, key: str) -> Path:
        return self.root / "logs" / f"{recipe}-{key[:24]}.log"

    def build(self, recipe: str, inputs: dict, builder: Callable[[Path, Path], dict | None]) -> tuple[Entry, bool]:
        """Return (entry, built_now). builder(out_dir, log_path) fills out_dir and may
        return extra manifest fields; it raises to fail, leaving nothing in the store."""
        key = digest({"recipe": recipe, **inputs})
        found = self.lookup(recipe, key)
        if found:
            return found, False
        stage = self.root / "tmp" / f"{recipe}-{key[:24]}.{os.getpid()}"
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        log = self.log_path(recipe, key)
        log.unlink(missing_ok=True)
        start = time.monotonic()
        try:
            extra = builder(stage, log) or {}
            manifest = {"recipe": recipe, "key": key, "inputs": inputs, "built_at": time.time(),
                        "build_seconds": round(time.monotonic() - start, 2), **extra}
            (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
            final = self.entry_path(recipe, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(stage, final)
            except OSError:
                if not self.lookup(recipe, key):   # not a concurrent identical build: a real error
                    raise
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
        return Entry(recipe, key, self.entry_path(recipe, key)), True

    def download(self, entry) -> Path:
        """A verified copy of a lock entry's file, fetched once (by sha256)."""
        dest = self.root / "downloads" / entry.sha256[:24] / entry.filename
        if dest.is_file() and dest.stat().st_size == entry.size:
            return dest
        url = f"{debian.mirror()}/{entry.path}"
        debian.fetch(url, dest, entry.sha256, what=f"lock entry [{entry.name}] ({entry.describe()})")
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

    def clean_tmp(self) -> None:
        """Remove staging directories of builds that were interrupted."""
        for p in (self.root / "tmp").iterdir():
            pid = p.name.rsplit(".", 1)[-1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(p, ignore_errors=True)

