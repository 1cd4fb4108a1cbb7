"""Xen: the SUT's (patched) source tree, hypervisor variants from Kconfig fragments, the
toolstack, and the check that the SUT's binding profile fits the tree it names."""
from __future__ import annotations

import os
import re
import shutil
import tomllib
from functools import lru_cache
from pathlib import Path

from .. import patches, sources
from ..cache import Entry
from ..errors import HarnessError
from ..shell import output, run
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


def source_tree(b) -> Entry:
    """The SUT's extracted Xen tree, with its patch series applied (git am) when it has one."""
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

        def build(out: Path, log: Path):
            src, obj = tree / "tree/xen", out / "build"
            make_args = ["make", "-C", str(src), f"O={obj}", *(f"{k}={v}" for k, v in ARCH.items())]
            run("defconfig", make_args + ["defconfig"], log)
            wanted: dict[str, str] = {}
            with open(obj / ".config", "a") as cfg:
                for name, text in fragments.items():
                    cfg.write(f"\n# --- fragment {name}\n{text}\n")
                    wanted.update(parse_config(text))
            run("olddefconfig", make_args + ["olddefconfig"], log)
            final = parse_config((obj / ".config").read_text())
            for opt, val in wanted.items():
                if final.get(opt, "n") != val:
                    raise HarnessError(f"{opt}={val} did not survive olddefconfig (got {final.get(opt, 'unset')}): "
                                       f"this Xen source ({b.sut.describe()}) does not offer it",
                                       where=f"images/xen/{variant}", field=opt,
                                       fix="use a SUT whose tree has this option (harness sut list), a patch "
                                       "series that adds it, or a variant without it")
            run("build", make_args + [f"-j{b.options.jobs}"], log, timeout=1800)
            for f in ("xen", "xen-syms", ".config"):
                shutil.copy2(obj / f, out / ("xen.config" if f == ".config" else f))
            shutil.rmtree(obj)
            version = output(["make", "-s", "-C", str(src), "xenversion"]).strip()
            return {"variant": variant, "xen_version": version,
                    "config": {k: v for k, v in final.items() if "SCMI" in k or "SCI" in k or k == "CONFIG_DEBUG"}}
        return b.step(f"xen hypervisor ({variant})", "xen", inputs, build)
    return b.memo(f"xen-{variant}", make)


def check_profile(b, entry: Entry) -> None:
    """The SUT's binding profile fits its tree: the hypervisor built for the profile's
    variant has the profile's Kconfig option, and xen/arch/arm parses the profile's DT
    binding (its marker strings). A v10 tree run with the v5 profile stops here, naming
    the profile whose markers the tree does have, instead of booting a Xen that ignores
    its configuration."""
    from ..profiles import PROFILES
    sut, prof = b.sut, b.sut.profile
    where = f"{sut.origin} [{sut.name}]"
    if not has_option(entry, prof.kconfig):
        raise HarnessError(f"SUT {sut.name}: the built Xen has no {prof.kconfig}, which profile {prof.name} needs",
                           where=where, field="profile",
                           fix="pick the profile of this tree, or a tree that has the driver")
    text = arm_sources(source_tree(b) / "tree")
    missing = [m for m in prof.source_markers if m not in text]
    if missing:
        fits = [p.name for p in PROFILES.values() if p.source_markers and p.kconfig == prof.kconfig
                and all(m in text for m in p.source_markers)]
        raise HarnessError(f"SUT {sut.name}: profile {prof.name} does not fit its tree: xen/arch/arm never "
                           f"mentions {', '.join(repr(m) for m in missing)}, so Xen would ignore the "
                           f"configuration the harness composes", where=where, field="profile",
                           fix=f"set profile = {fits[0]!r} (its binding is what this tree parses)" if fits else
                           "use a profile whose binding this tree parses (harness/profiles.py)")


@lru_cache(maxsize=8)
def arm_sources(tree: Path) -> str:
    """The C sources Xen parses its Arm DT bindings and options in."""
    return "\n".join(p.read_text(errors="replace") for p in sorted((tree / "xen/arch/arm").rglob("*.c")))


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


def tools(b) -> Entry:
    """xl, libxl, xenstored, xenconsoled, init-dom0less... cross-built for arm64 (dist/install)."""
    def make():
        tree = source_tree(b)
        inputs = {"recipe_version": TOOLS_RECIPE, "source_tree": tree.key, "configure": TOOLS_CONFIGURE,
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
