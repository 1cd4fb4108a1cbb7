"""Issue 27 ("inputs mean what they say") as a table of probes, in the shape of
test_data_safety_probes.py: each feeds one board, scenario or SUT field, option or
environment value and says what must happen, one HarnessError naming the real cause
(a regex on its message, which names file and field) or a behaviour as a short string.

Families: the [qemu] table as QEMU and TF-A read it; the firmware's table rules said at
load; names that collide with what Xen, xl, the DT or the boot's own files use; counts
beyond what they count (faults, cells, CPUs); fields and options silently ignored
([expect] no test reads, ops of a Linux guest, a sha256 of no tarball, default in a
user's SUT file, empty option values); paths make cannot take (cache paths with a blank,
comma, colon, quote or newline); trees that are not what their option says.

Against main 70205d5, before the fixes, these 55 probes gave (51 run; 4 read from the
code, as they would build there): 48 accepted, a wrong effect or an error only deep in a
build or a boot (plan --out '' and --xen-src '' among them: the current directory, the
lock); 3 tracebacks (sut add into a HARNESS_SUTS directory: IsADirectoryError;
bench-edit --runs 0 and coverage --cost-runs -1, after building: IndexError,
StatisticsError); 4 misleading errors (memory_mib = 0 blamed ram_size; the empty board
was "no such board file" at "."; a description with a newline was written, then the
whole file refused; the xen/ directory of a Xen tree "has no SCMI mediator"). After: every
probe as the table says. The shared-resource reset of the SCMI server is tested
natively (test_scmi_server.py: test_reset_agent_keeps_a_later_change_by_another_agent).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import textwrap
from pathlib import Path

import pytest

from harness.run import cli
from harness.data.board import load_board
from harness.images.build import Builder, BuildOptions
from harness.images.cache import forget_checks
from harness.errors import HarnessError
from harness.plan.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]


class Ctx:
    def __init__(self, tmp: Path, mp):
        self.tmp, self.mp = tmp, mp
        forget_checks()
        mp.chdir(tmp)

    def board(self, *edits: str) -> str:
        """qemu-virt with each (old, new) pair of edits replaced once."""
        text = (REPO / "boards" / "qemu-virt.toml").read_text()
        for old, new in zip(edits[::2], edits[1::2]):
            assert old in text, old
            text = text.replace(old, new, 1)
        (self.tmp / "b.toml").write_text(text)
        load_board(self.tmp / "b.toml")
        return "accepted"

    def scenario(self, text: str) -> str:
        (self.tmp / "s.toml").write_text(textwrap.dedent(text))
        load_scenario(self.tmp / "s.toml", load_board("qemu-virt"))
        return "accepted"

    def suts(self, text: str) -> str:
        from harness.images import sut
        (self.tmp / "suts.toml").write_text(textwrap.dedent(text))
        self.mp.setenv("HARNESS_SUTS", str(self.tmp / "suts.toml"))
        sut.load_suts()
        return "accepted"

    def builder(self, **options) -> str:
        """A Builder made (nothing is built: that starts only with .build())."""
        options.setdefault("cache_dir", self.tmp / "cache")
        Builder(BuildOptions(**options))
        return "accepted"

    def cli(self, *argv: str) -> str:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = cli.main(list(argv))
        return f"rc {rc}: {err.getvalue().strip()}"


DOM0LESS = '[[dom0less]]\nname = "{name}"\nagent = "guest2"\n'
XL = '[[xl]]\nname = "{name}"\nagent = "guest2"\n'


def xen_tree(root: Path) -> Path:
    (root / "xen/arch/arm").mkdir(parents=True)
    (root / "xen/Makefile").write_text("")
    return root


PROBES = [
    # -- the [qemu] table, as QEMU and TF-A read it
    ("smp-0", lambda c: c.board("smp = 2", "smp = 0"), r"error: .*qemu\.smp: 0 CPUs: QEMU takes 0 as"),
    ("smp-64", lambda c: c.board("smp = 2", "smp = 64"), r"error: .*qemu\.smp: 64 CPUs: .*at most 32"),
    ("memory-0", lambda c: c.board("memory_mib = 2048", "memory_mib = 0"), r"error: .*qemu\.memory_mib: 0 MiB is no memory"),
    ("machine-plain-virt", lambda c: c.board('machine = "virt,secure=on,virtualization=on,gic-version=3"',
                                             'machine = "virt"'), r"error: .*qemu\.machine: 'virt' lacks secure=on: TF-A"),
    ("machine-no-el2", lambda c: c.board("virtualization=on", "virtualization=off"),
     r"error: .*qemu\.machine: .*has virtualization=off: Xen runs at EL2"),
    ("machine-gicv2", lambda c: c.board("gic-version=3", "gic-version=2"), r"error: .*gic-version=2: TF-A is built for GICv3"),
    ("machine-not-virt", lambda c: c.board('machine = "virt,', 'machine = "sbsa-ref,'), r"error: .*'sbsa-ref' is not QEMU's virt"),
    ("cpu-empty", lambda c: c.board('cpu = "max,pauth-impdef=on"', 'cpu = ""'), r"error: .*qemu\.cpu: '' is not an AArch64"),
    ("cpu-32-bit", lambda c: c.board('cpu = "max,pauth-impdef=on"', 'cpu = "cortex-a15"'), r"error: .*'cortex-a15' is not an AArch64"),
    # -- the firmware's table rules, at load rather than in TF-A's build
    ("sensor-unit", lambda c: c.board('unit = "millicelsius"', 'unit = "kelvin"'), r"error: .*scmi\.sensors\[0\]\.unit: unit 'kelvin'"),
    ("clock-ids-gap", lambda c: c.board('id = 3\nname = "guest_clk"', 'id = 7\nname = "guest_clk"',
                                        "clocks = [3]", "clocks = [7]"), r"error: .*scmi\.clocks\[\]\.id: ids \[.*7\] are not 0\.\."),
    ("clock-rate-twice", lambda c: c.board("rates_hz = [", "rates_hz = [24000000, 24000000, "), r"error: .*rates_hz: lists a rate twice"),
    ("board-empty-name", lambda c: (load_board(""), "accepted")[1], r"error: --board .*: the board is an empty name"),
    # -- names Xen, xl, the DT or the boot's files use already
    ("guest-named-xen", lambda c: c.scenario(DOM0LESS.format(name="xen")), r"error: .*dom0less\[0\]\.name: 'xen' is taken: .*/chosen/xen"),
    ("guest-named-Domain-0", lambda c: c.scenario(XL.format(name="Domain-0")), r"error: .*xl\[0\]\.name: 'Domain-0' is taken: .*xl's name for dom0"),
    ("guest-named-host", lambda c: c.scenario(DOM0LESS.format(name="host")), r"error: .*'host' is taken: .*host\.dtb"),
    ("guest-named-qemu-base", lambda c: c.scenario(DOM0LESS.format(name="qemu-base")), r"error: .*'qemu-base' is taken"),
    # -- counts beyond what they count; broken configurations outside bad-config
    ("secondary-cells-4", lambda c: c.scenario("[boot]\nsecondary_cells = 4\n"), r"error: .*boot\.secondary_cells: 4 is no #scmi-secondary-agents-cells"),
    ("shmem-size-0", lambda c: c.scenario("[boot]\nshmem_size = 0\n"), r"error: .*boot\.shmem_size: 0x0: .*one page at most"),
    ("shmem-size-half-not-bad-config", lambda c: c.scenario("[boot]\nshmem_size = 0x800\n"), r"error: .*boot\.shmem_size: 0x800 is not the whole page"),
    ("dt-break-unknown", lambda c: c.scenario('families = ["bad-config"]\n[boot]\ndt_breaks = ["nope"]\n'
                                              '[expect]\nmisconfig = "no-smc-id"\n'), r"error: .*boot\.dt_breaks: unknown DT break 'nope'"),
    ("dt-break-not-bad-config", lambda c: c.scenario('[boot]\ndt_breaks = ["no-smc-id"]\n'), r"error: .*boot\.dt_breaks: breaks Xen's SCMI configuration outside"),
    ("access-controller-elsewhere", lambda c: c.scenario('[boot]\naccess_controller = "/nope"\n'), r"error: .*boot\.access_controller: '/nope'"),
    ("access-controller-without-firmware", lambda c: c.scenario('[boot]\naccess_controller = "/firmware/scmi"\ndom0_scmi = false\n'),
     r"error: .*boot\.access_controller: points at /firmware/scmi, which this boot leaves out"),
    ("faults-17", lambda c: c.scenario('[[faults]]\nkind = "busy"\n' * 17), r"error: .*faults: 17 faults: .*at most 16"),
    ("fault-value-33-bits", lambda c: c.scenario('[[faults]]\nkind = "length"\nvalue = 0x100000000\n'), r"error: .*faults\[0\]\.value: .*32-bit"),
    # -- options the harness sets itself; ignored fields
    ("xen-args-dom0-mem", lambda c: c.scenario('[boot]\nxen_args = ["dom0_mem=4G"]\n'), r"error: .*boot\.xen_args: 'dom0_mem=4G': the harness sets dom0_mem"),
    ("kernel-args-console", lambda c: c.scenario('[boot]\nkernel_args = ["console=ttyAMA0"]\n'), r"error: .*boot\.kernel_args: .*sets console"),
    ("expect-xen-log-not-bad-config", lambda c: c.scenario('families = ["forwarding"]\n[expect]\nxen_log = ["x"]\n'),
     r"error: .*expect\.xen_log: only the bad-config tests read"),
    ("expect-watch-forwarding", lambda c: c.scenario('families = ["forwarding"]\n[expect]\nwatch = ["x"]\n'), r"error: .*expect\.watch: only the bad-config and fault tests"),
    ("ops-on-linux", lambda c: c.scenario(DOM0LESS.format(name="a") + 'ops = ["version"]\n'), r"error: .*dom0less\[0\]\.ops: .*a linux guest would ignore"),
    ("bootargs-newline", lambda c: c.scenario(XL.format(name="a") + 'bootargs = "a\\nb"\n'), r"error: .*xl\[0\]\.bootargs: holds the control character"),
    # -- SUT entries
    ("sut-lock-with-sha256", lambda c: c.suts(f'[a]\nsource = "lock"\nsha256 = "{"0" * 64}"\nprofile = "v10"\n'),
     r"error: .*suts\.toml: \[a\]\.sha256: a sha256 checks a tarball; the source is the lock"),
    ("sut-sha256-not-hex", lambda c: c.suts('[a]\nsource = "x.tar.xz"\nsha256 = "xyz"\nprofile = "v10"\n'), r"error: .*\[a\]\.sha256: 'xyz' is not a sha256"),
    ("sut-default-in-user-file", lambda c: c.suts('[a]\nprofile = "v10"\ndefault = true\n'), r"error: .*\[a\]\.default: default is read for shipped SUTs only"),
    ("sut-variant-without-driver", lambda c: c.suts('[a]\nprofile = "v10"\nvariant = "upstream"\n'),
     r"error: .*\[a\]\.variant: variant 'upstream' does not build CONFIG_SCMI_SMC_MA"),
    ("sut-add-into-a-directory", lambda c: (c.tmp.joinpath("d").mkdir(), c.mp.setenv("HARNESS_SUTS", str(c.tmp / "d")),
                                            c.cli("sut", "add", "x", "--xen-src", "lock", "--profile", "v10"))[-1],
     r"rc 2: .*d: the user's SUT file is not a file"),
    ("sut-add-bad-variant-writes-nothing", lambda c: (c.mp.setenv("HARNESS_SUTS", str(c.tmp / "u.toml")),
                                                      c.cli("sut", "add", "x", "--xen-src", "lock", "--profile", "v10",
                                                            "--variant", "nope"), str((c.tmp / "u.toml").exists()))[1:],
     r"rc 2: .*--variant: unknown hypervisor variant 'nope'.*'False'"),
    ("sut-add-description-newline", lambda c: (c.mp.setenv("HARNESS_SUTS", str(c.tmp / "u.toml")),
                                               c.cli("sut", "add", "x", "--xen-src", "lock", "--profile", "v10",
                                                     "--description", 'two\nlines "q"'), c.suts_read("x"))[-1],
     r"^'two\\nlines \"q\"'$"),
    ("sut-add-sha256-of-a-tree", lambda c: c.cli("sut", "add", "x", "--xen-src", str(xen_tree(c.tmp / "t")), "--profile", "v10",
                                                 "--sha256", "0" * 64), r"rc 2: .*--sha256: a sha256 checks a tarball"),
    # -- options and paths
    ("cache-empty-option", lambda c: c.cli("cache", "--cache="), r"rc 2: harness: error: --cache: is empty"),
    ("xen-src-empty-option", lambda c: c.cli("plan", "--scenario", "xl-domu", "--xen-src="), r"rc 2: harness: error: --xen-src: is empty"),
    ("plan-out-empty", lambda c: c.cli("plan", "--scenario", "xl-domu", "--out="), r"rc 2: harness: error: --out: is empty"),
    ("jobs-0", lambda c: c.builder(jobs=0), r"error: -j/--jobs: -j 0: make needs at least one job"),
    ("bench-edit-runs-0", lambda c: c.cli("bench-edit", "--runs", "0"), r"rc 2: .*--runs 0: at least one edit"),
    ("coverage-cost-runs-negative", lambda c: c.cli("coverage", "--cost-runs", "-1"), r"rc 2: .*--cost-runs -1 is negative"),
    ("xen-src-not-xen-with-sut", lambda c: c.builder(sut="v5", xen_src=str(c.tmp)), r"error: .*--xen-src: is not a Xen source tree"),
    ("xen-src-inner-xen-dir", lambda c: c.builder(xen_src=str(xen_tree(c.tmp / "x") / "xen")),
     r"error: .*--xen-src: is not a Xen source tree.*fix: give its parent"),
    ("tfa-src-not-tfa", lambda c: c.builder(tfa_src=str(c.tmp)), r"error: .*--tfa-src: is not a TF-A source tree"),
]
# cache paths make cannot take: each character alone
PROBES += [(f"cache-path-with-{name}", (lambda ch: lambda c: c.builder(cache_dir=c.tmp / f"a{ch}b"))(ch),
            r"error: .*the cache path holds .*which make and the compilers cannot take")
           for name, ch in (("space", " "), ("comma", ","), ("colon", ":"), ("quote", "'"), ("newline", "\n"),
                            ("dollar", "$"))]


def _suts_read(self, name: str) -> str:
    from harness.images import sut
    return repr(sut.load_suts()[name].description)


Ctx.suts_read = _suts_read


@pytest.mark.parametrize("name,probe,expected", PROBES, ids=[p[0] for p in PROBES])
def test_probe(tmp_path, monkeypatch, name, probe, expected):
    # never the user's own files, whatever a probe (or a regression) writes
    monkeypatch.setenv("HARNESS_SUTS", str(tmp_path / "user-suts.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "default-cache"))
    try:
        got = probe(Ctx(tmp_path, monkeypatch))
    except HarnessError as e:
        got = f"error: {e}"
    if isinstance(got, tuple):
        got = ": ".join(map(repr, got)) if len(got) > 1 else got[0]
    assert re.search(expected, got, re.S), got


def test_empty_environment_reads_as_unset(monkeypatch):
    """VAR= cmd unsets a variable for a shell user: the harness reads it so (an empty option is refused)."""
    for var in ("HARNESS_BOARD", "HARNESS_SUT", "HARNESS_XEN_SRC", "HARNESS_TFA_SRC", "HARNESS_XEN_PATCHES"):
        monkeypatch.setenv(var, "")
    o = BuildOptions.from_env()
    assert (o.board, o.sut, o.xen_src, o.tfa_src, o.xen_patches) == ("qemu-virt", None, None, None, None)
    assert os.environ["HARNESS_BOARD"] == ""


@pytest.mark.parametrize("option", ["--artifacts=", "--harness-cache=", "--artifacts= "])
def test_an_empty_pytest_directory_option_is_refused(option):
    """Path('') is the current directory: an empty --artifacts or --harness-cache would
    write (or wipe boot directories) there."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", option,
                        "tests/unit/test_shard.py"], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                       text=True)
    assert r.returncode == 4 and "an empty path would mean the current directory" in r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("argv,expected", [
    (["bench-parallel", "-n", "0"], "give a whole number of workers >= 1"),
    (["bench-parallel", "--cores", "0,16"], "give core counts >= 1"),
    (["bench-parallel", "--sut", "no-such-sut"], "no system under test named 'no-such-sut'"),
])
def test_bench_parallel_refuses_what_cannot_mean_anything(argv, expected, capsys):
    try:
        rc = cli.main(argv)
    except SystemExit as e:
        rc = e.code
    assert rc == 2 and expected in capsys.readouterr().err
