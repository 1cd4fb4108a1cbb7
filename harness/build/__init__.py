"""Builds of every image, each through the content-addressed cache.

`Builder` resolves what the user asked for (board, Xen source and patch series,
TF-A source) once, then each recipe module turns inputs into a cache entry:
xen.py (source trees, hypervisor variants, toolstack), tfa.py, linux.py, rootfs.py,
probe.py (the scmi-probe test guest).
"""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import sources
from ..board import Board, load_board
from ..cache import Cache, Entry
from ..errors import HarnessError
from ..lock import LOCK_PATH, Lock, load_lock
from ..patches import PatchSeries, load_series

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
DEFAULT_SERIES = REPO.parent / "shared" / "sut" / "xen-scmi-ma-rfc-v5"
CROSS = "aarch64-linux-gnu-"


@dataclass
class BuildOptions:
    board: str = "qemu-virt"
    xen_src: str | None = None      # 'lock' | directory | URL#ref   (env HARNESS_XEN_SRC)
    xen_patches: str | None = None  # directory | mbox | 'none'      (env HARNESS_XEN_PATCHES)
    tfa_src: str | None = None      # 'lock' | directory | URL#ref   (env HARNESS_TFA_SRC)
    cache_dir: Path | None = None
    lock_path: Path = LOCK_PATH
    jobs: int = field(default_factory=lambda: os.cpu_count() or 2)

    @classmethod
    def from_env(cls, **overrides) -> "BuildOptions":
        env = {"xen_src": os.environ.get("HARNESS_XEN_SRC"),
               "xen_patches": os.environ.get("HARNESS_XEN_PATCHES"),
               "tfa_src": os.environ.get("HARNESS_TFA_SRC"),
               "board": os.environ.get("HARNESS_BOARD", "qemu-virt")}
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)


def resolve_series(text: str | None) -> PatchSeries | None:
    """The SUT patch series: explicit path, 'none', or ../shared/sut's series when present."""
    if text == "none":
        return None
    if text:
        return load_series(text)
    return load_series(DEFAULT_SERIES) if DEFAULT_SERIES.is_dir() else None


def elf_files(root: Path) -> list[Path]:
    """Regular ELF files below root (what gets stripped and checked for libraries)."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    out.append(p)
    return out


def toolchain_id() -> str:
    """Versions of the compilers: part of every key of a compiled artifact."""
    ids = []
    for tool in (CROSS + "gcc", "gcc"):
        try:
            ids.append(subprocess.run([tool, "--version"], capture_output=True, text=True,
                                      check=True).stdout.splitlines()[0])
        except (OSError, subprocess.CalledProcessError):
            raise HarnessError(f"{tool} not found", field="host toolchain",
                               fix="run scripts/setup to install the cross compiler") from None
    return " | ".join(ids)


class Builder:
    def __init__(self, options: BuildOptions | None = None,
                 progress: Callable[[str, str, float | None], None] | None = None):
        self.options = options or BuildOptions.from_env()
        self.cache = Cache(self.options.cache_dir)
        self.lock: Lock = load_lock(self.options.lock_path)
        self.board: Board = load_board(self.options.board)
        self.xen_spec = sources.parse_source("xen", self.options.xen_src, "--xen-src")
        self.tfa_spec = sources.parse_source("tf-a", self.options.tfa_src, "--tfa-src")
        self.series = resolve_series(self.options.xen_patches)
        self.progress = progress or (lambda name, state, secs: None)
        self.timings: dict[str, float] = {}
        self._memo: dict[str, object] = {}
        self._toolchain: str | None = None

    @property
    def toolchain(self) -> str:
        if self._toolchain is None:
            self._toolchain = toolchain_id()
        return self._toolchain

    def memo(self, name: str, make: Callable[[], object]):
        """Compute a recipe's result once per Builder (several targets share dependencies)."""
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]

    def step(self, label: str, recipe: str, inputs: dict, build: Callable[[Path, Path], dict | None]) -> Entry:
        """One cached, logged, timed build step."""
        start = time.monotonic()
        self.progress(label, "start", None)
        try:
            entry, built = self.cache.build(recipe, inputs, build)
        except Exception:
            self.progress(label, "failed", time.monotonic() - start)
            raise
        secs = time.monotonic() - start
        self.timings[label] = secs
        self.progress(label, "built" if built else "cached", secs)
        return entry

    # The recipes, by target name; each returns a cache Entry.
    def targets(self) -> dict[str, Callable[[], Entry]]:
        from . import linux, probe, rootfs, tfa, xen
        t = {f"xen-{v}": (lambda v=v: xen.hypervisor(self, v)) for v in xen.variants()}
        t.update({"xen-tools": lambda: xen.tools(self), "tf-a": lambda: tfa.firmware(self),
                  "kernel": lambda: linux.kernel(self), "scmi-probe": lambda: probe.probe(self),
                  "rootfs-domu": lambda: rootfs.rootfs(self, "domu"),
                  "rootfs-dom0": lambda: rootfs.rootfs(self, "dom0")})
        return t

    def build(self, names: list[str] | None = None) -> dict[str, Entry]:
        targets = self.targets()
        unknown = [n for n in names or [] if n not in targets and n != "all"]
        if unknown:
            raise HarnessError(f"unknown target(s) {', '.join(unknown)}", field="harness build TARGET",
                               fix=f"use one of: all, {', '.join(targets)}")
        wanted = list(targets) if not names or "all" in names else names
        return {n: targets[n]() for n in wanted if self.available(n)}

    def available(self, name: str) -> bool:
        """A target that needs the SUT series is skipped (with a message) when there is none."""
        from . import xen
        if name.startswith("xen-") and name != "xen-tools" and xen.needs_series(name[4:]) \
                and self.series is None:
            self.progress(name, "skipped: no Xen patch series (set --xen-patches)", None)
            return False
        return True
