"""TF-A for qemu virt (GICv3, BL33 preloaded by QEMU's loader) with our SCMI server applied.

The flash image is bl1.bin at 0 and fip.bin at 0x40000, padded to 64 MiB (QEMU -bios).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .. import sources
from ..scmi import tfa as server   # our SCMI server: fingerprint and installer
from ..cache import Entry
from ...errors import HarnessError
from ..shell import run
from . import CROSS

TFA_RECIPE = 1
BL33_BASE = 0x40200000      # where the runner loads Xen or Linux
FIP_OFFSET = 0x40000
FLASH_SIZE = 64 << 20
MAKE_VARS = [
    "PLAT=qemu", f"CROSS_COMPILE={CROSS}", "QEMU_USE_GIC_DRIVER=QEMU_GICV3",   # BL31 hangs on GICv3 without it
    "ARM_LINUX_KERNEL_AS_BL33=1", f"PRELOADED_BL33_BASE={BL33_BASE:#x}", "DEBUG=0", "LOG_LEVEL=40",
]


def firmware(b) -> Entry:
    def make():
        inputs = {"recipe_version": TFA_RECIPE, "source": sources.fingerprint(b.tfa_spec, b.lock, b.cache),
                  "scmi_server": server.server_fingerprint(b.board), "make": MAKE_VARS, "toolchain": b.toolchain}

        def build(out: Path, log: Path):
            tree = out / "src"
            sources.extract(b.tfa_spec, b.lock, b.cache, tree)
            extra = server.install_server(tree, b.board)
            run("make", ["make", f"-j{b.options.jobs}", *MAKE_VARS, *extra, "all", "fip"], log, cwd=tree)
            rel = tree / "build/qemu/release"
            bl1, fip = rel / "bl1.bin", rel / "fip.bin"
            if fip.stat().st_size > FLASH_SIZE - FIP_OFFSET or bl1.stat().st_size > FIP_OFFSET:
                raise HarnessError("bl1.bin or fip.bin does not fit the 64 MiB flash layout",
                                   where=str(rel), fix="check the TF-A build options")
            with open(out / "flash.bin", "wb") as flash:   # sparse: mostly padding
                flash.write(bl1.read_bytes())
                flash.seek(FIP_OFFSET)
                flash.write(fip.read_bytes())
                flash.truncate(FLASH_SIZE)
            for elf in ("bl1/bl1.elf", "bl2/bl2.elf", "bl31/bl31.elf"):   # for gdb
                shutil.copy2(rel / elf, out / Path(elf).name)
            shutil.rmtree(tree)
            return {"source": b.tfa_spec.describe(), "make": MAKE_VARS + list(extra)}
        return b.step("tf-a + scmi server", "tf-a", inputs, build)
    return b.memo("tf-a", make)
