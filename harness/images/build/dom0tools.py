"""Our own dom0 programs (images/dom0-tools/*.c), cross-built for arm64 against the
toolstack's headers and libraries and put into dom0's rootfs under /usr/sbin.

xen-assign-dt calls XEN_DOMCTL_assign_device for a DT device through libxenctrl: on a
host without an IOMMU libxl refuses `dtdev` before any domctl, so this is how the boot
tests reach the hypervisor's SCI assign path (tests/boot/test_assign_domctl.py).
"""
from __future__ import annotations

import re
from pathlib import Path

from ..cache import Entry, file_digest
from ..shell import run
from . import CROSS, IMAGES
from .xen import strip_tree, tools

DOM0_TOOLS_RECIPE = 1
DOM0_TOOLS_DIR = IMAGES / "dom0-tools"
PROGRAMS = {"xen-assign-dt": ["xenctrl"]}     # program (its .c) -> the toolstack libraries it links
ASSIGN_TOOL = "xen-assign-dt"
ASSIGN_RESULT = re.compile(r"XEN-ASSIGN-DT: domid=(\d+) path=(\S+) rc=(-?\d+) errno=(\d+) name=(\S+)")  # its one line
CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"]


def dom0_tools(b) -> Entry:
    """The cache entry: install/usr/sbin/<program> for each of PROGRAMS."""
    def make():
        toolstack = tools(b)
        inputs = {"recipe_version": DOM0_TOOLS_RECIPE, "toolstack": toolstack.key, "cflags": CFLAGS,
                  "programs": PROGRAMS, "toolchain": b.toolchain,
                  "sources": {n: file_digest(DOM0_TOOLS_DIR / f"{n}.c") for n in PROGRAMS}}

        def build(out: Path, log: Path):
            usr = toolstack / "install/usr"
            sbin = out / "install/usr/sbin"
            sbin.mkdir(parents=True)
            for name, libs in PROGRAMS.items():
                run(f"compile {name}", [CROSS + "gcc", *CFLAGS, "-I", str(usr / "include"), "-L", str(usr / "lib"),
                                        f"-Wl,-rpath-link,{usr / 'lib'}", "-o", str(sbin / name),
                                        str(DOM0_TOOLS_DIR / f"{name}.c"), *(f"-l{lib}" for lib in libs)], log)
            strip_tree(out / "install", log)
            return {"programs": sorted(PROGRAMS)}
        return b.step("dom0 tools (" + ", ".join(PROGRAMS) + ")", "dom0-tools", inputs, build)
    return b.memo("dom0-tools", make)
