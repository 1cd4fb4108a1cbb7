"""Fail-fast benchmark (`harness bench-fail`): how long a failing check takes to report
once the evidence is in, on a seeded defect.

The seed: a scratch copy of the SUT's patched tree (cache/work/bench-fail-tree, made once,
never the user's) whose multi-agent driver never sends BASE_RESET_AGENT_CONFIGURATION
(scmi_relinquish_resources returns before it). The reset tests run on it, where they must
fail, and on the SUT itself, where they must pass, in one run: compare the ratio, not the
seconds (shared machines are noisy). For each failure the report says how long after its
evidence (the domain gone, the guest restarted) the check gave up; target: within 5 s
(checks.EVIDENCE_GRACE), instead of the check's whole timeout.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from ..images.build import REPO, Builder, BuildOptions
from ..images.build.xen import source_tree
from ..errors import HarnessError

SEEDED_FILE = "xen/arch/arm/firmware/scmi-smc-multiagent.c"
SEED_AFTER = ("static int scmi_relinquish_resources(struct domain *d)\n{",
              "    if ( !d->arch.sci_data )\n        return 0;\n")
SEED = "    return 0;   /* bench-fail seed: Xen never resets the agent */\n"
SELECTION = ("tests/boot/test_scenarios.py", "-k",
             "(test_reset_on_destroy or test_xl_reboot) and (xl-domu or dom0less-driver-domain)")
TARGET_S = 5.0
GAVE_UP = re.compile(r"gave up (\d+\.\d+) s after the evidence")


def seeded_tree(options: BuildOptions, out=print) -> Path:
    """cache/work/bench-fail-tree: the SUT's patched source with the seed (made once)."""
    b = Builder(dataclasses.replace(options, xen_src=None))
    tree = b.cache.root / "work" / "bench-fail-tree"
    if not (tree / SEEDED_FILE).is_file() or SEED not in (tree / SEEDED_FILE).read_text():
        out(f"bench-fail: making the seeded tree {tree} from SUT {b.sut.name}'s source")
        shutil.rmtree(tree, ignore_errors=True)
        shutil.copytree(source_tree(b) / "tree", tree, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        path = tree / SEEDED_FILE
        if not path.is_file():
            raise HarnessError(f"SUT {b.sut.name} has no {SEEDED_FILE}: nothing to seed", field="--sut",
                               fix="run bench-fail on a multi-agent SUT (v5)")
        text = path.read_text()
        head, guard = SEED_AFTER
        at = text.find(head)
        at = text.find(guard, at) if at >= 0 else -1
        if at < 0:
            raise HarnessError(f"{SEEDED_FILE} of SUT {b.sut.name} does not have the code the seed goes into",
                               where=str(path), fix="update harness/run/bench_fail.py's SEED_AFTER for this revision")
        at += len(guard)
        path.write_text(text[:at] + SEED + text[at:])
    return tree


def run_selection(extra: list[str], out=print) -> list[dict]:
    """The reset tests in a fresh pytest; one row per test case from its JUnit report."""
    with tempfile.TemporaryDirectory(prefix="bench-fail-") as tmp:
        junit = Path(tmp) / "junit.xml"
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SELECTION,
                            f"--junitxml={junit}", f"--artifacts={Path(tmp) / 'artifacts'}", *extra],
                           cwd=REPO, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if not junit.is_file():
            out(r.stdout[-3000:] + r.stderr[-2000:])
            raise SystemExit(f"bench-fail: pytest wrote no report (exit {r.returncode}); output above")
        rows = []
        for case in ET.parse(junit).iter("testcase"):
            failed = case.find("failure")
            if failed is None:
                failed = case.find("error")
            text = (failed.get("message", "") + (failed.text or "")) if failed is not None else ""
            gave = GAVE_UP.search(text)
            rows.append({"test": case.get("name"), "seconds": float(case.get("time", 0)),
                         "outcome": "skipped" if case.find("skipped") is not None else
                         ("failed" if failed is not None else "passed"),
                         "after_evidence_s": float(gave.group(1)) if gave else None})
        return rows, wall


def run(options: BuildOptions, out=print) -> dict:
    tree = seeded_tree(options, out)
    sut = Builder(options).sut.name
    out("bench-fail: building the seeded tree (the first time its toolstack takes a few minutes)")
    Builder(dataclasses.replace(options, sut=None, xen_src=str(tree), xen_patches=None)).build()
    seeded, seeded_wall = run_selection([f"--xen-src={tree}"], out)
    good, good_wall = run_selection([f"--sut={sut}"], out)
    out(f"\n{'test':70} {'seeded':>16} {'after evidence':>15}   {sut:>16}")
    by_case = {re.sub(r"\[[^-]+-", "[", r["test"]): r for r in good}
    for r in seeded:
        g = by_case.get(re.sub(r"\[[^-]+-", "[", r["test"]), {})
        ev = f"{r['after_evidence_s']:.1f} s" if r["after_evidence_s"] is not None else "-"
        out(f"{r['test']:70} {r['outcome']:>7} {r['seconds']:6.1f} s {ev:>15}   "
            f"{g.get('outcome', '?'):>7} {g.get('seconds', 0):6.1f} s")
    failed = [r for r in seeded if r["outcome"] == "failed"]
    slow = [r for r in failed if r["after_evidence_s"] is None or r["after_evidence_s"] > TARGET_S]
    out(f"\nseeded: {len(failed)} of {len(seeded)} failed (every one must), in {seeded_wall:.0f} s; "
        f"{sut}: {sum(r['outcome'] == 'passed' for r in good)} of {len(good)} passed, in {good_wall:.0f} s; "
        f"ratio {seeded_wall / good_wall:.2f}")
    out(f"longest report after the evidence: "
        f"{max((r['after_evidence_s'] or 0) for r in failed) if failed else 0:.1f} s (target <= {TARGET_S:.0f} s); "
        + ("every failure named its evidence" if not slow else
           f"{len(slow)} failure(s) sat out a timeout or named no evidence: "
           + ", ".join(r["test"] for r in slow)))
    return {"seeded": seeded, "good": good, "seeded_wall": seeded_wall, "good_wall": good_wall}
