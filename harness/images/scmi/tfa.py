"""Install our SCMI server into an extracted TF-A 2.12.1 tree (PLAT=qemu).

``install_server(tree, board)`` copies images/tf-a/scmi-server and the
board's generated tables to plat/qemu/common/scmi_server, then edits three
plat/qemu files with small anchored substitutions: hook our makefile (SiP
SMC service + sources), map the SMT carve-out in BL31, and move the console
to UART1 (the secure UART, QEMU's second -serial). Every anchor must match
exactly once or a HarnessError names the file and the missing text.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ...data.board import Board
from ...errors import HarnessError
from .tables import render_tables

SERVER_DIR = Path(__file__).resolve().parents[3] / "images" / "tf-a" / "scmi-server"
DEST = Path("plat/qemu/common/scmi_server")   # inside the TF-A tree
MARK = "xen-scmi-harness"

# The build needs no extra make variables: everything is wired through
# platform.mk. Kept as a list so callers can always append it.
EXTRA_MAKE_VARS: list[str] = []


SOURCES_MK = SERVER_DIR / "sources.mk"


def portable_sources() -> list[str]:
    """The server's .c files shared by the TF-A and the host builds: the one list in
    sources.mk (SCMI_SERVER_SOURCES), which tfa/scmi_server.mk includes for BL31."""
    m = re.search(r"(?m)^SCMI_SERVER_SOURCES\s*:=((?:[^\n]*\\\n)*[^\n]*)", SOURCES_MK.read_text())
    names = re.findall(r"[\w.-]+\.c\b", m.group(1)) if m else []
    if not names:
        raise HarnessError("no SCMI_SERVER_SOURCES list", where=str(SOURCES_MK),
                           fix="list the server's .c files in SCMI_SERVER_SOURCES := ...")
    missing = [n for n in names if not (SERVER_DIR / n).is_file()]
    if missing:
        raise HarnessError(f"lists missing sources {missing}", where=str(SOURCES_MK),
                           fix="keep SCMI_SERVER_SOURCES in step with the files")
    return names


def _server_files() -> list[Path]:
    skip = {"__pycache__"}
    return sorted(p for p in SERVER_DIR.rglob("*")
                  if p.is_file() and not skip.intersection(p.relative_to(SERVER_DIR).parts)
                  and p.suffix not in (".o", ".pyc"))


def server_fingerprint(board: Board) -> str:
    """sha256 over every server source, the board's tables and this recipe."""
    h = hashlib.sha256()

    def add(name: str, data: bytes) -> None:
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)

    for path in _server_files():
        add("src/" + path.relative_to(SERVER_DIR).as_posix(), path.read_bytes())
    for name, text in sorted(render_tables(board).items()):
        add("gen/" + name, text.encode())
    add("recipe/tfa.py", Path(__file__).read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Edit:
    """Replace the one match of ``pattern`` (a regex) in ``path`` by ``repl``."""
    path: str
    pattern: str
    repl: str
    why: str


EDITS = (
    Edit("plat/qemu/qemu/platform.mk",
         r"(?m)^include plat/qemu/common/common\.mk\n",
         "include plat/qemu/common/common.mk\n\n"
         f"# {MARK}: multi-agent SCMI server (SiP SMC service + sources)\n"
         f"include {DEST.as_posix()}/tfa/scmi_server.mk\n",
         "hook the server's makefile after PLAT_INCLUDES is set"),
    Edit("plat/qemu/qemu/include/platform_def.h",
         r"(?m)^#define PLAT_QEMU_BOOT_UART_BASE[ \t]+UART0_BASE[ \t]*$",
         f"#define PLAT_QEMU_BOOT_UART_BASE\tUART1_BASE /* {MARK}: secure UART */",
         "move the TF-A console and the SCMI trace to UART1"),
    Edit("plat/qemu/qemu/include/platform_def.h",
         r"(?m)^#define PLAT_QEMU_BOOT_UART_CLK_IN_HZ[ \t]+UART0_CLK_IN_HZ[ \t]*$",
         f"#define PLAT_QEMU_BOOT_UART_CLK_IN_HZ\tUART1_CLK_IN_HZ /* {MARK} */",
         "UART1's clock goes with UART1"),
    Edit("plat/qemu/qemu/include/platform_def.h",
         r"(?m)^#define MAX_MMAP_REGIONS[ \t]+\(13 \+ MAX_MMAP_REGIONS_SPMC\)[ \t]*$",
         f"#define MAX_MMAP_REGIONS\t\t(14 + MAX_MMAP_REGIONS_SPMC) /* {MARK}: +carve-out */",
         "room for the carve-out region"),
    Edit("plat/qemu/qemu/include/platform_def.h",
         r"(?m)^#define MAX_XLAT_TABLES[ \t]+\(6 \+ MAX_XLAT_TABLES_SPMC\)[ \t]*$",
         f"#define MAX_XLAT_TABLES\t\t\t(8 + MAX_XLAT_TABLES_SPMC) /* {MARK}: +carve-out */",
         "the carve-out sits in DRAM's 1 GiB block and needs L2+L3 tables"),
    Edit("plat/qemu/common/qemu_common.c",
         r'(?m)^#include "qemu_private.h"\n',
         f'#include "qemu_private.h"\n#include "scmi_board.h" /* {MARK} */\n',
         "carve-out base and size from the generated board header"),
    Edit("plat/qemu/common/qemu_common.c",
         r"(?m)^#ifdef IMAGE_BL31\nstatic const mmap_region_t plat_qemu_mmap\[\] = \{\n",
         "#ifdef IMAGE_BL31\nstatic const mmap_region_t plat_qemu_mmap[] = {\n"
         f"\t/* {MARK}: SMT carve-out, non-secure and uncached like the agents' mappings */\n"
         "\tMAP_REGION_FLAT(SCMI_BOARD_SHMEM_BASE, SCMI_BOARD_SHMEM_SIZE,\n"
         "\t\t\tMT_DEVICE | MT_RW | MT_NS),\n",
         "map the carve-out in BL31"),
)


def _apply(tree: Path, edit: Edit) -> None:
    path = tree / edit.path
    if not path.is_file():
        raise HarnessError(f"missing file needed to {edit.why}", where=str(path),
                           fix="give install_server an extracted TF-A 2.12.1 source tree")
    text = path.read_text()
    matches = list(re.finditer(edit.pattern, text))
    if len(matches) != 1:
        raise HarnessError(f"anchor text for '{edit.why}' found {len(matches)} times, expected once "
                           f"(pattern {edit.pattern!r})", where=str(path),
                           fix="use a pristine TF-A 2.12.1 tree, or update EDITS in harness/images/scmi/tfa.py "
                               "for the new TF-A version")
    m = matches[0]
    path.write_text(text[:m.start()] + edit.repl + text[m.end():])


def install_server(tfa_tree: Path, board: Board) -> list[str]:
    """Copy the server and the board tables into tfa_tree and hook them into
    plat/qemu. Returns extra make variables for the build (none today)."""
    tfa_tree = Path(tfa_tree)
    if not (tfa_tree / "plat" / "qemu").is_dir():
        raise HarnessError("not a TF-A source tree (no plat/qemu)", where=str(tfa_tree),
                           fix="pass the directory the TF-A 2.12.1 tarball was extracted to")
    dest = tfa_tree / DEST
    if dest.exists():
        raise HarnessError("the SCMI server is already installed in this tree", where=str(dest),
                           fix="install into a freshly extracted TF-A tree")
    tables = render_tables(board)   # validate the board before touching the tree
    # check every anchor first, so a mismatch leaves the tree untouched
    for edit in EDITS:
        path = tfa_tree / edit.path
        if not path.is_file() or len(re.findall(edit.pattern, path.read_text())) != 1:
            _apply(tfa_tree, edit)  # raises with the details
    shutil.copytree(SERVER_DIR, dest, ignore=shutil.ignore_patterns("host", "__pycache__", "*.o"))
    for name, text in tables.items():
        (dest / name).write_text(text)
    for edit in EDITS:
        _apply(tfa_tree, edit)
    return list(EXTRA_MAKE_VARS)
