"""Coverage of the SUT: how much of Xen's SCMI mediation a boot (or the suite) executed.

The hypervisor is the SUT's variant with `-coverage` (images/xen/variants.toml: Xen's own
CONFIG_COVERAGE, gcov counters only in the SCMI code). The counters start at zero with Xen,
so a boot's are its own (no `xencov reset`); dom0 reads them with `xencov read` before it stops;
the file (Xen's "XCOV" format: records of gcda path, size, gcda bytes) is split into .gcda
files beside the build's .gcno files, and gcovr (a maintained tool) turns them into line and
branch coverage: one JSON per boot, merged over the suite, a text report per source file
that lists every line never executed.

`pytest --xen-coverage` does it for every boot of the session and writes the merged report
to <artifacts>/coverage/; `harness coverage [--artifacts DIR]` prints it again.
"""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from ..errors import HarnessError
from ..images.build.rootfs import GUEST_DIR

XCOV_MAGIC = 0x58434F56          # "XCOV" (xen/include/public/sysctl.h)
DAT_IN_DOM0 = f"{GUEST_DIR}/xencov.dat"   # dom0's side of `xencov read`
# What the report covers (paths in xen/): the SCMI code and the SCI parts of domain building
REPORTED = [r"arch/arm/firmware/", r"arch/arm/domain\.c", r"arch/arm/domctl\.c", r"common/domctl\.c",
            r"drivers/passthrough/device_tree\.c"]
GCOV = "aarch64-linux-gnu-gcov"


def variant_for(variant: str) -> str:
    return f"{variant}-coverage"


def workspace(entry) -> Path:
    """The coverage build's kept workspace (src/ and build/ with its .gcno files)."""
    ws = entry.manifest.get("coverage_workspace")
    if not ws or not (Path(ws) / "build").is_dir():
        raise HarnessError("the coverage build's workspace is gone (pruned?)", where=str(entry.path),
                           fix="rebuild it: remove the entry or run `harness cache prune`, then run again")
    return Path(ws)


def split(dat: bytes, build: Path, into: Path) -> list[Path]:
    """Xen's counters (`xencov read`) -> .gcda files under `into`, at the paths of their
    objects relative to the build directory (the build ran in `build`)."""
    if len(dat) < 4 or struct.unpack_from("<I", dat)[0] != XCOV_MAGIC:
        raise HarnessError("not a xencov file (no XCOV magic)", field="xencov read",
                           fix="check that the hypervisor is a coverage build (CONFIG_COVERAGE)")
    out, pos = [], 4
    while pos < len(dat):
        end = dat.index(b"\0", pos)
        name = dat[pos:end].decode()
        (size,) = struct.unpack_from("<I", dat, end + 1)
        payload = dat[end + 5:end + 5 + size]
        pos = end + 5 + size
        rel = name.split(str(build).rstrip("/") + "/", 1)[-1].lstrip("/")
        dest = into / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(payload)
        out.append(dest)
    return out


def gcovr_json(ws: Path, dat: bytes, workdir: Path) -> Path:
    """One boot's counters as gcovr JSON (workdir/coverage.json)."""
    objdir = workdir / "gcov"
    shutil.rmtree(objdir, ignore_errors=True)
    # the .gcno files of the build beside this boot's .gcda files (gcov wants them together)
    for gcno in (ws / "build").rglob("*.gcno"):
        dest = objdir / gcno.relative_to(ws / "build")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(gcno, dest)
    split(dat, ws / "build", objdir)
    out = workdir / "coverage.json"
    _gcovr(ws, ["--object-directory", str(objdir), str(objdir), "--json", str(out)])
    return out


def merged_report(ws: Path, jsons: list[Path], outdir: Path) -> dict:
    """The suite's coverage from every boot's JSON: summary.json, coverage.txt (per file,
    with the lines never executed), and the figures returned."""
    outdir.mkdir(parents=True, exist_ok=True)
    adds = [a for j in jsons for a in ("--json-add-tracefile", str(j))]
    _gcovr(ws, [*adds, "--json-summary", str(outdir / "summary.json"), "--json-summary-pretty",
                "--txt", str(outdir / "coverage.txt"), "--txt-metric", "line",
                "--json", str(outdir / "merged.json")])
    _gcovr(ws, [*adds, "--txt", str(outdir / "branches.txt"), "--txt-metric", "branch"])
    return json.loads((outdir / "summary.json").read_text())


