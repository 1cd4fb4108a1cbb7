"""Issue 17 ("never lose a user's data, never boot a meaningless system") as a table of
probes, in the shape of test_trust_probes.py: each feeds the harness one input a
demanding user could give and says what must happen: one clear HarnessError (a regex on
its message) or a behaviour the probe reports as a short string. Run against the code
before the fixes (landed main d37d051), these 36 probes gave: 0 clear errors; 5
tracebacks (uses without an agent: AttributeError at boot; store/RECIPE a file; a download
that became a directory; bench-boot --runs 0 and an
unknown boot, as the issue reports them); 8 with data lost or at risk (a cache root that is
a home directory or the empty path, tmp/ names the harness never wrote, prune -1 twice, SUT
names and boot names that leave the artifacts root); 23 accepted with a wrong effect (prune
nan, a shipped SUT redefined, HARNESS_SUTS a directory ignored, credentials printed, a
manifest without files adopted, 9 impossible scenarios, 2 board names that reach C, 3 host
DTs giving SCMI RAM, the root or Xen's console, a reserved SMCCC id, agent ids outside the
profile's range, RAM below dom0_mem, --timeout -5). After: all 36 as the table says.
"""
from __future__ import annotations

import argparse
import re
import json
import textwrap
from pathlib import Path

import pytest

from harness.run import cli
from harness.data.board import load_board
from harness.images.cache import MANIFEST, Cache, forget_checks
from harness.errors import HarnessError
from harness.plan.scenario import load_scenario
from harness.images.sources import parse_source, redact

from test_trust_probes import LOCK, PAYLOAD  # the same one-entry lock and its payload

REPO = Path(__file__).resolve().parents[2]


class Ctx:
    def __init__(self, tmp: Path, mp):
        self.tmp, self.mp = tmp, mp
        forget_checks()

    def scenario(self, text: str, name: str = "probe") -> Path:
        d = self.tmp / "scenarios"
        d.mkdir(exist_ok=True)
        (d / f"{name}.toml").write_text(textwrap.dedent(text))
        return d / f"{name}.toml"

    def load(self, text: str) -> str:
        load_scenario(self.scenario(text), load_board("qemu-virt"))
        return "loaded"


# -- 1: a cache path that is not a cache
def p_cache_is_home(ctx):
    home = ctx.tmp / "home"
    (home / "tmp" / "backup.20231203").mkdir(parents=True)
    (home / "tmp" / "report.2024").write_text("mine")
    (home / ".bashrc").write_text("mine")
    try:
        Cache(home)
    finally:
        assert (home / "tmp" / "report.2024").exists() and (home / "tmp" / "backup.20231203").is_dir()
    return "accepted"


def p_cache_empty_path(ctx):
    Cache("")
    return "accepted"


def p_cache_tmp_foreign_names_survive(ctx):
    c = Cache(ctx.tmp / "c")
    for n in ("report.2024", "notes.1", "x.999999999"):
        (c.root / "tmp" / n).write_text("theirs")
    c.clean_tmp()
    return "kept: " + ", ".join(sorted(p.name for p in (c.root / "tmp").iterdir()))


# -- 2: prune numbers
def _prune(ctx, **kw):
    args = argparse.Namespace(cache=str(ctx.tmp / "c"), action="prune", older_than=None, keep_last=None,
                              dry_run=False, **{})
    for k, v in kw.items():
        setattr(args, k, v)
    cli.cmd_cache(args)
    return "pruned"


def p_prune_keep_last_negative(ctx):
    return _prune(ctx, keep_last=-1)


def p_prune_older_than_negative(ctx):
    return _prune(ctx, older_than=-1.0)


def p_prune_older_than_nan(ctx):
    return _prune(ctx, older_than=float("nan"))


# -- 3: a SUT name from a user's file becomes a path
def _suts(ctx, text: str):
    from harness.images import sut
    f = ctx.tmp / "suts.toml"
    f.write_text(textwrap.dedent(text))
    ctx.mp.setenv("HARNESS_SUTS", str(f))
    return sut.load_suts()


def p_sut_name_dotdot(ctx):
    _suts(ctx, '["../../x"]\nprofile = "v5"\n')
    return "accepted"


