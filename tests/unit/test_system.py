"""System driver helpers that need no QEMU: module placement and shell output parsing."""

import pytest

from harness.data.board import load_board
from harness.errors import HarnessError
from harness.data.board import MODULES_FROM
from harness.plan.plan import place_modules
from harness.machine.system import _dom0less_lines, _strip_echo


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
    assert _strip_echo(text) == "a\nb"
    assert _strip_echo("ls; echo \"<<rc=$?:3>>\"") == ""
    # a Xen console line that landed inside the echo (seen: "(XEN) scmi: Free domain 2")
    split = 'echo dom0 runs; echo "<<rc=$?:10(XEN) scmi: Free domain 2\n>>"\ndom0 runs\n'
    assert _strip_echo(split) == "dom0 runs"
    split = 'echo dom0 runs; echo "<<rc=(XEN) d3v0 Unhandled SMC/HVC: 0x84000050\n$?:9>>"\ndom0 runs\n'
    assert _strip_echo(split) == "dom0 runs"
    late = 'echo dom0 runs; echo "<<rc=$?:4>>"\n(XEN) scmi: Free domain 2\ndom0 runs\n'
    assert _strip_echo(late) == "dom0 runs", "Xen's own lines are no command output"
    inside = 'echo dom0 runs; echo "<<rc=$?:7>(XEN) scmi: Free domain 1\n>"\ndom0 runs\n'
    assert _strip_echo(inside) == "dom0 runs", "between the two '>' of the marker too"


def test_alignment_never_moves_a_module_onto_the_carveout(tmp_path):
    import dataclasses
    b = dataclasses.replace(load_board("qemu-virt"), shmem_base=0x49ff0000)    # above the modules' start
    # the first module ends 0x10 past 0x49c00000: the next one, 3 MiB, clear of the carve-out
    # where it would start but aligned up to 0x49e00000, would run over 0x49ff0000
    first = 0x49c00010 - (b.ram_base + MODULES_FROM)
    mods = place_modules(b, files(tmp_path, first, 3 << 20))
    assert mods[1].addr == 0x4a000000


def test_bl33_must_fit_the_room_the_carveout_check_leaves(tmp_path):
    import struct
    from harness.data.board import BL33_ROOM
    from harness.plan.plan import check_bl33
    image = tmp_path / "xen"
    head = bytearray(64)
    head[56:60] = b"ARM\x64"
    struct.pack_into("<Q", head, 16, 0x14c000)                   # Xen: file 1 MiB, 1.3 MiB with BSS
    image.write_bytes(bytes(head) + b"\0" * (1 << 20))
    check_bl33(image)
    struct.pack_into("<Q", head, 16, BL33_ROOM + 0x1000)         # BSS past the room
    image.write_bytes(bytes(head))
    with pytest.raises(HarnessError, match=r"xen: BL33 image needs 0x4001000 bytes at 0x40200000"):
        check_bl33(image)


def test_shell_commands_quote_guest_names_and_paths(tmp_path):
    """A name or path reaches dom0's shell as one word, whatever it holds: the scenario
    loader rejects such names, tests may still build Guests of their own."""
    import shlex
    from types import SimpleNamespace
    from harness.machine.system import BootSpec, Guest, System
    name = "x; reboot $(id)"
    machine = SimpleNamespace(board=load_board("qemu-virt"), workdir=tmp_path,
                              uart1=SimpleNamespace(mark=lambda: 0))
    s = System(machine, BootSpec("t"))
    sent = []
    s.shell = lambda command, **kw: (sent.append(command), ("7", 0))[1]
    s.xl_create(Guest(name))
    s.domid(name)
    s.guest_log(name)
    with pytest.raises(AssertionError, match="never printed"):
        s.wait_guest(name, "login: $(id)", timeout=1)
    words = [w for c in sent for w in shlex.split(c)]
    for word in (f"/guests/{name}.dtb", f"/guests/{name}.dtb.b64", f"/guests/{name}.cfg",
                 name, f"/var/log/xen/console/guest-{name}.log", "login: $(id)"):
        assert word in words, (word, sent)
    assert not [c for c in sent if "reboot" in c.replace(f"{name}", "")], sent
    assert "xl create '/guests/x; reboot $(id).cfg'" in sent


def test_a_dom0less_guests_line_after_dom0s_prompt_is_its_own():
    text = "(XEN) DOM1: HARNESS: domU init\r\ndom0# \x1b[6n(XEN) DOM1: HARNESS: domU ready\n(XEN) DOM2: other\n"
    assert _dom0less_lines(text, 1) == "HARNESS: domU init\nHARNESS: domU ready"
