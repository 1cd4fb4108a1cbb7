"""Issue 13 ("trust what it runs"), items 1, 2, 4 and 6, as a table of probes.

Each probe feeds the harness one bad input (a damaged cache entry, a corrupted
download, a killed build, a non-UTF-8 file, a bad cache path or mirror URL; item 4:
a wrongly typed or misspelt key of a board or scenario file, a guest name a shell
would interpret, two SCMI devices on one node, a carve-out over the DTB or Xen) and
the table says what must happen: one clear HarnessError (a regex on its message), or
a behaviour the probe reports as a short string. A traceback of any other type, or a
wrong input accepted, fails the probe. Items 1, 2, 6 before their fix: 16 probes
tried, 0 clear errors, 6 tracebacks, 10 accepted wrongly. Item 4 before its fix: 19
probes, 1 clear error (agent devices as a string), 2 tracebacks, 13 accepted wrongly,
3 errors about the wrong thing (a string taken letter by letter: "no device 'g'").
After: all 35 clear errors or right behaviour.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.run import cli
from harness.images import debian
from harness.images.cache import MANIFEST, Cache, forget_checks
from harness.errors import HarnessError
from harness.images.lock import load_lock

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = b"pristine upstream bytes"
LOCK = textwrap.dedent(f'''\
    [xen]
    kind = "source"
    suite = "trixie"
    package = "xen"
    version = "1.0-1"
    path = "pool/main/x/xen/xen_1.0.orig.tar.xz"
    sha256 = "{hashlib.sha256(PAYLOAD).hexdigest()}"
    size = {len(PAYLOAD)}
    ''')


class Ctx:
    """What a probe gets: a scratch directory, monkeypatch, and the lines the cache said."""

    def __init__(self, tmp_path: Path, monkeypatch):
        self.tmp, self.mp, self.lines = tmp_path, monkeypatch, []
        forget_checks()

    def cache(self) -> Cache:
        return Cache(self.tmp / "cache", notify=self.lines.append)

    def entry(self):
        def build(out, log):
            (out / "xen").write_bytes(b"X" * 4096)
        c = self.cache()
        e, _ = c.build("xen", {"v": 1}, build)
        forget_checks()                          # the next session
        return c, e, build

    def mirror(self) -> Path:
        pool = self.tmp / "mirror" / "pool/main/x/xen"
        pool.mkdir(parents=True)
        (pool / "xen_1.0.orig.tar.xz").write_bytes(PAYLOAD)
        self.mp.setenv(debian.MIRROR_ENV, (self.tmp / "mirror").as_uri())
        (self.tmp / "lock.toml").write_text(LOCK)
        return self.tmp / "lock.toml"


def _rebuilt(ctx, damage) -> str:
    c, e, build = ctx.entry()
    damage(e.path)
    again, built = c.build("xen", {"v": 1}, build)
    ok = built and (again / "xen").read_bytes() == b"X" * 4096 and len(ctx.lines) == 1
    return f"rebuilt: {ctx.lines[0]}" if ok else f"served as cached (built={built}, lines={ctx.lines})"


def p_truncated_entry(ctx):
    return _rebuilt(ctx, lambda p: (p / "xen").write_bytes(b"X" * 100))


def p_same_size_corrupted_entry(ctx):
    return _rebuilt(ctx, lambda p: (p / "xen").write_bytes(b"Y" * 4096))


def p_manifest_deleted(ctx):
    return _rebuilt(ctx, lambda p: (p / MANIFEST).unlink())


def p_stale_staging_dir(ctx):
    ctx.cache()
    stale = ctx.tmp / "cache" / "tmp" / "xen-0123456789abcdef01234567.999999999"
    (stale / "obj").mkdir(parents=True)
    (stale / "obj" / "big.o").write_bytes(b"\0" * 65536)
    ctx.cache()                                  # the next start
    return "removed at start" if not stale.exists() else "left behind"


def _step_processes(token: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and token.encode() in (p / "cmdline").read_bytes():
                pids.append(int(p.name))
        except OSError:
            pass
    return pids


def _wait(pred, secs=10.0) -> bool:
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def p_build_killed_with_sigkill(ctx):
    token = f"31{os.getpid() % 1000}.{time.monotonic_ns() % 10**6}"     # a unique sleep length
    script = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from pathlib import Path; "
              f"from harness.images.shell import run; "
              f"run('make', ['sh', '-c', 'sleep {token} & sh -c \"sleep {token}\"; wait'], "
              f"Path({str(ctx.tmp / 'make.log')!r}))")
    harness = subprocess.Popen([sys.executable, "-c", script])
    try:
        if not _wait(lambda: len(_step_processes(f"sleep\0{token}")) >= 2):
            return "the step never started"
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait()
        gone = _wait(lambda: not _step_processes(f"sleep\0{token}"), 5)
        return "every process of the step killed" if gone else \
            f"orphans left: {_step_processes(f'sleep{chr(0)}{token}')}"
    finally:
        for pid in _step_processes(f"sleep\0{token}"):
            os.kill(pid, signal.SIGKILL)


def p_build_step_timeout(ctx):
    from harness.images.shell import run
    token = f"32{os.getpid() % 1000}.{time.monotonic_ns() % 10**6}"
    try:
        run("make", ["sh", "-c", f"sleep {token} & sleep {token}"], ctx.tmp / "make.log", timeout=0.5)
    except HarnessError as e:
        gone = _wait(lambda: not _step_processes(f"sleep\0{token}"), 5)
        return f"failed (exit -1), {'no process left' if gone else 'orphans left'}: {str(e).splitlines()[0]}"
    return "did not time out"


def p_lock_verify_same_size_corrupted(ctx):
    lock_path = ctx.mirror()
    args = ["lock", "verify", "--lock", str(lock_path), "--cache", str(ctx.tmp / "cache")]
    cli.main(args)
    f = ctx.cache().download_path(load_lock(lock_path)["xen"])
    f.write_bytes(b"Z" * len(PAYLOAD))
    forget_checks()
    rc = cli.main(args)
    return f"rc {rc}, repaired: {f.read_bytes() == PAYLOAD}"


def p_cached_download_same_size_corrupted(ctx):
    lock = load_lock(ctx.mirror())
    c = ctx.cache()
    f = c.download(lock["xen"])
    f.write_bytes(b"Z" * len(PAYLOAD))
    forget_checks()
    ok = c.download(lock["xen"]).read_bytes() == PAYLOAD
    return f"fetched again: {ok}: {ctx.lines}"


def p_lock_verify_unknown_name(ctx):
    lock_path = ctx.mirror()
    load_lock(lock_path).select(["xne"])
    return "accepted"


def p_index_not_in_release(ctx):
    release = "Codename: trixie\nSHA256:\n " + "0" * 64 + " 5 main/source/Sources.xz\n"
    debian.check_index(release, "main/source/Sources.xz", b"other", suite="trixie", what="Debian trixie index")
    return "accepted"


def p_unsigned_release(ctx):
    if not shutil.which("gpgv") or not debian.keyring().is_file():
        pytest.skip("needs gpgv and debian-archive-keyring (scripts/setup)")
    f = ctx.tmp / "InRelease"
    f.write_text("Codename: trixie\nSHA256:\n")
    debian.verify_signature(f, what="Debian trixie Release file")
    return "accepted"


def _non_utf8(ctx, name):
    f = ctx.tmp / f"{name}.toml"
    f.write_bytes(b"# r\xe9sum\xe9 in latin-1\n[board]\nname = \"x\"\n")
    return f


def p_non_utf8_board(ctx):
    from harness.data.board import load_board
    return f"loaded: {load_board(_non_utf8(ctx, 'board'))}"


def p_non_utf8_scenario(ctx):
    from harness.plan.scenario import load_scenario
    return f"loaded: {load_scenario(_non_utf8(ctx, 'scenario'))}"


def p_cache_path_is_a_file(ctx):
    (ctx.tmp / "cachefile").write_text("")
    Cache(ctx.tmp / "cachefile")
    return "accepted"


def p_cache_unwritable(ctx):
    ro = ctx.tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    ctx.tmp.chmod(0o755)
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from harness.images.cache import Cache; "
            f"from harness.errors import HarnessError\n"
            f"try: Cache({str(ro / 'cache')!r})\nexcept HarnessError as e: print('HarnessError:', e)")
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:                        # root writes anywhere: probe as nobody
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to drop root")
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
    if "HarnessError: " in r.stdout:
        raise HarnessError(r.stdout.split("HarnessError: ", 1)[1].strip())
    return f"no clear error: rc {r.returncode} {r.stderr[-300:]}"


def p_mirror_url_without_scheme(ctx):
    lock = load_lock(ctx.mirror())
    ctx.mp.setenv(debian.MIRROR_ENV, "mirror.example/debian")
    ctx.cache().download(lock["xen"])
    return "accepted"


# --- item 4: typed inputs (board and scenario files) ------------------------------------

def _scenario(ctx, text: str, board: bool = True):
    """Load a scenario file holding text (against the default board); say what it became."""
    from harness.data.board import load_board
    from harness.plan.scenario import load_scenario
    f = ctx.tmp / "scenario.toml"
    f.write_text(text)
    sc = load_scenario(f, load_board("qemu-virt") if board else None)
    return f"accepted: {sc.spec!r}"


def p_scenario_xen_args_string(ctx):
    return _scenario(ctx, '[boot]\nxen_args = "loglvl=none"\n')


def p_scenario_dom0_scmi_string(ctx):
    return _scenario(ctx, '[boot]\ndom0_scmi = "no"\n')


def p_scenario_secondary_cells_string(ctx):
    return _scenario(ctx, '[boot]\nsecondary_cells = "2"\n')


def p_scenario_boards_string(ctx):
    return _scenario(ctx, 'boards = "qemu-virt"\n')


def p_guest_passthrough_string(ctx):
    return _scenario(ctx, '[[xl]]\nname = "domu"\nagent = "guest2"\npassthrough = "guest_dev"\n')


def p_scenario_boot_not_a_table(ctx):
    return _scenario(ctx, 'boot = "fast"\n')


def p_guest_passthrough_int(ctx):
    return _scenario(ctx, '[[dom0less]]\nname = "domu"\npassthrough = 3\n')


def p_guest_memory_mib_string(ctx):
    return _scenario(ctx, '[[xl]]\nname = "domu"\nmemory_mib = "512"\n')


def p_guest_not_a_table(ctx):
    return _scenario(ctx, 'xl = ["domu"]\n')


def p_guest_name_with_shell_syntax(ctx):
    return _scenario(ctx, '[[xl]]\nname = "domu; reboot"\n')


def p_guest_name_with_space(ctx):
    return _scenario(ctx, '[[dom0less]]\nname = "my domu"\n')


def _board(ctx, *edits, count=1):
    """Load the default board with each (old, new) text edit applied; say what it became."""
    from harness.data.board import BOARDS_DIR, load_board
    text = (BOARDS_DIR / "qemu-virt.toml").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, count)
    f = ctx.tmp / "board.toml"
    f.write_text(text)
    b = load_board(f)
    return f"accepted: smp={b.qemu.smp} devices={[(d.name, d.node) for d in b.devices]} " \
           f"agents={[(a.name, a.devices) for a in b.agents]} shmem={b.shmem_base:#x}"


def p_board_key_smpp(ctx):
    return _board(ctx, ("smp = 2", "smp = 2\nsmpp = 4"))


def p_board_key_spm(ctx):
    return _board(ctx, ("smp = 2", "spm = 2"))


def p_board_key_enable(ctx):
    return _board(ctx, ("enabled = true", "enable = true"))


def p_board_key_devicez(ctx):
    return _board(ctx, ('devices = ["uart", "rtc"]', 'devicez = ["uart", "rtc"]'))


def p_board_two_devices_one_node(ctx):
    return _board(ctx, ('node = "/pl031@9010000"', 'node = "/pl011@9000000"'))


def p_board_agent_devices_string(ctx):
    return _board(ctx, ('devices = ["uart", "rtc"]', 'devices = "uart"'))


def p_board_carveout_over_xen(ctx):
    return _board(ctx, ("0x47ff", "0x4020"), count=-1)


def p_board_carveout_over_dtb(ctx):
    return _board(ctx, ("0x47ff", "0x4000"), count=-1)


PROBES = [
    # (item, probe, expected: "error: REGEX" or a REGEX on what the probe reports)
    (1, p_truncated_entry, r"rebuilt: cache entry store/xen/\w+ is damaged \(xen is 100 bytes, recorded 4096\): rebuilding it"),
    (1, p_same_size_corrupted_entry, r"rebuilt: .*is damaged \(xen has other bytes than recorded \(sha256 differs\)\)"),
    (1, p_manifest_deleted, r"rebuilt: cache entry store/xen/\w+ has no manifest.json .*replacing it"),
    (1, p_stale_staging_dir, r"removed at start"),
    (1, p_build_killed_with_sigkill, r"every process of the step killed"),
    (1, p_build_step_timeout, r"failed \(exit -1\), no process left"),
    (2, p_lock_verify_same_size_corrupted, r"rc 1, repaired: True"),
    (2, p_cached_download_same_size_corrupted, r"fetched again: True: .*\[xen\] is damaged .*sha256"),
    (2, p_lock_verify_unknown_name, r"error: .*no entry 'xne' in the lock .*use one of: xen"),
    (2, p_index_not_in_release, r"error: Debian trixie index: main/source/Sources.xz does not match trixie's signed Release"),
    (2, p_unsigned_release, r"error: Debian trixie Release file: the signature of InRelease does not verify"),
    (6, p_non_utf8_board, r"error: .*board.toml: the board file is not UTF-8 text \(byte 0xe9 at line 1.*fix: save the file as UTF-8"),
    (6, p_non_utf8_scenario, r"error: .*scenario.toml: the scenario file is not UTF-8 text \(byte 0xe9.*fix: save"),
    (6, p_cache_path_is_a_file, r"error: .*cachefile: cache directory .*HARNESS_CACHE.*is a file, not a directory.*fix:"),
    (6, p_cache_unwritable, r"error: .*ro/cache: cache directory .*(Permission denied|not writable).*fix: give a writable"),
    (6, p_mirror_url_without_scheme, r"error: \$HARNESS_DEBIAN_MIRROR: .*'mirror.example/debian' is not a mirror URL.*fix:"),
    (4, p_scenario_xen_args_string, r"error: .*scenario.toml: boot.xen_args: is a string 'loglvl=none', expected an array of strings.*fix: write xen_args = \[\"\.\.\.\", \.\.\.\]"),
    (4, p_scenario_dom0_scmi_string, r"error: .*scenario.toml: boot.dom0_scmi: is a string 'no', expected a boolean.*fix: write dom0_scmi = true or false"),
    (4, p_scenario_secondary_cells_string, r"error: .*scenario.toml: boot.secondary_cells: is a string '2', expected an integer.*fix: write secondary_cells = 1234"),
    (4, p_scenario_boards_string, r"error: .*scenario.toml: boards: is a string 'qemu-virt', expected an array of strings"),
    (4, p_guest_passthrough_string, r"error: .*scenario.toml: xl\[0\].passthrough: is a string 'guest_dev', expected an array of strings"),
    (4, p_scenario_boot_not_a_table, r"error: .*scenario.toml: boot: is a string 'fast', expected a table.*fix: write it as \[boot\]"),
    (4, p_guest_passthrough_int, r"error: .*scenario.toml: dom0less\[0\].passthrough: is an integer 3, expected an array of strings"),
    (4, p_guest_memory_mib_string, r"error: .*scenario.toml: xl\[0\].memory_mib: is a string '512', expected an integer.*fix: write memory_mib = 1234"),
    (4, p_guest_not_a_table, r"error: .*scenario.toml: xl\[0\]: is a string 'domu', expected a table.*fix: write it as \[\[xl\]\]"),
    (4, p_guest_name_with_shell_syntax, r"error: .*scenario.toml: xl\[0\].name: 'domu; reboot' is not a domain name.*fix:"),
    (4, p_guest_name_with_space, r"error: .*scenario.toml: dom0less\[0\].name: 'my domu' is not a domain name.*fix:"),
    (4, p_board_key_smpp, r"error: .*board.toml: qemu.smpp: unknown key 'smpp' in \[qemu\]; did you mean 'smp'\?"),
    (4, p_board_key_spm, r"error: .*board.toml: qemu.spm: unknown key 'spm' in \[qemu\]; did you mean 'smp'\?"),
    (4, p_board_key_enable, r"error: .*board.toml: scmi.clocks\[0\].enable: unknown key 'enable' in \[\[scmi.clocks\]\]; did you mean 'enabled'\?"),
    (4, p_board_key_devicez, r"error: .*board.toml: scmi.agents\[0\].devicez: unknown key 'devicez' in \[\[scmi.agents\]\]; did you mean 'devices'\?"),
    (4, p_board_two_devices_one_node, r"error: .*board.toml: scmi.devices\[1\].node: duplicate node '/pl011@9000000' \(also in scmi.devices\[0\]\).*fix: one SCMI device per DT node"),
    (4, p_board_agent_devices_string, r"error: .*board.toml: scmi.agents\[0\].devices: is (str|a string) 'uart', expected (list|an array of strings)"),
    (4, p_board_carveout_over_xen, r"error: .*board.toml: scmi.shmem_base: carve-out 0x40200000\+0x10000 overlaps Xen or Linux \(BL33\) at 0x40200000\+0x4000000.*fix:"),
    (4, p_board_carveout_over_dtb, r"error: .*board.toml: scmi.shmem_base: carve-out 0x40000000\+0x10000 overlaps the host DTB at 0x40000000\+0x200000.*fix:"),
]


@pytest.mark.parametrize("item,probe,expected", PROBES, ids=[f"item{i}-{p.__name__[2:]}" for i, p, _ in PROBES])
def test_probe(tmp_path, monkeypatch, item, probe, expected):
    try:
        got = probe(Ctx(tmp_path, monkeypatch))
    except HarnessError as e:
        got = f"error: {e}"
    assert "\n" not in got.split(" (fix:")[0] or expected.startswith("rebuilt"), got
    assert re.search(expected, got, re.S), f"{probe.__name__}: got {got!r}"