def p_sut_name_slash(ctx):
    _suts(ctx, '["a/b"]\nprofile = "v5"\n')
    return "accepted"


def p_sut_redefines_shipped(ctx):
    _suts(ctx, '[v5]\nprofile = "v10"\n')
    return "accepted"


def p_suts_file_is_a_directory(ctx):
    from harness.images import sut
    (ctx.tmp / "d").mkdir()
    ctx.mp.setenv("HARNESS_SUTS", str(ctx.tmp / "d"))
    sut.load_suts()
    return "accepted"


def p_artifacts_outside_root(ctx):
    from harness.run.pytest_plugin import _fresh_dir
    victim = ctx.tmp / "victim"
    victim.mkdir()
    (victim / "keep").write_text("mine")
    root = ctx.tmp / "artifacts"
    root.mkdir()
    try:
        _fresh_dir(root, root / ".." / "victim")
    finally:
        assert (victim / "keep").exists()
    return "removed"


# -- 4: credentials in a git URL
def p_git_url_credentials(ctx):
    spec = parse_source("xen", "https://user:s3cret@example.invalid/xen.git#staging", "--xen-src")
    return spec.describe() + " | " + redact("fatal: https://user:s3cret@example.invalid/xen.git not found")


# -- 5: a manifest without files
def p_manifest_without_files(ctx):
    lines = []
    c = Cache(ctx.tmp / "c", notify=lines.append)

    def build(out, log):
        (out / "xen").write_bytes(b"x" * 100)
    entry, _ = c.build("xen", {"v": 1}, build)
    m = json.loads((entry / MANIFEST).read_text())
    del m["files"]
    (entry / MANIFEST).write_text(json.dumps(m))
    forget_checks()
    _, built = c.build("xen", {"v": 1}, build)
    return f"rebuilt: {built}: " + " ".join(lines)


# -- 7: scenarios that describe impossible systems
GUEST = '[[xl]]\nname = "{name}"\nagent = "{agent}"\n'


def p_two_guests_one_agent(ctx):
    return ctx.load(GUEST.format(name="a", agent="guest2") + GUEST.format(name="b", agent="guest2"))


def p_one_device_two_guests(ctx):
    return ctx.load(GUEST.format(name="a", agent="guest2") + 'passthrough = ["periph"]\n'
                    + GUEST.format(name="b", agent="guest3") + 'passthrough = ["periph"]\n')


def p_guest_takes_xens_agent(ctx):
    return ctx.load(GUEST.format(name="a", agent="xen"))


def p_guest_takes_dom0s_agent_dom0_keeps_it(ctx):
    return ctx.load(GUEST.format(name="a", agent="dom0"))


def p_memory_zero(ctx):
    return ctx.load(GUEST.format(name="a", agent="guest2") + "memory_mib = 0\n")


def p_memory_negative(ctx):
    return ctx.load(GUEST.format(name="a", agent="guest2") + "memory_mib = -64\n")


def p_memory_beyond_board(ctx):
    return ctx.load(GUEST.format(name="a", agent="guest2") + "memory_mib = 4096\n")


def p_xl_scmi_probe(ctx):
    return ctx.load(GUEST.format(name="a", agent="guest2") + 'image = "scmi-probe"\n')


def p_bad_config_without_expect(ctx):
    return ctx.load('families = ["bad-config"]\n[boot]\nsecondary_cells = 2\n')


def p_uses_without_agent(ctx):
    return ctx.load('[[dom0less]]\nname = "a"\nuses = ["guest_dev"]\n')


# -- 6: host DTs that give Xen's console, RAM or the root to SCMI
def _board_with(ctx, old, new):
    text = (REPO / "boards" / "qemu-virt.toml").read_text().replace(old, new, 1)
    (ctx.tmp / "b.toml").write_text(text)
    return load_board(ctx.tmp / "b.toml")


def p_device_on_memory(ctx):
    _board_with(ctx, 'node = "/virtio_mmio@a000000"', 'node = "/memory@40000000"')
    return "accepted"


def p_device_on_root(ctx):
    _board_with(ctx, 'node = "/virtio_mmio@a000000"', 'node = "/"')
    return "accepted"


def p_xens_console_passed_through(ctx):
    return ctx.load(GUEST.format(name="a", agent="guest2") + 'passthrough = ["uart"]\n')


