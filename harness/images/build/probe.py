"""scmi-probe: a tiny bare-metal domU (images/scmi-probe/) that sends raw SCMI Base
messages on an SMC function id and prints one line per message on Xen's vpl011.

Built with the host cross compiler into a flat arm64 Image (scmi-probe.bin) plus its
ELF (scmi-probe.elf, for gdb). Every build is checked: the Image magic Xen's loader
looks for, and no relocation that depends on the load address. This module also
composes probe bootargs and parses probe output, so tests need not know the grammar.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import Entry
from ...errors import HarnessError
from ..shell import output, run
from . import CROSS, IMAGES

PROBE_RECIPE = 1
PROBE_DIR = IMAGES / "scmi-probe"
PORTABLE_SOURCES = ["fdt.c", "args.c", "smt.c", "probe.c"]      # shared with the host build
GUEST_SOURCES = ["start.S", *PORTABLE_SOURCES, "port_guest.c"]
GUEST_INPUTS = [*GUEST_SOURCES, "probe.h", "probe.ld"]         # what the cache key hashes
LOAD_ADDRESS = 0x40000000   # GUEST_RAM0_BASE + text_offset 0 (xen/arch/arm/kernel.c)
IMAGE_MAGIC = b"ARM\x64"    # at 0x38 of an arm64 Image
MAX_IMAGE_SIZE = 2 << 20    # Xen puts the DTB at or above the next 2 MiB boundary after the file

CFLAGS = [
    "-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
    "-ffreestanding", "-nostdlib", "-mgeneral-regs-only",
    "-mstrict-align",                 # MMU off: data is Device memory, unaligned accesses fault
    "-fno-pic", "-fno-pie", "-mcmodel=small",   # adrp/add: PC-relative, and no GOT to relocate
    "-fno-stack-protector", "-fno-tree-loop-distribute-patterns",
    "-fno-asynchronous-unwind-tables", "-mbranch-protection=none",
]
LDFLAGS = ["-static", "-no-pie", "-Wl,--emit-relocs", "-Wl,--build-id=none",
           "-Wl,--no-warn-rwx-segments"]
HOST_CFLAGS = ["-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
               "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]

# Relocation types whose result does not depend on where the image is loaded (as long
# as it is 4 KiB aligned: the *_LO12 ones are offsets within a page that adrp found).
PC_RELATIVE = {
    "R_AARCH64_CALL26", "R_AARCH64_JUMP26", "R_AARCH64_CONDBR19", "R_AARCH64_TSTBR14",
    "R_AARCH64_ADR_PREL_LO21", "R_AARCH64_ADR_PREL_PG_HI21", "R_AARCH64_ADR_PREL_PG_HI21_NC",
    "R_AARCH64_ADD_ABS_LO12_NC", "R_AARCH64_LDST8_ABS_LO12_NC", "R_AARCH64_LDST16_ABS_LO12_NC",
    "R_AARCH64_LDST32_ABS_LO12_NC", "R_AARCH64_LDST64_ABS_LO12_NC", "R_AARCH64_LDST128_ABS_LO12_NC",
    "R_AARCH64_PREL16", "R_AARCH64_PREL32", "R_AARCH64_PREL64", "R_AARCH64_LD_PREL_LO19",
}


def sources_fingerprint() -> str:
    """sha256 over the guest's sources and linker script."""
    h = hashlib.sha256()
    for name in GUEST_INPUTS:
        data = (PROBE_DIR / name).read_bytes()
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def compile_guest(out: Path, log: Path) -> tuple[Path, Path]:
    """Build scmi-probe.elf and scmi-probe.bin into out; check both; return (elf, bin)."""
    elf, binary = out / "scmi-probe.elf", out / "scmi-probe.bin"
    srcs = [str(PROBE_DIR / s) for s in GUEST_SOURCES]
    run("compile scmi-probe", [CROSS + "gcc", *CFLAGS, *LDFLAGS, "-T", str(PROBE_DIR / "probe.ld"),
                               "-o", str(elf), *srcs], log)
    run("objcopy scmi-probe", [CROSS + "objcopy", "-O", "binary", str(elf), str(binary)], log)
    check_image(binary)
    bad = load_dependent_relocations(elf)
    if bad:
        raise HarnessError("scmi-probe has relocations that depend on its load address: "
                           + ", ".join(f"{t} -> {s}" for t, s in bad[:8]), where=str(elf),
                           fix="keep pointers out of initialised data (images/scmi-probe/probe.h)")
    return elf, binary


def check_image(path: Path) -> dict:
    """The arm64 Image header fields Xen and Linux's booting.rst care about."""
    data = path.read_bytes()
    if len(data) < 64 or data[0x38:0x3C] != IMAGE_MAGIC:
        raise HarnessError("no arm64 Image magic at offset 0x38", where=str(path),
                           fix="start.S must begin with the Image header")
    text_offset, image_size, flags = struct.unpack_from("<QQQ", data, 8)
    if text_offset != 0 or not len(data) <= image_size <= MAX_IMAGE_SIZE:
        raise HarnessError(f"bad Image header: text_offset={text_offset:#x} image_size={image_size:#x} "
                           f"for a {len(data)}-byte file", where=str(path),
                           fix="text_offset must be 0 and image_size cover the file, below 2 MiB")
    return {"text_offset": text_offset, "image_size": image_size, "flags": flags, "file_size": len(data)}


