"""Root filesystems as newc cpio archives (initramfs).

domu: busybox and the overlay in images/rootfs/domu.
dom0: busybox, the Xen toolstack, our dom0 tools (dom0tools.py), dropbear (SSH server, lock [dropbear]), the arm64
libraries they link against (lock [libs.*]), the kernel modules of images/linux/modules.txt,
the overlay in images/rootfs/dom0, and the guest images (kernel + domU rootfs) under
/guests for xl. No key is in it: harness/machine/ssh.py appends them at boot as a second archive.

Every boot copies the dom0 archive (Xen) and unpacks it (Linux), so nothing goes in that
nobody runs: no glibc iconv modules, headers or static libraries (a third of the packages'
bytes), and the guest kernel gzipped (libxenguest gunzips it in xl create).
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
from pathlib import Path

from ..cache import Entry, file_digest
from ..cpio import CpioWriter
from ...errors import HarnessError
from ..lock import LOCK_PATH
from ..shell import output, run
from . import CROSS, elf_files
from . import IMAGES
from .linux import kernel
from .dom0tools import dom0_tools
from .xen import tools

ROOTFS_RECIPE = 2
GUEST_DIR = "/guests"     # where the dom0 rootfs keeps guest kernels, ramdisks and configs
GUEST_KERNEL = f"{GUEST_DIR}/Image.gz"   # gzipped: libxenguest gunzips it in xl create
# What a package or the toolstack installs that no program in the rootfs reads (fnmatch on
# the archive path): glibc's iconv modules, C headers, static and libtool libraries, docs.
LEFT_OUT = ("usr/lib/*/gconv/*", "usr/lib/*/gconv", "usr/include/*", "usr/include", "*.a", "*.la",
            "usr/share/doc/*", "usr/share/man/*", "usr/lib/pkgconfig/*", "usr/lib/*/pkgconfig/*")
OVERLAYS = IMAGES / "rootfs"
BASE_DIRS = ["dev", "proc", "sys", "tmp", "run", "root", "etc", "mnt", "var/log", "var/lib",
             "usr/bin", "usr/sbin", "usr/lib"]


def _overlay_digest(which: str) -> dict[str, str]:
    root = OVERLAYS / which
    return {str(p.relative_to(root)): file_digest(p) + oct(p.stat().st_mode & 0o111)
            for p in sorted(root.rglob("*")) if p.is_file()}


def rootfs(b, which: str) -> Entry:
    def make():
        busybox = b.lock["busybox"]
        deps: dict[str, Entry] = {"kernel": kernel(b)}
        libs, programs = [], []
        if which == "dom0":
            deps["tools"] = tools(b)
            deps["dom0-tools"] = dom0_tools(b)
            deps["domu"] = rootfs(b, "domu")
            libs = b.lock.group("libs")
            programs = [b.lock["dropbear"]]
        inputs = {"recipe_version": ROOTFS_RECIPE, "busybox": busybox.sha256,
                  "libs": {e.name: e.sha256 for e in libs},
                  "programs": {e.name: e.sha256 for e in programs}, "overlay": _overlay_digest(which),
                  "deps": {k: e.key for k, e in deps.items()}}

        def build(out: Path, log: Path):
            x = out / "x"
            cpio = CpioWriter(out / "rootfs.cpio", leave_out=LEFT_OUT)
            cpio.tree(OVERLAYS / which)    # first: the first entry of a name wins
            for d in BASE_DIRS:
                cpio.dir(d)
            for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                                 ("var/run", "/run")):
                cpio.symlink(link, target)
            cpio.chardev("dev/console", 5, 1)
            cpio.chardev("dev/null", 1, 3, 0o666)
            for deb in [busybox, *libs, *programs]:
                d = x / deb.name
                d.mkdir(parents=True)
                run(f"unpack {deb.name}", ["dpkg-deb", "-x", str(b.cache.download(deb)), str(d)], log)
                subs = ("lib", "usr/lib", "bin", "usr/bin") + (("sbin", "usr/sbin") if deb in programs else ())
                for sub in subs:
                    if (d / sub).is_dir() and not (d / sub).is_symlink():
                        # the rootfs is merged-/usr: /lib, /bin are symlinks into /usr
                        cpio.tree(d / sub, "usr/" + sub.removeprefix("usr/"))
            if "tools" in deps:
                cpio.tree(deps["tools"] / "install")
                cpio.tree(deps["dom0-tools"] / "install")
            mods = (deps["kernel"] / f"modules.{which}").read_text().split()
            for m in mods:
                cpio.file(f"lib/modules/{m}.ko", (deps["kernel"] / "modules" / f"{m}.ko").read_bytes())
            cpio.file("etc/modules.order", "".join(f"{m}\n" for m in mods).encode())
            if "domu" in deps:
                cpio.file(GUEST_KERNEL.lstrip("/"), gzip.compress((deps["kernel"] / "Image").read_bytes(), 6, mtime=0))
                cpio.file("guests/domu.cpio", (deps["domu"] / "rootfs.cpio").read_bytes())
            cpio.close()
            if "tools" in deps:
                _check_libraries([deps["tools"] / "install", deps["dom0-tools"] / "install",
                                  *(x / p.name for p in programs)],
                                 [deps["tools"] / "install", *(x / e.name for e in [*libs, *programs])])
            shutil.rmtree(x, ignore_errors=True)
            return {"which": which, "size": (out / "rootfs.cpio").stat().st_size, "left_out": cpio.left_out}
        return b.step(f"rootfs ({which})", f"rootfs-{which}", inputs, build)
    return b.memo(f"rootfs-{which}", make)


def _check_libraries(programs: list[Path], trees: list[Path]) -> None:
    """Every shared library the programs (the toolstack, dropbear) link against, and every
    library those need in turn, must be in the rootfs (found below one of `trees`)."""
    libs: dict[str, Path | None] = {}
    for tree in trees:
        for p in tree.rglob("*.so*"):
            if p.is_symlink() or p.is_file():
                libs.setdefault(p.name, _inside(p, tree))
    todo = [(elf, str(elf.relative_to(tree))) for tree in programs for elf in elf_files(tree)]
    seen: set[str] = set()
    while todo:
        elf, what = todo.pop()
        for lib in re.findall(r"\(NEEDED\).*\[(.+?)\]", output([CROSS + "readelf", "-d", str(elf)])):
            if lib in seen:
                continue
            if lib not in libs:
                raise HarnessError(f"{what} needs {lib}, which no [libs.*] entry provides",
                                   where=str(LOCK_PATH), field="libs",
                                   fix="add the bookworm arm64 package that ships it as a [libs.NAME] entry")
            seen.add(lib)
            if libs[lib]:
                todo.append((libs[lib], f"{lib} (needed by {what})"))


def _inside(p: Path, root: Path) -> Path | None:
    """p with its symlinks followed inside root (a package's absolute links point into its own
    tree, never the host's); None when the chain leaves the tree."""
    for _ in range(16):
        if not p.is_symlink():
            return p if p.is_file() else None
        target = os.readlink(p)
        p = Path(os.path.normpath(root / target.lstrip("/") if target.startswith("/") else p.parent / target))
        if not p.is_relative_to(root):
            return None
    return None