# -- 9: generated C
def p_board_name_closes_a_comment(ctx):
    text = (REPO / "boards" / "qemu-virt.toml").read_text().replace('name = "qemu-virt"',
                                                                      'name = "lab */ int pwned; /*"', 1)
    (ctx.tmp / "b.toml").write_text(text)
    load_board(ctx.tmp / "b.toml")
    return "accepted"


def p_agent_name_with_quote(ctx):
    text = (REPO / "boards" / "qemu-virt.toml").read_text().replace('name = "guest4"', 'name = "g\\"4"', 1)
    (ctx.tmp / "b.toml").write_text(text)
    load_board(ctx.tmp / "b.toml")
    return "accepted"


# -- 10: left-over tracebacks and unchecked numbers
def p_func_id_in_smccc_query_range(ctx):
    _board_with(ctx, "func_id = 0x82000006", "func_id = 0x8200ff01")
    return "accepted"


def p_agent_id_outside_profile_range(ctx):
    from harness.data.profiles import profile
    from harness.plan.plan import check_board_for
    from harness.data.spec import BootSpec
    board = load_board(REPO / "tests" / "unit" / "boards" / "seed-numbering.toml")    # dom0 is agent 0
    check_board_for(board, profile("v5"), BootSpec("b"))
    return "accepted"


def p_ram_too_small_for_dom0_mem(ctx):
    from harness.data.profiles import profile
    from harness.plan.plan import check_board_for
    from harness.data.spec import BootSpec
    text = (REPO / "boards" / "qemu-virt.toml").read_text().replace("ram_size = 0x80000000", "ram_size = 0x20000000")
    (ctx.tmp / "b.toml").write_text(text.replace("memory_mib = 2048", "memory_mib = 512"))
    board = load_board(ctx.tmp / "b.toml")
    check_board_for(board, profile("v5"), BootSpec("b"))
    return "accepted"


def p_bench_boot_runs_zero(ctx):
    cli.cmd_bench_boot(argparse.Namespace(boots=[], runs=0))
    return "ran"


def p_bench_boot_unknown(ctx):
    cli.cmd_bench_boot(argparse.Namespace(boots=["nosuch"], runs=1))
    return "ran"


def p_timeout_negative(ctx):
    from harness.run.pytest_plugin import _command_line_timeout_wins

    class Config:
        option = argparse.Namespace(timeout=-5)
    try:
        _command_line_timeout_wins(Config(), [])
    except pytest.UsageError as e:
        return f"error: {e}"
    return "accepted"


def p_store_recipe_is_a_file(ctx):
    c = Cache(ctx.tmp / "c")
    (c.root / "store" / "xen").write_text("oops")
    c.build("xen", {"v": 1}, lambda out, log: (out / "x").write_text("x"))
    return "built"


def p_download_became_a_directory(ctx):
    from harness.images import debian
    from harness.images.lock import load_lock
    (ctx.tmp / "lock.toml").write_text(LOCK)
    entry = load_lock(ctx.tmp / "lock.toml")["xen"]
    c = Cache(ctx.tmp / "c", notify=lambda line: ctx.lines.append(line))
    ctx.lines = []
    c.download_path(entry).mkdir(parents=True)
    ctx.mp.setattr(debian, "fetch", lambda url, dest, sha, what: dest.write_bytes(PAYLOAD))
    got = c.download(entry)
    return f"fetched again: {got.read_bytes() == PAYLOAD}: " + " ".join(ctx.lines)


