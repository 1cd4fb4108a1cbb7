"""Xen: the SUT's (patched) source tree, hypervisor variants from Kconfig fragments, the
toolstack, and the check that the SUT's binding profile fits the tree it names."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import tomllib
from functools import lru_cache
from pathlib import Path

from .. import patches, sources
from ..cache import WORK_LOCK, Entry, workspace_lock
from ...errors import HarnessError
from ..shell import StepFailed, output, run
from . import CROSS, IMAGES, elf_files

XEN_DIR = IMAGES / "xen"
SOURCE_RECIPE = 1
HYPERVISOR_RECIPE = 1
TOOLS_RECIPE = 1
ARCH = {"XEN_TARGET_ARCH": "arm64", "CROSS_COMPILE": CROSS}


@lru_cache(maxsize=None)
def variants() -> dict[str, dict]:
    path = XEN_DIR / "variants.toml"
    data = tomllib.loads(path.read_text())
    for name, v in data.items():
        for frag in v.get("fragments", []):
            if not (XEN_DIR / frag).is_file():
                raise HarnessError(f"fragment {frag!r} does not exist", where=str(path),
                                   field=f"{name}.fragments", fix=f"create images/xen/{frag} or remove it")
    return data


def is_local(b) -> bool:
    """A local tree taken as it is (no series on top): built incrementally in a warm
    workspace instead of through a fresh copy per content."""
    return b.xen_spec.kind == "dir" and not b.series


def workspace(b) -> Path:
    """cache/work/xen-<hash of the tree's path>: `tree` (a mirror of the user's files,
    mtimes kept), `build-<variant>` (Xen's O= build directories, kept warm)."""
    return b.cache.root / "work" / f"xen-{hashlib.sha256(b.xen_spec.value.encode()).hexdigest()[:16]}"


def stat_cache(b) -> Path:
    return b.cache.root / "work" / f"stat-{hashlib.sha256(b.xen_spec.value.encode()).hexdigest()[:16]}.json"


@contextlib.contextmanager
def locked(ws: Path):
    """One harness process at a time syncs or builds in a workspace; taking it is a use
    (the lock's mtime is the workspace's last use for harness cache)."""
    ws.mkdir(parents=True, exist_ok=True)
    with workspace_lock(ws):
        os.utime(ws / WORK_LOCK)
        yield


def local_tree(b) -> Entry:
    """The user's tree as git sees it, mirrored into the workspace. Its key is the
    content digest of those files (uncommitted edits included), so every image built
    from it is keyed by exactly what was compiled."""
    def make():
        start = time.monotonic()
        root = Path(b.xen_spec.value)
        files = sources.tree_view(root)
        digest = sources.view_digest(root, files, stat_cache(b))
        ws = workspace(b)
        with locked(ws):
            copied = sources.sync_tree(root, files, ws / "tree")
        b.timings["xen source (local tree)"] = time.monotonic() - start
        b.progress(f"xen source: {root}", f"{copied} of {len(files)} files changed since the last build"
                   if copied else "cached", time.monotonic() - start)
        return Entry("xen-src", "tree:" + digest, ws)
    return b.memo("xen-src", make)


def source_tree(b) -> Entry:
    """The SUT's extracted Xen tree, with its patch series applied (git am) when it has one."""
    if is_local(b):
        return local_tree(b)

    def make():
        series = b.series
        inputs = {"recipe_version": SOURCE_RECIPE, "source": sources.fingerprint(b.xen_spec, b.lock, b.cache),
                  "patches": series.digest if series else None}

        def build(out: Path, log: Path):
            sources.extract(b.xen_spec, b.lock, b.cache, out / "tree")
            if series:
                patches.apply_series(series, out / "tree", log)
            return {"source": b.xen_spec.describe(),
                    "patch_series": str(series.path) if series else None,
                    "patch_subjects": [p.subject for p in series.patches] if series else []}
        label = "xen source" + (f" + {series.name}" if series else "")
        return b.step(label, "xen-src", inputs, build)
    return b.memo("xen-src", make)


def parse_config(text: str) -> dict[str, str]:
    """Kconfig .config lines -> {CONFIG_X: value}; '# CONFIG_X is not set' -> 'n'."""
    cfg = {}
    for line in text.splitlines():
        m = re.match(r"^(CONFIG_\w+)=(.*)$", line)
        if m:
            cfg[m.group(1)] = m.group(2).strip('"')
        m = re.match(r"^# (CONFIG_\w+) is not set$", line)
        if m:
            cfg[m.group(1)] = "n"
    return cfg


def hypervisor(b, variant: str) -> Entry:
    """xen (arm64 Image), xen-syms and xen.config of one variant."""
    def make():
        spec = variants()[variant]
        tree = source_tree(b)
        fragments = {f: (XEN_DIR / f).read_text() for f in spec.get("fragments", [])}
        inputs = {"recipe_version": HYPERVISOR_RECIPE, "source_tree": tree.key, "fragments": fragments,
                  "toolchain": b.toolchain}

        if spec.get("coverage"):
            inputs["coverage"] = spec["coverage"]

        def build(out: Path, log: Path):
            if spec.get("coverage"):
                return coverage_build(b, variant, tree, fragments, spec["coverage"], out, log)
            if is_local(b):
                return warm_build(b, variant, tree, fragments, out, log)
            src, obj = tree / "tree/xen", out / "build"
            configure(b, variant, src, obj, fragments, log)
            run("build", make_args(src, obj) + [f"-j{b.options.jobs}"], log, timeout=1800)
            for f in ("xen", "xen-syms", ".config"):
                shutil.copy2(obj / f, out / ("xen.config" if f == ".config" else f))
            shutil.rmtree(obj)
            return built_manifest(variant, src, obj=out)
        return b.step(f"xen hypervisor ({variant})", "xen", inputs, build)
    return b.memo(f"xen-{variant}", make)


def make_args(src: Path, obj: Path) -> list[str]:
    return ["make", "-C", str(src), f"O={obj}", *(f"{k}={v}" for k, v in ARCH.items())]


def configure(b, variant: str, src: Path, obj: Path, fragments: dict[str, str], log: Path) -> None:
    """defconfig + the variant's fragments + olddefconfig; every fragment option must survive."""
    make_args_ = make_args(src, obj)
    run("defconfig", make_args_ + ["defconfig"], log)
    wanted: dict[str, str] = {}
    with open(obj / ".config", "a") as cfg:
        for name, text in fragments.items():
            cfg.write(f"\n# --- fragment {name}\n{text}\n")
            wanted.update(parse_config(text))
    run("olddefconfig", make_args_ + ["olddefconfig"], log)
    final = parse_config((obj / ".config").read_text())
    for opt, val in wanted.items():
        if final.get(opt, "n") != val:
            raise HarnessError(f"{opt}={val} did not survive olddefconfig (got {final.get(opt, 'unset')}): "
                               f"this Xen source ({b.sut.describe()}) does not offer it",
                               where=f"images/xen/{variant}", field=opt,
                               fix="use a SUT whose tree has this option (harness sut list), a patch "
                               "series that adds it, or a variant without it")


def built_manifest(variant: str, src: Path, obj: Path) -> dict:
    final = parse_config((obj / "xen.config").read_text())
    version = output(["make", "-s", "-C", str(src), "xenversion"]).strip()
    return {"variant": variant, "xen_version": version,
            "config": {k: v for k, v in final.items() if "SCMI" in k or "SCI" in k or k == "CONFIG_DEBUG"}}


# Rules.mk gives gcov flags to every non-init object; the coverage variant narrows that to
# the objects its `coverage` list names (HARNESS_COV, make patterns), in its own copy.
# The rule as Xen 4.20 spells it, and as 4.22 does (cov-cflags-$(CONFIG_COVERAGE), nocov-y)
COV_RULES = ("$(non-init-objects): _c_flags += $(COV_FLAGS)",
             "$(non-init-objects): _c_flags += $(cov-cflags-y)")
NARROWED = "$(filter $(or $(HARNESS_COV),%),$(non-init-objects)):"


def narrow_coverage(text: str) -> str | None:
    """Rules.mk's text with its per-object coverage rule narrowed to HARNESS_COV (None: no rule known)."""
    for rule in COV_RULES:
        if rule in text:
            return text.replace(rule, rule.replace("$(non-init-objects):", NARROWED))
    return None


def coverage_build(b, variant: str, tree: Entry, fragments: dict[str, str], objects: list[str], out: Path,
                   log: Path) -> dict:
    """A coverage hypervisor: built in a workspace of its own that stays (cache work/), since
    reading the counters back needs the build's .gcno files and sources at the paths the
    compiler recorded; the entry names it (coverage_workspace)."""
    shape = json.dumps([tree.key, fragments, objects], sort_keys=True)    # one workspace per distinct build
    ws = b.cache.root / "work" / f"cov-{variant}-{hashlib.sha256(shape.encode()).hexdigest()[:16]}"
    with locked(ws):
        src_root = ws / "src"
        shutil.rmtree(src_root, ignore_errors=True)
        top = tree / "tree"
        shutil.copytree(top, src_root, symlinks=True,     # the hypervisor's part of the tree
                        ignore=lambda d, names: [n for n in names if n == ".git" or
                                                 (Path(d) == top and n in ("docs", "stubdom", "tools"))])
        rules = src_root / "xen" / "Rules.mk"
        narrowed = narrow_coverage(rules.read_text())
        if narrowed is None:
            raise HarnessError("this Xen's Rules.mk has no per-object coverage rule to narrow (neither 4.20's nor "
                               "4.22's spelling)", where=str(rules),
                               fix="add its rule to COV_RULES in harness/images/build/xen.py")
        rules.write_text(narrowed)
        (src_root / "tools").mkdir()          # Config.mk's tools paths exist, nothing is built there
        src, obj = src_root / "xen", ws / "build"
        shutil.rmtree(obj, ignore_errors=True)
        obj.mkdir(parents=True)
        configure(b, variant, src, obj, fragments, log)
        run("build", make_args(src, obj) + [f"HARNESS_COV={' '.join(objects)}", f"-j{b.options.jobs}"], log,
            timeout=1800)
        for f in ("xen", "xen-syms", ".config"):
            shutil.copy2(obj / f, out / ("xen.config" if f == ".config" else f))
        gcno = sorted(str(p.relative_to(obj)) for p in obj.rglob("*.gcno"))
        if not gcno:
            raise HarnessError("the coverage build instrumented nothing", where=str(obj),
                               fix=f"check the variant's coverage list in images/xen/variants.toml: {objects}")
    return {**built_manifest(variant, src, obj=out), "coverage_workspace": str(ws), "instrumented": gcno}


def warm_build(b, variant: str, tree: Entry, fragments: dict[str, str], out: Path, log: Path) -> dict:
    """Build a local tree's hypervisor in its workspace's kept O= directory: make
    recompiles what changed since the last build (seconds for one edited file).
    Reconfigured from scratch only when the variant's fragments change. Compiler
    messages name the user's own files, not the mirror."""
    ws, user = tree.path, Path(b.xen_spec.value)
    src, obj = ws / "tree/xen", ws / f"build-{variant}"
    with locked(ws):
        # the mirror may have moved on (another run, a later edit): make it what the key says
        files = sources.tree_view(user)
        sources.sync_tree(user, files, ws / "tree")
        if "tree:" + sources.view_digest(ws / "tree", files, stat_cache(b)) != tree.key:
            raise HarnessError("the tree changed while it was being built", where=str(user),
                               fix="run the build again (it builds what the tree holds now)")
        stamp = obj / ".harness-fragments.json"
        want = json.dumps(fragments, sort_keys=True)
        try:
            if not (obj / ".config").is_file() or stamp.read_text() != want:
                raise FileNotFoundError
        except FileNotFoundError:
            shutil.rmtree(obj, ignore_errors=True)
            configure(b, variant, src, obj, fragments, log)
            stamp.write_text(want)
        try:
            run("build", make_args(src, obj) + [f"-j{b.options.jobs}"], log, timeout=1800)
        except StepFailed as e:
            raise user_paths(e, log, ws / "tree", user) from None
        for f in ("xen", "xen-syms", ".config"):
            shutil.copy2(obj / f, out / ("xen.config" if f == ".config" else f))
    return {**built_manifest(variant, src, obj=out), "warm_build_dir": str(obj)}


def user_paths(e: StepFailed, log: Path, mirror: Path, user: Path) -> StepFailed:
    """The failure (and its log) with the mirror's paths replaced by the user's, so an
    editor's jump-to-error opens the file that was edited."""
    with contextlib.suppress(OSError):
        log.write_text(log.read_text(errors="replace").replace(f"{mirror}/", f"{user}/"))
    head, sep, tail = e.problem.partition("\n--- last ")      # the command line stays as it ran
    e.problem = head + sep + tail.replace(f"{mirror}/", f"{user}/")
    e.args = (str(e),)
    return e


def check_profile(b, entry: Entry) -> None:
    """The SUT's binding profile fits its tree: the hypervisor built for the profile's
    variant has the profile's Kconfig option, and xen/arch/arm parses the profile's DT
    binding (its marker strings). A v10 tree run with the v5 profile stops here, naming
    the profile whose markers the tree does have, instead of booting a Xen that ignores
    its configuration."""
    from ...data.profiles import PROFILES
    sut, prof = b.sut, b.sut.profile
    where = f"{sut.origin} [{sut.name}]"
    if not has_option(entry, prof.kconfig):
        raise HarnessError(f"SUT {sut.name}: the built Xen has no {prof.kconfig}, which profile {prof.name} needs",
                           where=where, field="profile",
                           fix="pick the profile of this tree, or a tree that has the driver")
    tree = source_tree(b) / "tree"
    text, tools = arm_sources(tree), tools_header(tree)
    missing = [m for m in prof.source_markers if m not in text] + [m for m in prof.tools_markers if m not in tools]
    if missing:
        # the profiles whose every marker the tree has, the most specific first (v11 before v10)
        fits = [p.name for p in sorted(PROFILES.values(), key=lambda p: -len(p.source_markers + p.tools_markers))
                if p.source_markers and p.kconfig == prof.kconfig and all(m in text for m in p.source_markers)
                and all(m in tools for m in p.tools_markers)]
        raise HarnessError(f"SUT {sut.name}: profile {prof.name} does not fit its tree: xen/arch/arm (or "
                           f"tools/include/libxl.h) never mentions {', '.join(repr(m) for m in missing)}, so Xen "
                           f"would ignore the configuration the harness composes", where=where, field="profile",
                           fix=f"set profile = {fits[0]!r} (its binding is what this tree parses)" if fits else
                           "use a profile whose binding this tree parses (harness/data/profiles.py)")


def kconfig_symbols(tree: Path) -> set[str]:
    """CONFIG_ names the tree's Arm Kconfig files define (what the tree can build)."""
    names = set()
    for k in (tree / "xen/arch/arm").rglob("Kconfig*"):
        names |= {f"CONFIG_{m}" for m in re.findall(r"^\s*(?:menu)?config\s+(\w+)", k.read_text(errors="replace"), re.M)}
    return names


def detect_profile(tree: Path, series=None):
    """The binding profile a tree's code implements, from what is in it (its Kconfig
    and the DT/option strings its Arm code parses), not from whether a series was given:
    the multi-agent driver's binding (v11 before v10, told apart by libxl.h's
    LIBXL_HAVE_SCMI_SMC_MULTIAGENT; v10 before v5: a v10 tree may keep v5's strings),
    else single-agent passthrough, else dom0-only forwarding. None: no SCMI at all.
    A series to be applied on top adds the lines it adds."""
    from ...data.profiles import PROFILES
    symbols, text = kconfig_symbols(tree), arm_sources(tree)
    if series is not None:
        added = "\n".join(line[1:] for f in series.files
                          for line in f.read_text(errors="replace").splitlines() if line.startswith("+"))
        text += added
        symbols |= {f"CONFIG_{m}" for m in re.findall(r"^\s*(?:menu)?config\s+(\w+)", added, re.M)}
    text += "\n" + tools_header(tree)
    for name in ("v11", "v10", "v5", "scmi-smc-passthrough", "single"):
        p = PROFILES[name]
        if p.kconfig in symbols and all(m in text for m in p.source_markers + p.tools_markers):
            return p
    return None


@lru_cache(maxsize=8)
def arm_sources(tree: Path) -> str:
    """The C sources Xen parses its Arm DT bindings and options in."""
    return "\n".join(p.read_text(errors="replace") for p in sorted((tree / "xen/arch/arm").rglob("*.c")))


def tools_header(tree: Path) -> str:
    """The toolstack's public header, where a revision's LIBXL_HAVE_* markers are ("" if none)."""
    lib = tree / "tools/include/libxl.h"
    return lib.read_text(errors="replace") if lib.is_file() else ""


def has_option(entry: Entry, option: str) -> bool:
    """Does this hypervisor build have a Kconfig option enabled? (e.g. CONFIG_SCMI_SMC_MA)"""
    return parse_config((entry / "xen.config").read_text()).get(option, "n") in ("y", "m")


TOOLS_CONFIGURE = [
    "--host=aarch64-linux-gnu", "--prefix=/usr", "--disable-docs", "--disable-stubdom", "--disable-xen",
    "--disable-qemu-traditional", "--with-system-qemu=/usr/bin/qemu-system-i386", "--disable-ocamltools",
    "--disable-golang", "--disable-pygrub", "--disable-seabios", "--disable-rombios", "--disable-ipxe",
    "--disable-xsmpolicy", "PYTHON=/usr/bin/python3",
]
ARM64_PKGCONFIG = "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig"


# What of xen/ the toolstack does not read (tools/ Makefiles: it takes xen/include,
# xen/common/libelf, xen/lib, xen/arch/x86/include, xen/drivers/vpci/vpci.c, the flask
# policy and xen/Makefile's version): a hypervisor edit there leaves the toolstack's key alone.
HYPERVISOR_ONLY = re.compile(r"^xen/(arch/(?!x86/include/)|common/(?!libelf/)|drivers/(?!vpci/)|crypto/|test/"
                             r"|xsm/(?!flask/policy/)|Kconfig|Rules\.mk|build\.mk)")


def tools_key(b, tree: Entry) -> str:
    """The toolstack's source input: for a local tree the digest of what tools/ reads
    (not the whole tree, so editing the hypervisor does not rebuild xl); for a pristine
    or patched tree its entry's key."""
    if not is_local(b):
        return tree.key
    root = tree.path / "tree"
    listing = json.loads((tree.path / "tree.files.json").read_text())    # what sync_tree put there
    files = [f for f in listing if not HYPERVISOR_ONLY.match(f)]
    return "tools-view:" + sources.view_digest(root, files, stat_cache(b))


def tools(b) -> Entry:
    """xl, libxl, xenstored, xenconsoled, init-dom0less... cross-built for arm64 (dist/install)."""
    def make():
        tree = source_tree(b)
        inputs = {"recipe_version": TOOLS_RECIPE, "source_tree": tools_key(b, tree), "configure": TOOLS_CONFIGURE,
                  "toolchain": b.toolchain}

        def build(out: Path, log: Path):
            work = out / "work"
            shutil.copytree(tree / "tree", work, symlinks=True, ignore=shutil.ignore_patterns(".git"))
            bindir = out / "bin"
            bindir.mkdir()
            wrapper = bindir / f"{CROSS}pkg-config"
            wrapper.write_text(f"#!/bin/sh\nPKG_CONFIG_LIBDIR={ARM64_PKGCONFIG} exec pkg-config \"$@\"\n")
            wrapper.chmod(0o755)
            env = {"PATH": f"{bindir}:{os.environ['PATH']}", "PKG_CONFIG": str(wrapper),
                   **ARCH}
            run("configure", ["./configure", *TOOLS_CONFIGURE], log, cwd=work, env=env)
            run("build-tools", ["make", f"-j{b.options.jobs}", "build-tools"], log, cwd=work, env=env, timeout=2400)
            run("dist-tools", ["make", f"-j{b.options.jobs}", "dist-tools"], log, cwd=work, env=env, timeout=2400)
            shutil.move(str(work / "dist/install"), out / "install")
            shutil.rmtree(work)
            shutil.rmtree(bindir)
            strip_tree(out / "install", log)
        return b.step("xen toolstack (arm64)", "xen-tools", inputs, build)
    return b.memo("xen-tools", make)


def strip_tree(root: Path, log: Path) -> None:
    """Strip arm64 ELF files (debug info makes the dom0 initramfs several times larger)."""
    elves = elf_files(root)
    if elves:
        run("strip", [CROSS + "strip", "--strip-unneeded", *map(str, elves)], log)
