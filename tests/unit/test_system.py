"""System driver helpers that need no QEMU: module placement and shell output parsing."""

import pytest

from harness.board import load_board
from harness.errors import HarnessError
from harness.system import _strip_echo, place_modules


def files(tmp_path, *sizes):
    out = []
    for i, size in enumerate(sizes):
        p = tmp_path / f"m{i}"
        with open(p, "wb") as f:
            f.truncate(size)
        out.append(p)
    return out


def test_modules_are_aligned_and_clear_of_the_carveout(tmp_path):
    b = load_board("qemu-virt")
    mods = place_modules(b, files(tmp_path, 37 << 20, 76 << 20, 5))
    for m in mods:
        assert m.addr % 0x200000 == 0
        assert m.addr + m.size <= b.shmem_base or m.addr >= b.shmem_base + b.shmem_size
    for a, c in zip(mods, mods[1:]):
        assert a.addr + a.size <= c.addr


def test_modules_that_do_not_fit_name_the_board_field(tmp_path):
    b = load_board("qemu-virt")
    with pytest.raises(HarnessError, match="qemu.memory_mib"):
        place_modules(b, files(tmp_path, 3 << 30))


def test_shell_output_drops_the_echo():
    text = "junk (type 'CTRL-a')\r\nls; echo \"<<rc=$?:3>>\"\r\na\r\nb\r\n"
    assert _strip_echo(text, "<<rc=$?:3>>") == "a\nb"
    assert _strip_echo("ls; echo \"<<rc=$?:3>>\"", "<<rc=$?:3>>") == ""