PROBES = [
    (1, p_cache_is_home, r"error: .*home is not a harness cache: it holds \.bashrc and no .*fix: give an empty"),
    (1, p_cache_empty_path, r"error: .*the cache directory is an empty path"),
    (1, p_cache_tmp_foreign_names_survive, r"kept: notes\.1, report\.2024, x\.999999999"),
    (2, p_prune_keep_last_negative, r"error: .*--keep-last -1 is negative"),
    (2, p_prune_older_than_negative, r"error: .*--older-than -1.0 is not a number of days"),
    (2, p_prune_older_than_nan, r"error: .*--older-than nan is not a number of days"),
    (3, p_sut_name_dotdot, r"error: .*'\.\./\.\./x' is not a usable SUT name"),
    (3, p_sut_name_slash, r"error: .*'a/b' is not a usable SUT name"),
    (3, p_sut_redefines_shipped, r"error: .*SUT 'v5' is a shipped SUT's name"),
    (3, p_suts_file_is_a_directory, r"error: .*the user's SUT file is not a file"),
    (3, p_artifacts_outside_root, r"error: .*artifact directory .*victim is outside the artifacts root"),
    (4, p_git_url_credentials, r"^git https://\*\*\*@example\.invalid/xen\.git @ staging \| fatal: https://\*\*\*@"),
    (5, p_manifest_without_files, r"rebuilt: True: .*records no files"),
    (7, p_two_guests_one_agent, r"error: .*agent 'guest2' is given to 'a' and 'b'"),
    (7, p_one_device_two_guests, r"error: .*device 'periph' is passed to 'a' and 'b'"),
    (7, p_guest_takes_xens_agent, r"error: .*'xen' is Xen's own management agent"),
    (7, p_guest_takes_dom0s_agent_dom0_keeps_it, r"error: .*'dom0' is dom0's agent and dom0 keeps SCMI"),
    (7, p_memory_zero, r"error: .*memory_mib: 0 MiB is not enough for a linux guest"),
    (7, p_memory_negative, r"error: .*memory_mib: -64 MiB is not enough"),
    (7, p_memory_beyond_board, r"error: .*the guests need 4096 MiB next to dom0's 768 MiB; board 'qemu-virt' has 2048"),
    (7, p_xl_scmi_probe, r"error: .*xl guests boot Linux"),
    (7, p_bad_config_without_expect, r"error: .*a bad-config scenario says nothing about how Xen must refuse it"),
    (7, p_uses_without_agent, r"error: .*guest 'a' has no SCMI agent"),
    (6, p_device_on_memory, r"error: .*stands on '/memory@40000000', which is no device node"),
    (6, p_device_on_root, r"error: .*stands on '/', which is no device node"),
    (6, p_xens_console_passed_through, r"error: .*'uart' stands on /pl011@9000000, Xen's own console"),
    (10, p_func_id_in_smccc_query_range, r"error: .*0x8200ff01 is in SMCCC's reserved general-query range"),
    (10, p_agent_id_outside_profile_range, r"error: .*agent ids dom0=0 are outside what profile v5 accepts \(1\.\.255\)"),
    (10, p_ram_too_small_for_dom0_mem, r"error: .*512 MiB of RAM cannot hold dom0's 768 MiB"),
    (10, p_bench_boot_runs_zero, r"error: .*--runs 0: at least one boot"),
    (10, p_bench_boot_unknown, r"error: .*unknown boot\(s\) nosuch"),
    (10, p_timeout_negative, r"error: .*--timeout -5 is negative"),
    (10, p_download_became_a_directory, r"fetched again: True: cached download of \[xen\] is not a file"),
    (10, p_store_recipe_is_a_file, r"error: .*store/xen is a file, not the directory of xen entries"),
    (9, p_board_name_closes_a_comment, r"error: .*board\.name: 'lab \*/ int pwned; /\*' is not a usable name"),
    (9, p_agent_name_with_quote, r"error: .*is not a usable name"),
]


@pytest.mark.parametrize("item,probe,expected", PROBES, ids=[f"item{i}-{p.__name__[2:]}" for i, p, _ in PROBES])
def test_probe(tmp_path, monkeypatch, item, probe, expected):
    try:
        got = probe(Ctx(tmp_path, monkeypatch))
    except HarnessError as e:
        got = f"error: {e}"
    assert re.search(expected, got, re.S), got





def test_shared_pages_are_named_and_the_default_board_has_none():
    """Item 6: a passed-through device's page that also maps another device is said, not
    hidden; the shipped qemu-virt board keeps periph and guest_dev on pages of their own."""
    from harness.plan.scenario import shared_pages
    assert shared_pages(load_scenario("dom0less-driver-domain"), load_board("qemu-virt")) == []
    notes = shared_pages(load_scenario("rcar-isp-driver-domain"), load_board("rcar-gen4-like"))
    assert notes and all("also maps" in n for n in notes)
