"""Builds of every image, each through the content-addressed cache.

`Builder` resolves what the user asked for (board, the system under test - a named
SUT of images/xen/suts.toml, its Xen source and patch series overridable by
--xen-src/--xen-patches - and the TF-A source) once, then each recipe module turns inputs into a cache entry:
xen.py (source trees, hypervisor variants, toolstack), tfa.py, linux.py, rootfs.py,
probe.py (the scmi-probe test guest).
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import sources, sut as suts
from ...data.board import Board, load_board
from ..cache import Cache, Entry, digest as cache_digest
from ...errors import HarnessError
from ..lock import LOCK_PATH, Lock, load_lock
from ..patches import PatchSeries, load_series

REPO = Path(__file__).resolve().parents[3]
IMAGES = REPO / "images"
CROSS = "aarch64-linux-gnu-"


@dataclass
class BuildOptions:
    board: str = "qemu-virt"
    sut: str | None = None          # a name of images/xen/suts.toml or the user's file (env HARNESS_SUT)
    xen_src: str | None = None      # 'lock' | directory | URL#ref | FILE.tar.xz (env HARNESS_XEN_SRC)
    xen_patches: str | None = None  # directory | mbox | 'none'      (env HARNESS_XEN_PATCHES)
    tfa_src: str | None = None      # 'lock' | directory | URL#ref   (env HARNESS_TFA_SRC)
    cache_dir: Path | None = None
    lock_path: Path = LOCK_PATH
    jobs: int = field(default_factory=lambda: os.cpu_count() or 2)

    @classmethod
    def from_env(cls, **overrides) -> "BuildOptions":
        # an empty variable is an unset one (VAR= cmd), as HARNESS_CACHE is; an empty option is refused (cli)
        env = {"sut": os.environ.get("HARNESS_SUT") or None, "xen_src": os.environ.get("HARNESS_XEN_SRC") or None,
               "xen_patches": os.environ.get("HARNESS_XEN_PATCHES") or None,
               "tfa_src": os.environ.get("HARNESS_TFA_SRC") or None,
               "board": os.environ.get("HARNESS_BOARD") or "qemu-virt"}
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)


OWN_TREE = "tree"    # the SUT name of --xen-src DIR given without --sut: the tree decides


def own_tree(options: BuildOptions) -> suts.Sut:
    """--xen-src DIR without --sut: the user's tree taken as it is (it carries its series),
    with the binding profile its code implements (--xen-patches adds a series on top)."""
    from .xen import detect_profile
    path = Path(options.xen_src).expanduser().resolve()
    if not path.is_dir():
        raise HarnessError(f"{options.xen_src!r} is not a directory", field="--xen-src",
                           fix="give your Xen tree's directory (or name a SUT with --sut)")
    sources.check_tree(sources.SourceSpec("xen", "dir", str(path)), "--xen-src")
    series = None if options.xen_patches in (None, "none") else options.xen_patches
    prof = detect_profile(path, load_series(series) if series else None)
    if prof is None:
        raise HarnessError("this tree has no SCMI mediator (no CONFIG_SCMI_SMC / CONFIG_SCMI_SMC_MA in "
                           "xen/arch/arm's Kconfig)", where=str(path), field="--xen-src",
                           fix="give a Xen 4.20+ tree, or a series with --xen-patches and a --sut that says "
                               "its profile")
    return suts.Sut(OWN_TREE, f"your tree {path}", str(path), None, series, prof, prof.variant, path, False)


def resolve_sut(options: BuildOptions) -> suts.Sut:
    """The SUT asked for (default: the first shipped one that can be built here), with
    --xen-src / --xen-patches replacing its source / series when given. A source other
    than the lock is taken as it is: the SUT's series is applied to it only when
    --xen-patches names one. --xen-src DIR without --sut is its own SUT (own_tree)."""
    import dataclasses
    local = bool(options.xen_src) and options.xen_src != "lock"
    if local and options.sut in (None, OWN_TREE) and sources.parse_source(
            "xen", options.xen_src, "--xen-src").kind == "dir":
        return own_tree(options)
    name = options.sut or next(iter(suts.default_names()), None) or "upstream-4.20"
    if name == OWN_TREE:
        raise HarnessError(f"SUT {OWN_TREE!r} is your local tree: it needs --xen-src DIR", field="--sut",
                           fix="give --xen-src ~/src/xen (or pick a SUT of `harness sut list`)")
    sut = suts.get(name)
    if options.xen_src:
        sut = dataclasses.replace(sut, source=options.xen_src, sha256=None,
                                  series=None if local else sut.series)
    if options.xen_patches:
        sut = dataclasses.replace(sut, series=None if options.xen_patches == "none" else options.xen_patches)
    elif sut.series and not Path(sut.series).exists():
        raise HarnessError(f"SUT {sut.name}: its patch series is not on this machine", where=sut.series,
                           field=f"{sut.origin} [{sut.name}].series",
                           fix="put the series there, pass --xen-patches, or pick another --sut")
    return sut


def resolve_series(text: str | None) -> PatchSeries | None:
    return None if not text or text == "none" else load_series(text)


def elf_files(root: Path) -> list[Path]:
    """Regular ELF files below root (what gets stripped and checked for libraries)."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    out.append(p)
    return out


