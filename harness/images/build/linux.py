"""Linux for dom0 and domUs: Debian's prebuilt arm64 kernel, unpacked (never installed),
with the modules the rootfs lists in images/linux/modules.txt (dependencies resolved,
decompressed so busybox insmod can load them)."""
from __future__ import annotations

import lzma
import re
import shutil
from pathlib import Path

from ..cache import Entry
from ...errors import HarnessError
from ..shell import run
from . import IMAGES

KERNEL_RECIPE = 1
MODULES_LIST = IMAGES / "linux" / "modules.txt"


def module_sets() -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {}
    for n, line in enumerate(MODULES_LIST.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, mods = line.partition(":")
        if not sep:
            raise HarnessError(f"line {n} is not 'rootfs: module ...'", where=str(MODULES_LIST),
                               field=f"line {n}", fix="write e.g. 'dom0: xenfs xen-evtchn'")
        sets[name.strip()] = mods.split()
    return sets


def _depends(ko: bytes) -> list[str]:
    m = re.search(rb"\0depends=([^\0]*)\0", ko)
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def kernel(b) -> Entry:
    """Image, config and the selected modules (<out>/modules/<name>.ko plus load order files)."""
    def make():
        deb = b.lock["kernel"]
        inputs = {"recipe_version": KERNEL_RECIPE, "deb": deb.sha256, "modules": module_sets()}

        def build(out: Path, log: Path):
            x = out / "x"
            run("unpack", ["dpkg-deb", "-x", str(b.cache.download(deb)), str(x)], log)
            images = sorted((x / "boot").glob("vmlinuz-*"))
            if not images:
                raise HarnessError("no boot/vmlinuz-* in the package", where=str(b.lock.path),
                                   field="kernel.package", fix="pin a linux-image-*-arm64 package")
            kver = images[0].name[len("vmlinuz-"):]
            shutil.move(str(images[0]), out / "Image")
            shutil.move(str(x / "boot" / f"config-{kver}"), out / "config")
            modroot = next(p for p in (x / "usr/lib/modules" / kver, x / "lib/modules" / kver) if p.is_dir())
            by_name = {}
            for p in modroot.rglob("*.ko*"):
                by_name[p.name.split(".ko")[0].replace("_", "-")] = p
            (out / "modules").mkdir()
            for rootfs, wanted in module_sets().items():
                order: list[str] = []

                def add(name: str):
                    key = name.replace("_", "-")
                    if key in order:
                        return
                    if key not in by_name:
                        raise HarnessError(f"module {name!r} is not in {deb.describe()}", where=str(MODULES_LIST),
                                           field=rootfs, fix="remove it, or check that it is not built in (=y)")
                    data = by_name[key].read_bytes()
                    if by_name[key].name.endswith(".xz"):
                        data = lzma.decompress(data)
                    for dep in _depends(data):
                        add(dep)
                    (out / "modules" / f"{key}.ko").write_bytes(data)
                    order.append(key)
                for name in wanted:
                    add(name)
                (out / f"modules.{rootfs}").write_text("".join(f"{m}\n" for m in order))
            shutil.rmtree(x)
            return {"kernel_release": kver, "package": deb.describe()}
        return b.step("linux kernel + modules", "kernel", inputs, build)
    return b.memo("kernel", make)