def load_dependent_relocations(elf: Path) -> list[tuple[str, str]]:
    """(type, symbol) of every relocation kept by --emit-relocs in an allocated section whose
    value would change if the image moved: anything not PC-relative, unless its symbol is
    an absolute number (the Image header's _image_size)."""
    absolute = set()
    for line in output([CROSS + "readelf", "-sW", str(elf)]).splitlines():
        cols = line.split()
        if len(cols) >= 8 and cols[6] == "ABS":
            absolute.add(cols[7])
    bad, section = [], ""
    for line in output([CROSS + "readelf", "-rW", str(elf)]).splitlines():
        m = re.match(r"Relocation section '([^']+)'", line)
        if m:
            section = m.group(1)
            continue
        cols = line.split()
        if ".debug" in section or len(cols) < 3 or not cols[2].startswith("R_AARCH64_"):
            continue
        rtype, sym = cols[2], (cols[4] if len(cols) >= 5 else "")
        if rtype not in PC_RELATIVE and sym not in absolute:
            bad.append((rtype, sym))
    return bad


def build_host(out: Path, cc: str = "gcc") -> Path:
    """The portable code + host/host_main.c, natively with ASan/UBSan, for unit tests."""
    if shutil.which(cc) is None:
        raise HarnessError(f"C compiler {cc!r} not found", where="PATH", fix="apt-get install gcc")
    out.mkdir(parents=True, exist_ok=True)
    binary = out / "scmi-probe-host"
    srcs = [str(PROBE_DIR / s) for s in PORTABLE_SOURCES] + [str(PROBE_DIR / "host" / "host_main.c")]
    run("host build of scmi-probe", [cc, *HOST_CFLAGS, "-o", str(binary), *srcs], out / "build.log")
    return binary


def probe(b) -> Entry:
    """The cache entry: scmi-probe.bin (the Image Xen loads) and scmi-probe.elf."""
    def make():
        inputs = {"recipe_version": PROBE_RECIPE, "sources": sources_fingerprint(),
                  "cflags": CFLAGS, "ldflags": LDFLAGS, "toolchain": b.toolchain}

        def build(out: Path, log: Path):
            _, binary = compile_guest(out, log)
            return {"image": check_image(binary), "load_address": f"{LOAD_ADDRESS:#x}"}
        return b.step("scmi-probe", "scmi-probe", inputs, build)
    return b.memo("scmi-probe", make)


# --- bootargs and output (grammar: images/scmi-probe/README.md) ------------------

# op name -> (message id, fewest args, most args); "raw" takes proto:msg[:word...]
OPS = {"version": (0x0, 0, 0), "attrs": (0x1, 0, 0), "msgattrs": (0x2, 1, 1),
       "discover": (0x7, 0, 1), "setperm": (0x9, 3, 3), "protoperm": (0xA, 4, 4),
       "reset": (0xB, 1, 2), "raw": (None, 2, 10)}
MAX_OPS = 16
SELF = 0xFFFFFFFF     # DISCOVER_AGENT: the caller


def op(name: str, *args: int) -> str:
    """One op= value, checked like the probe checks it: op("setperm", 2, 3, 1)."""
    if name not in OPS:
        raise HarnessError(f"unknown scmi-probe op {name!r}", field="op", fix=f"use one of {', '.join(OPS)}")
    _, lo, hi = OPS[name]
    if not lo <= len(args) <= hi or any(not 0 <= a <= 0xFFFFFFFF for a in args):
        raise HarnessError(f"op {name} takes {lo}..{hi} numbers of 32 bits, got {args}", field="op")
    return ":".join([name, *(f"{a:#x}" for a in args)])


def bootargs(smc: int, ops: list[str], shmem: int | None = None, power_off: bool = True) -> str:
    """The probe's /chosen/bootargs: bootargs(0x82000004, [op("attrs"), op("reset", 3)])."""
    if len(ops) > MAX_OPS:
        raise HarnessError(f"{len(ops)} ops, the probe takes at most {MAX_OPS}", field="ops")
    words = [f"smc={smc:#x}"]
    if shmem is not None:
        words.append(f"shmem={shmem:#x}")
    words += [f"op={o}" for o in ops]
    if not power_off:
        words.append("end=wfi")
    return " ".join(words)


PREFIX = "SCMI-PROBE: "
_NUMERIC = {"proto", "msg", "x0", "chan", "status", "agent", "hdr", "smc", "shmem", "ops", "len",
            "vector", "esr", "far", "elr", "fdt", "own_shmem"}


@dataclass
class ProbeLine:
    """One probe line: kind is op, start, done, error, ignored or exception."""
    kind: str
    fields: dict[str, object] = field(default_factory=dict)
    status_name: str | None = None     # op lines with a reply: SUCCESS, DENIED, ...
    data: list[int] = field(default_factory=list)
    text: str = ""

    def __getitem__(self, key: str):
        return self.fields[key]

    def get(self, key: str, default=None):
        return self.fields.get(key, default)


def parse_line(line: str) -> ProbeLine | None:
    """Parse a probe line anywhere in a console line (Xen prefixes 'DOM1: ' or '(d1) ')."""
    at = line.find(PREFIX)
    if at < 0:
        return None
    text = line[at + len(PREFIX):].strip()
    toks = text.split()
    if not toks:
        return None
    first = toks[0]
    kind = first.split("=", 1)[0] if "=" in first else first
    pl = ProbeLine(kind=kind, text=text)
    for tok in toks:
        if "=" not in tok:
            if tok != kind:
                pl.status_name = tok
            continue
        key, value = tok.split("=", 1)
        if key == "data":
            pl.data = [int(v, 0) for v in value.split(",") if v]
        elif key in _NUMERIC:
            try:
                pl.fields[key] = int(value, 0)
            except ValueError:            # smc=NOT_SUPPORTED, reply=NONE
                pl.fields[key] = value
        else:
            pl.fields[key] = value
    return pl


def parse_output(text: str) -> list[ProbeLine]:
    """Every probe line in a console log, in order."""
    return [p for p in (parse_line(line) for line in text.splitlines()) if p is not None]