def last_line(log: Path, width: int = 90) -> str:
    """The last non-empty line of a build log, shortened (what make is doing now)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 4096))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "starting"
    line = lines[-1] if lines else "starting"
    return line if len(line) <= width else "..." + line[-(width - 3):]


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


# What make, the shell in its recipes and the compilers' -Wl,... options cannot take in a path
# (TF-A's and Xen's builds run in the cache): blanks, list and target separators, quotes,
# variable and glob characters
UNBUILDABLE = set(",:;'\"`$#\\%*?[](){}&|<>=!")


def check_build_root(root) -> None:
    """The cache root is where make runs: refuse a path make would split or misread, here,
    instead of in TF-A's make with a compiler message about -o."""
    from ..cache import FIELD, default_root
    path = str(Path(root).expanduser().absolute()) if root else str(default_root().absolute())
    bad = sorted({c for c in path if c in UNBUILDABLE or c.isspace() or not c.isprintable()})
    if bad:
        raise HarnessError(f"the cache path holds {' '.join(repr(c) for c in bad)}, which make and the compilers "
                           "cannot take in the paths of a build (TF-A's and Xen's builds run there)",
                           where=path, field=FIELD, fix="give a cache directory whose path has only letters, "
                           "digits and / . _ - + @ ~ (e.g. --cache ~/.cache/xen-scmi-harness)")


class Builder:
    def __init__(self, options: BuildOptions | None = None,
                 progress: Callable[[str, str, float | None], None] | None = None):
        self.options = options or BuildOptions.from_env()
        jobs = self.options.jobs
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise HarnessError(f"-j {jobs}: make needs at least one job", field="-j/--jobs",
                               fix=f"give 1 or more (default: the number of CPUs, {os.cpu_count() or 2})")
        check_build_root(self.options.cache_dir)
        self.cache = Cache(self.options.cache_dir)
        self.lock: Lock = load_lock(self.options.lock_path)
        self.board: Board = load_board(self.options.board)
        self.sut = resolve_sut(self.options)
        self.xen_spec = sources.parse_source("xen", self.sut.source, "--xen-src", self.sut.sha256)
        self.tfa_spec = sources.parse_source("tf-a", self.options.tfa_src, "--tfa-src")
        sources.check_tree(self.xen_spec, "--xen-src")
        sources.check_tree(self.tfa_spec, "--tfa-src")
        self.series = resolve_series(self.sut.series)
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

    HEARTBEAT = (5.0, 15.0)     # seconds to the first "still running" line, then between them

    def step(self, label: str, recipe: str, inputs: dict, build: Callable[[Path, Path], dict | None]) -> Entry:
        """One cached, logged, timed build step. While it builds, a line every 15 s says it
        is alive: the elapsed time, the log's last line (make's current target) and the log."""
        start = time.monotonic()
        self.progress(label, "start", None)
        log = self.cache.log_path(recipe, cache_digest({"recipe": recipe, **inputs}))
        done = threading.Event()

        def heartbeat():
            wait = self.HEARTBEAT[0]
            while not done.wait(wait):
                self.progress(label, f"running: {last_line(log)} (log {log})", time.monotonic() - start)
                wait = self.HEARTBEAT[1]
        beat = threading.Thread(target=heartbeat, name=f"heartbeat-{recipe}", daemon=True)
        beat.start()
        try:
            entry, built = self.cache.build(recipe, inputs, build)
        except Exception:
            self.progress(label, "failed", time.monotonic() - start)
            raise
        finally:
            done.set()
            beat.join()
        secs = time.monotonic() - start
        self.timings[label] = secs
        self.progress(label, "built" if built else "cached", secs)
        return entry

    # The recipes, by target name; each returns a cache Entry.
    def targets(self) -> dict[str, Callable[[], Entry]]:
        from . import dom0tools, linux, probe, rootfs, tfa, xen
        t = {f"xen-{v}": (lambda v=v: xen.hypervisor(self, v)) for v in xen.variants()}
        t.update({"xen-tools": lambda: xen.tools(self), "dom0-tools": lambda: dom0tools.dom0_tools(self),
                  "tf-a": lambda: tfa.firmware(self),
                  "kernel": lambda: linux.kernel(self), "scmi-probe": lambda: probe.probe(self),
                  "rootfs-domu": lambda: rootfs.rootfs(self, "domu"),
                  "rootfs-dom0": lambda: rootfs.rootfs(self, "dom0")})
        return t

    def default_targets(self) -> list[str]:
        """`all`: the SUT's hypervisor variant and everything else; other variants
        (multiagent-debug, upstream of a multi-agent tree) on request."""
        return [f"xen-{self.sut.variant}", *(t for t in self.targets() if not t.startswith("xen-") or t == "xen-tools")]

    def build(self, names: list[str] | None = None) -> dict[str, Entry]:
        targets = self.targets()
        unknown = [n for n in names or [] if n not in targets and n != "all"]
        if unknown:
            raise HarnessError(f"unknown target(s) {', '.join(unknown)}", field="harness build TARGET",
                               fix=f"use one of: all, {', '.join(targets)}")
        wanted = self.default_targets() if not names or "all" in names else names
        out = {n: targets[n]() for n in wanted}
        if f"xen-{self.sut.variant}" in out:
            from .xen import check_profile
            check_profile(self, out[f"xen-{self.sut.variant}"])
        return out
