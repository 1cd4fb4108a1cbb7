"""Inner-loop benchmark (`harness bench-edit`): a developer's edit of one hypervisor
source file -> `harness build` -> one green first-boot test, and the cache growth.

It works on a scratch git tree of its own (cache/work/bench-tree: the SUT's patched
source, committed once), never on the user's: each run appends a comment line to
xen/arch/arm/setup.c (new content, so a new, honestly keyed image), builds every
target as `pytest` would, then runs one boot test on that tree in a fresh pytest.
Targets (issue 11): under 15 s edit -> image, under 25 s edit -> green test, under
5 MB of cache growth per edit. Figures vary on a shared machine: rerun and compare.
"""
from __future__ import annotations

import dataclasses
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ..images.build import REPO, Builder, BuildOptions
from ..images.build.xen import source_tree

EDITED = "xen/arch/arm/setup.c"
TEST = "tests/boot/test_first_boot.py::test_multiagent_management_probe_and_dom0_agent[tree-agent-ids-in-dt]"
TARGETS = {"image_s": 15.0, "green_s": 25.0, "growth_mib": 5.0}


def scratch_tree(options: BuildOptions, out=print) -> Path:
    """cache/work/bench-tree: the SUT's patched tree as a git repository (made once)."""
    b = Builder(dataclasses.replace(options, xen_src=None))
    tree = b.cache.root / "work" / "bench-tree"
    if not (tree / ".git").is_dir():
        out(f"bench-edit: making the scratch tree {tree} from SUT {b.sut.name}'s source")
        shutil.rmtree(tree, ignore_errors=True)
        shutil.copytree(source_tree(b) / "tree", tree, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        git = ["git", "-C", str(tree), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run(git + ["init", "-q"], check=True)
        subprocess.run(git + ["add", "-A", "--force"], check=True)   # the tarball ships files .gitignore names
        subprocess.run(git + ["commit", "-qm", "bench base"], check=True)
    return tree


def cache_bytes(builder: Builder) -> int:
    """The store only: what a developer's edits leave behind (work/ is reused in place)."""
    return sum(e.size for e in builder.cache.entries() if e.recipe != "work")


def run(options: BuildOptions, runs: int = 3, out=print) -> dict:
    tree = scratch_tree(options, out)
    opts = dataclasses.replace(options, sut=None, xen_src=str(tree), xen_patches=None)
    out("bench-edit: warming up (first build of the tree; the toolstack may take a minute)")
    Builder(opts).build()
    rows = []
    try:
        for i in range(runs):
            with open(tree / EDITED, "a") as f:       # an edit: new content, a new image
                f.write(f"/* bench-edit {i} {time.time_ns()} */\n")
            before = cache_bytes(Builder(opts))
            t0 = time.monotonic()
            b = Builder(opts)
            b.build()
            image = time.monotonic() - t0
            growth = (cache_bytes(b) - before) / 2**20
            t1 = time.monotonic()
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST,
                                "--xen-src", str(tree)], cwd=REPO, capture_output=True, text=True)
            test = time.monotonic() - t1
            if r.returncode:
                out(r.stdout[-3000:])
                raise SystemExit(f"bench-edit: the boot test failed (exit {r.returncode}); output above")
            rows.append({"image_s": image, "test_s": test, "green_s": image + test, "growth_mib": growth})
            out(f"run {i + 1}: edit -> image {image:5.1f}s, boot test {test:5.1f}s, edit -> green "
                f"{image + test:5.1f}s, cache +{growth:.1f} MiB")
    finally:
        subprocess.run(["git", "-C", str(tree), "checkout", "-q", "--", EDITED], check=False)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    out(f"\nmedian of {runs}: edit -> image {med['image_s']:.1f}s (target < {TARGETS['image_s']:.0f}), "
        f"edit -> green test {med['green_s']:.1f}s (target < {TARGETS['green_s']:.0f}), "
        f"cache growth {med['growth_mib']:.1f} MiB per edit (target < {TARGETS['growth_mib']:.0f})")
    return {"runs": rows, "median": med}