def _gcovr(ws: Path, args: list[str]) -> None:
    filters = [a for r in REPORTED for a in ("--filter", str(ws / "src" / "xen") + "/" + r)]
    gcovr = shutil.which("gcovr") or str(Path(sys.executable).parent / "gcovr")   # the venv's, when not on PATH
    r = subprocess.run([gcovr, "--root", str(ws / "src" / "xen"), "--gcov-executable", GCOV, *filters,
                        "--gcov-ignore-parse-errors=negative_hits.warn_once_per_file", *args],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise HarnessError(f"gcovr failed: {(r.stderr or r.stdout).strip()[-800:]}", field="coverage",
                           fix="see the message; gcovr and aarch64-linux-gnu-gcov must be installed (scripts/setup)")


def summary_lines(summary: dict) -> list[str]:
    """'file: lines x/y (p %), branches ...' per reported file, worst first, and the total."""
    rows = []
    for f in summary.get("files", []):
        rows.append((f.get("line_percent", 0.0),
                     f"{f['filename']:<48} lines {f['line_covered']:>4}/{f['line_total']:<4} "
                     f"({f.get('line_percent', 0):5.1f} %)  branches {f['branch_covered']:>4}/{f['branch_total']:<4} "
                     f"({f.get('branch_percent', 0) or 0:5.1f} %)"))
    out = [r for _, r in sorted(rows)]
    out.append(f"{'total':<48} lines {summary['line_covered']:>4}/{summary['line_total']:<4} "
               f"({summary.get('line_percent', 0):5.1f} %)  branches {summary['branch_covered']:>4}/"
               f"{summary['branch_total']:<4} ({summary.get('branch_percent', 0) or 0:5.1f} %)")
    return out


# -- `harness coverage`: the rerunnable measurement -------------------------------------
DRIVER = "arch/arm/firmware/scmi-smc-multiagent.c"
TARGET_LINES, TARGET_COST = 90.0, 1.5      # issue 19: >= 90 % of the driver's lines; <= 1.5x a plain boot


def file_lines(report: dict, name: str) -> dict[int, int]:
    """line -> count of one file in a gcovr JSON report (lines of several functions summed)."""
    out: dict[int, int] = {}
    for f in report.get("files", []):
        if f["file"].endswith(name):
            for line in f["lines"]:
                out[line["line_number"]] = out.get(line["line_number"], 0) + line["count"]
    return out


def file_functions(report: dict, name: str) -> dict[int, str]:
    """line -> the function it belongs to, of one file in a gcovr JSON report."""
    return {line["line_number"]: line.get("function_name", "?") for f in report.get("files", [])
            if f["file"].endswith(name) for line in f["lines"]}


def never_blocks(lines: dict[int, int], functions: dict[int, str]) -> list[tuple[str, list[int]]]:
    """The lines never executed as blocks: (function, lines) for each run of never-executed
    code lines with no executed line of the same function between them."""
    blocks: list[tuple[str, list[int]]] = []
    for n in sorted(lines):
        if lines[n]:
            continue
        fn = functions.get(n, "?")
        prev = [m for m in lines if m < n and functions.get(m) == fn]
        if blocks and blocks[-1][0] == fn and prev and max(prev) == blocks[-1][1][-1]:
            blocks[-1][1].append(n)
        else:
            blocks.append((fn, [n]))
    return blocks


# Error paths of the multi-agent driver that no scenario can reach here, and why: (function,
# regex over the block's source and the 3 lines before it, reason; "*": any function, for code
# gcov attributes to the function it was inlined into). Matched by source, not by
# line number, so a user's tree is explained too where its code is the same.
UNREACHABLE = (
    ("collect_agents", r"xen,config node not found",
     "the driver is only probed through a node inside the config node (DT_MATCH_PATH /chosen/xen,config/scmi)"),
    ("collect_agents", r"xen,sci node not found",
     "v10/v11: scmi_probe returns -ENODEV for an arm,scmi-smc node with no xen,sci ancestor "
     "(scmi_is_under_xen_sci), so a probed node always has the xen,sci node this looks for"),
    ("smc_create_channel", r"ERR_PTR\(-ENOMEM\)", "xmalloc() fails only when Xen is out of memory"),
    ("collect_agents", r"Could not create channel for agent",
     "v5: smc_create_channel() returns ERR_PTR(EEXIST) / ERR_PTR(ENOMEM), positive, so IS_ERR() misses them "
     "(a DT duplicate takes bad-duplicate-agent-id's Data Abort instead)"),
    ("scmi_domain_init", r"iomem_permit_access|relinquish_scmi_channel|SCMI_SHMEM_MAPPED_SIZE - 1\)\);",
     "iomem_permit_access() fails only when Xen is out of memory"),
    ("scmi_domain_sanitise_config", r"zero ARM SCMI agent_id",
     "agent id 0 (v5): libxl refuses it before the domctl (test_xl_refuses_bad_agent_ids shows it)"),
    ("scmi_relinquish_resources", r"Unable to get Hypervisor scmi channel|d->domain_id",
     "the management channel is never removed once the driver is registered"),
    ("*", r"No SMCCC 1.1", "firmware older than SMCCC 1.1: TF-A here answers 1.5"),   # inlined: any function
    ("scmi_probe", r"scmi_check_smccc_ver", "firmware older than SMCCC 1.1: TF-A here answers 1.5"),
    ("scmi_probe", r"smc_create_channel\(SCMI_BASE_AGENT_ID_OWN",
     "the first channel fails only out of memory (and v5 then returns ret = 0: the probe 'succeeds' unregistered)"),
    ("scmi_probe", r"map_channel_memory\(channel\)", "ioremap() fails only when Xen's vmap space is exhausted"),
    ("scmi_probe", r"mediator already registered", "Kconfig's SCI choice builds one mediator"),
)


def why_unreachable(fn: str, block: list[int], src: list[str]) -> str | None:
    text = "\n".join(src[max(0, block[0] - 4):block[-1]])
    return next((why for f, rx, why in UNREACHABLE if f in (fn, "*") and re.search(rx, text)), None)


def percent(lines: dict[int, int]) -> float:
    return 100.0 * sum(1 for c in lines.values() if c) / len(lines) if lines else 0.0


def boot_cost(builder, runs: int, out=print) -> tuple[float, float]:
    """Median seconds from QEMU start to dom0's shell of the SUT's plain hypervisor and of
    its coverage build, booted alternately (a shared machine's drift hits both alike)."""
    import statistics
    import tempfile

    from .bench import harness_boot
    from ..machine.system import BootSpec, prepare
    plain, cov = builder.sut.variant.removesuffix("-coverage"), variant_for(builder.sut.variant.removesuffix("-coverage"))
    times = {plain: [], cov: []}
    with tempfile.TemporaryDirectory(prefix="cov-cost-") as tmp:
        for i in range(runs):
            for v in (plain, cov):
                spec = BootSpec(f"cost-{v}", xen=v, profile=builder.sut.profile.name, network=False)
                machine = prepare(builder, spec, Path(tmp) / f"{v}-{i}")
                times[v].append(harness_boot(machine, spec))
    p, c = statistics.median(times[plain]), statistics.median(times[cov])
    out(f"boot to dom0's shell, median of {runs}: {plain} {p:.1f} s, {cov} {c:.1f} s: "
        f"{c / p:.2f}x (target <= {TARGET_COST}x)")
    return p, c


def run(options, *, select: str | None, artifacts: Path, cost_runs: int, out=print) -> int:
    """The boot suite (or the -k selection) with --xen-coverage, then the figures."""
    from ..images.build import REPO, Builder
    b = Builder(options)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "boot", f"--sut={b.sut.name}",
           "--xen-coverage", f"--artifacts={artifacts}", f"--junitxml={artifacts / 'junit.xml'}",
           # the record round trip boots the plain hypervisor in a pytest of its own: nothing to measure
           "-k", f"({select}) and not test_record_round_trip" if select else "not test_record_round_trip"]
    out("harness coverage: " + " ".join(cmd[2:]))
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    tail = [line for line in r.stdout.splitlines() if line.strip()][-3:]
    out("\n".join(tail))
    summary_path = artifacts / "coverage" / "summary.json"
    if not summary_path.is_file():
        out(r.stdout[-3000:] + r.stderr[-2000:])
        raise HarnessError("the coverage run wrote no report", where=str(artifacts), field="harness coverage",
                           fix="see pytest's output above")
    out("\nper file (the suite, merged):")
    for line in summary_lines(json.loads(summary_path.read_text())):
        out("  " + line)
    merged = json.loads((artifacts / "coverage" / "merged.json").read_text())
    out(f"\n{DRIVER} per boot (scenario):")
    for j in sorted(artifacts.rglob("coverage.json")):
        lines = file_lines(json.loads(j.read_text()), DRIVER)
        out(f"  {j.parent.name:<52} {percent(lines):5.1f} %")
    lines = file_lines(merged, DRIVER)
    never = sorted(n for n, c in lines.items() if not c)
    src = None
    if lines:
        cov_build = b.build([f"xen-{variant_for(b.sut.variant)}"])[f"xen-{variant_for(b.sut.variant)}"]
        src = (workspace(cov_build) / "src" / "xen" / DRIVER).read_text().splitlines()
    out(f"\n{DRIVER}: {percent(lines):.1f} % of {len(lines)} lines executed (target >= {TARGET_LINES:.0f} %); "
        f"never executed ({len(never)}):")
    missing = 0
    for fn, block in never_blocks(lines, file_functions(merged, DRIVER)):
        why = why_unreachable(fn, block, src) if src else None
        missing += why is None
        out(f"  {fn}, line{'s' if len(block) > 1 else ''} {', '.join(map(str, block))}: "
            + (f"unreachable here: {why}" if why else "NOT REACHED: no scenario makes it happen"))
        for n in block:
            out(f"    {n:5}: {src[n - 1].strip() if src else ''}")
    out(f"error paths never reached that a scenario could reach: {missing} (target 0)")
    if cost_runs:
        boot_cost(b, cost_runs, out)
    return r.returncode
