"""The `harness` command: build images, manage the sources lock and the cache."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import math
import time
from pathlib import Path

from ..errors import HarnessError
from ..images.cmdline import builder_from_args, progress as _progress


def _path(text: str):
    """An option's path; "" stays "" for main() to refuse (Path("") is ".", the current directory)."""
    return Path(text) if text else ""


POSITIONAL = {"name": "NAME", "names": "NAME", "targets": "TARGET", "boots": "BOOT", "junit": "JUNIT",
              "action": "ACTION"}


def refuse_empty(args) -> None:
    """No option means anything by an empty value: an empty path would be the current
    directory, an empty source the lock; say so instead of taking it for a default."""
    for dest, value in vars(args).items():
        if value == "" or (isinstance(value, list) and "" in value):
            shown = POSITIONAL.get(dest, "--" + dest.replace("_", "-"))
            raise HarnessError("is empty", field=shown,
                               fix=f"give {shown} a value, or leave the option out for its default")


def add_build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", help="board name or .toml path (default qemu-virt; env HARNESS_BOARD)")
    p.add_argument("--sut", help="system under test: a name of `harness sut list` (default: the first shipped "
                   "default one that can be built here; env HARNESS_SUT)")
    p.add_argument("--xen-src", help="replace the SUT's Xen source: 'lock', a local Xen tree, GIT_URL#REF or "
                   "FILE.tar.xz (env HARNESS_XEN_SRC)")
    p.add_argument("--xen-patches", help="replace the SUT's patch series: a directory of format-patch files or "
                   "an mbox; 'none' for none (env HARNESS_XEN_PATCHES)")
    p.add_argument("--tfa-src", help="'lock' (default), a local TF-A tree, or GIT_URL#REF (env HARNESS_TFA_SRC)")
    p.add_argument("--cache", type=_path, help="cache directory (env HARNESS_CACHE; default ~/.cache/xen-scmi-harness)")
    p.add_argument("-j", "--jobs", type=int, help="parallel make jobs (default: number of CPUs)")


def cmd_build(args) -> int:
    t0 = time.monotonic()
    progress = _progress()
    b = builder_from_args(args, progress)
    progress.header = f"SUT {b.sut.describe()}"
    results = b.build(args.targets)
    if progress.built == 0 and not args.verbose:      # nothing to do: one line
        print(f"SUT {b.sut.name}: {len(results)} targets cached ({', '.join(results)}) in "
              f"{time.monotonic() - t0:.1f}s; cache {b.cache.root}")
        return 0
    print(f"\n{'target':<22} {'cache entry'}")
    for name, entry in results.items():
        print(f"{name:<22} {entry.path}")
    print(f"\nall done in {time.monotonic() - t0:.1f}s; cache {b.cache.root}")
    return 0


def cmd_bench_boot(args) -> int:
    from . import bench
    unknown = [n for n in args.boots if n not in bench.SPECS]
    if unknown:
        raise HarnessError(f"unknown boot(s) {', '.join(unknown)}", field="harness bench-boot BOOT",
                           fix="use " + ", ".join(bench.SPECS))
    if args.runs < 1:
        raise HarnessError(f"--runs {args.runs}: at least one boot of each kind is needed", field="--runs",
                           fix="e.g. --runs 5")
    b = builder_from_args(args, _progress())
    bench.run(b, args.boots or list(bench.SPECS), args.runs)
    return 0


def cmd_bench_parallel(args) -> int:
    from . import bench_parallel
    from ..images import sut
    sut.get(args.sut)                      # an unknown SUT: one clear error before anything runs
    return bench_parallel.run(args.sut, args.workers, args.keyword, args.cores, args.out, whole=args.whole,
                              boots_at_once=args.boots_at_once)


def at_least_one(what: str):
    """An argparse type: a whole number of `what` >= 1 (also pytest's --boots-at-once)."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of {what} >= 1")
        return value
    return convert


def _core_list(text: str) -> list[int]:
    try:
        cores = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        cores = []
    if not cores or min(cores) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give core counts >= 1, comma-separated (e.g. 16,32)")
    return cores


def cmd_bench_edit(args) -> int:
    from . import bench_edit
    from ..images.build import BuildOptions
    if args.runs < 1:
        raise HarnessError(f"--runs {args.runs}: at least one edit is needed for a median", field="--runs",
                           fix="e.g. --runs 3")
    opts = BuildOptions.from_env(board=args.board, sut=args.sut, tfa_src=args.tfa_src, cache_dir=args.cache,
                                 jobs=args.jobs)
    bench_edit.run(opts, args.runs)
    return 0


def cmd_bench_fail(args) -> int:
    from . import bench_fail
    from ..images.build import BuildOptions
    opts = BuildOptions.from_env(board=args.board, sut=args.sut, tfa_src=args.tfa_src, cache_dir=args.cache,
                                 jobs=args.jobs)
    bench_fail.run(opts)
    return 0


def cmd_lock(args) -> int:
    from ..images import lock
    path = args.lock or lock.LOCK_PATH
    if args.action == "update":
        lock.update_lock(path, args.names or None, log=lambda m: print(m, file=sys.stderr))
        print(f"updated {path}")
    elif args.action == "verify":
        # every named file: its cached copy checked by size and sha256 (a damaged copy is
        # named and fetched again), else downloaded and checked; any problem: exit 1
        from ..images.cache import Cache
        cache = Cache(args.cache, notify=lambda m: None)
        entries = lock.load_lock(path).select(args.names)
        bad = []
        for entry in entries:
            damaged = cache.download_damage(entry)
            try:
                got = cache.download(entry)
            except HarnessError as e:
                bad.append(entry.name)
                print(f"{entry.name:<20} {entry.describe():<70} FAILED: {e}")
                continue
            if damaged:
                bad.append(entry.name)
                print(f"{entry.name:<20} {entry.describe():<70} DAMAGED: {damaged}; downloaded again "
                      f"and verified: {got}")
            else:
                print(f"{entry.name:<20} {entry.describe():<70} ok (sha256) {got}")
        if bad:
            print(f"harness: error: {len(bad)} of {len(entries)} lock entries failed verification: "
                  f"{', '.join(bad)}", file=sys.stderr)
            return 1
        print(f"all {len(entries)} entries verified (size and sha256)", file=sys.stderr)
    else:
        for entry in lock.load_lock(path).select(args.names):
            print(f"{entry.name:<20} {entry.describe()}")
    return 0


def _age(secs: float) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= n:
            return f"{secs / n:.0f}{unit}"
    return f"{secs:.0f}s"


def cmd_cache(args) -> int:
    from ..images.cache import Cache
    cache = Cache(args.cache)          # removes what killed builds left in tmp/
    now = time.time()
    if args.action == "prune":
        if args.older_than is None and args.keep_last is None:
            raise HarnessError("prune needs --older-than DAYS and/or --keep-last N", field="harness cache prune",
                               fix="e.g. harness cache prune --keep-last 3, or --older-than 14")
        if args.older_than is not None and not (math.isfinite(args.older_than) and args.older_than >= 0):
            raise HarnessError(f"--older-than {args.older_than} is not a number of days", field="--older-than",
                               fix="give 0 or more days, e.g. --older-than 14")
        if args.keep_last is not None and args.keep_last < 0:
            raise HarnessError(f"--keep-last {args.keep_last} is negative", field="--keep-last",
                               fix="give how many entries per recipe to keep (0 or more), e.g. --keep-last 3")
        gone = cache.prune(args.older_than, args.keep_last, dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        for e in gone:
            print(f"{verb} {e.recipe:<12} {e.path.name}  {e.size / 2**20:7.1f} MiB  last used {_age(now - e.last_used)} ago")
        for e in cache.busy:
            print(f"kept    {e.recipe:<12} {e.path.name}  {e.size / 2**20:7.1f} MiB  (a build is using it now)")
        print(f"{verb} {len(gone)} entries, {sum(e.size for e in gone) / 2**20:.0f} MiB; "
              f"cache {cache.root} is {cache.size_bytes() / 2**20:.0f} MiB")
        return 0
    print(f"cache: {cache.root}")
    print(f"  {'recipe':<14} {'entries':>7} {'MiB':>8}  {'newest use':>10}  {'oldest use':>10}")
    groups: dict[str, list] = {}
    for e in cache.entries():
        groups.setdefault(e.recipe, []).append(e)
    for recipe, items in groups.items():
        print(f"  {recipe:<14} {len(items):>7} {sum(e.size for e in items) / 2**20:>8.1f}  "
              f"{_age(now - max(e.last_used for e in items)):>10}  {_age(now - min(e.last_used for e in items)):>10}")
    print(f"size: {cache.size_bytes() / 2**20:.0f} MiB  (free space: harness cache prune --keep-last N / "
          f"--older-than DAYS)")
    return 0


def cmd_sut(args) -> int:
    from ..images import sut
    if args.action == "add":
        if not (args.name and args.xen_src and args.profile):
            raise HarnessError("`harness sut add` needs NAME, --xen-src and --profile", field="harness sut add",
                               fix="harness sut add mytree --xen-src ~/src/xen --profile v10")
        path = sut.add(args.name, args.xen_src, args.profile, series=args.xen_patches, sha256=args.sha256,
                       variant=args.variant, description=args.description or "", record=args.record_name)
        print(f"added SUT {args.name} to {path}; run it with: pytest --sut {args.name}")
        return 0
    from ..data.profiles import PROFILES
    from ..images.sources import redact
    for s in sut.load_suts().values():
        where = "shipped" if s.shipped else str(s.origin)
        state = f"  (cannot build here: {s.missing})" if s.missing else ""
        print(f"{s.name:<24} {s.profile.name:<22} {s.variant:<12} {where}{state}\n"
              f"{'':<24} {redact(s.source)}" + (f" + {s.series}" if s.series else "") +
              (f"\n{'':<24} {s.description}" if s.description else ""))
    print("\nprofiles: " + "; ".join(f"{p.name} ({p.description.split(':')[0]})" for p in PROFILES.values()))
    print(f"your own SUTs: {sut.user_file()} (harness sut add NAME --xen-src ... --profile ...)")
    return 0


def cmd_record(args) -> int:
    from ..checks import records
    if args.action in ("diff", "accept") and not args.name:
        raise HarnessError(f"`harness record {args.action}` needs the record's name", field="NAME",
                           fix=f"harness record {args.action} v11 (`harness record status` lists them)")
    if args.action == "diff":
        text = records.diff(args.name)
        print(text or f"nothing pending for {args.name} ({records.pending_path(args.name)} does not exist)")
        return 0
    if args.action == "accept":
        path, taken = records.accept(args.name)
        print(f"accepted {len(taken)} entries into {path}: " + ", ".join(taken))
        return 0
    if args.action == "check":
        stale = records.unread(known_record_keys())
        for line in stale:
            print(line)
        print(f"{len(stale)} record entries no test reads" if stale else "every record entry is read by a test")
        return 1 if stale else 0
    for p in sorted(records.RECORDS.glob("*.toml")):
        if p.name.endswith(".pending.toml"):
            continue
        data = records.load(p.stem)
        n = sum(len(v) for v in data.values())
        pend = records.pending_path(p.stem)
        extra = f", pending: {pend.name} (harness record diff {p.stem})" if pend.is_file() else ""
        print(f"{p.stem:<16} {n:>3} entries ({', '.join(f'{s}: {len(v)}' for s, v in sorted(data.items()))}){extra}")
    return 0


def known_record_keys() -> dict[str, set[str]]:
    """What a record entry may be keyed by today: the fault and bad-config scenarios, the boards."""
    from ..checks import records
    from ..data.board import BOARDS_DIR
    from ..plan.scenario import names
    boards = {p.stem for p in BOARDS_DIR.glob("*.toml")}
    return {"fault": set(names("fault", broken={})), "bad-config": set(names("bad-config", broken={})),
            "xl-dtdev": boards, "assign-domctl": boards, "assign-denied": boards,
            "broken": set(records.BROKEN_CHECKS)}


def cmd_matrix(args) -> int:
    from . import matrix
    for path in matrix.write(args.out, args.sut or None, args.board, args.junit):
        print(f"wrote {path}")
    return 0


def cmd_coverage(args) -> int:
    from . import coverage
    from ..images.build import BuildOptions
    if args.cost_runs < 0:
        raise HarnessError(f"--cost-runs {args.cost_runs} is negative", field="--cost-runs",
                           fix="give how many boots of each kind to time (0: skip the cost)")
    opts = BuildOptions.from_env(board=args.board, sut=args.sut, xen_src=args.xen_src, xen_patches=args.xen_patches,
                                 tfa_src=args.tfa_src, cache_dir=args.cache, jobs=args.jobs)
    return coverage.run(opts, select=args.select, artifacts=args.artifacts.absolute(), cost_runs=args.cost_runs)


def cmd_plan(args) -> int:
    """Compose a scenario's boot plan and write it out for review; boots nothing."""
    import dataclasses
    from ..plan.plan import write_out
    from ..plan.scenario import load_scenario
    from ..machine.system import prepare
    b = builder_from_args(args, _progress())
    sc = load_scenario(args.scenario, b.board)
    if sc.unmet(b.sut):
        raise HarnessError(sc.unmet(b.sut), field="--sut", fix="pick a SUT that can (harness sut list)")
    sc = dataclasses.replace(sc, spec=sc.spec_for(b.sut))
    out = (args.out or Path("artifacts") / "plan" / sc.spec.name).absolute()
    machine = prepare(b, sc.spec, out / "boot")
    for path in write_out(machine.plan, out):
        print(path)
    print(f"qemu: {out / 'qemu-cmdline.txt'}")
    (out / "qemu-cmdline.txt").write_text(shlex.join(machine.command()) + "\n")
    return 0


def cmd_boot(args) -> int:
    from ..machine import interactive
    return interactive.run(args)


def cmd_report(args) -> int:
    from . import report
    return report.main(args.junit, history=args.history, history_dir=args.history_dir, plot=args.plot,
                       markdown=args.markdown, threshold=args.threshold,
                       fail_on_regression=args.fail_on_regression)


def parser() -> argparse.ArgumentParser:
    """The `harness` command line (tests/unit/test_doc_commands.py parses the docs' commands with it)."""
    ap = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build images through the cache (default: all)")
    p.add_argument("targets", nargs="*", help="all, xen-upstream, xen-multiagent, xen-multiagent-debug, "
                   "xen-tools, dom0-tools, tf-a, kernel, scmi-probe, rootfs-domu, rootfs-dom0")
    p.add_argument("-v", "--verbose", action="store_true", help="list the cache entries even when all were cached")
    add_build_options(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("bench-edit", help="time a developer's inner loop: edit one hypervisor file -> image -> "
                       "a green boot test, and the cache growth per edit (on a scratch tree)")
    p.add_argument("--runs", type=int, default=3)
    add_build_options(p)
    p.set_defaults(func=cmd_bench_edit)

    p = sub.add_parser("bench-fail", help="time how soon failing checks report after their evidence: the reset "
                       "tests on a seeded tree whose Xen never resets an agent, against the SUT itself")
    add_build_options(p)
    p.set_defaults(func=cmd_bench_fail)

    p = sub.add_parser("bench-parallel", help="time the boot suite serially and with pytest -n N on the same warm "
                       "cache (wall, CPU, boots, same outcomes, QEMU left), and project more cores")
    p.add_argument("--sut", default="v5", help="the SUT whose boot suite runs (default v5)")
    p.add_argument("-n", "--workers", type=at_least_one("workers"), default=os.cpu_count() or 1,
                   help="pytest-xdist workers for the parallel run (default: this machine's cores)")
    p.add_argument("-k", dest="keyword", help="pytest -k expression: a part of the boot suite")
    p.add_argument("--boots-at-once", type=at_least_one("boots"), help="pytest --boots-at-once for the parallel run "
                   "(default: the plugin's, cores / the board's vCPUs)")
    p.add_argument("--all", dest="whole", action="store_true",
                   help="the whole suite (unit, build and boot tests, as the README's command runs it), not -m boot")
    p.add_argument("--cores", type=_core_list, default=[16, 32], help="cores to project for (default 16,32)")
    p.add_argument("--out", type=Path, default=Path("artifacts/bench-parallel"),
                   help="where both runs' artifacts, JUnit and output go (default artifacts/bench-parallel)")
    p.set_defaults(func=cmd_bench_parallel)

    p = sub.add_parser("bench-boot", help="time QEMU start -> dom0 shell, harness vs a bare QEMU command")
    p.add_argument("boots", nargs="*", help="native, upstream, multiagent (default: all)")
    p.add_argument("--runs", type=int, default=5, help="boots of each kind (default 5)")
    add_build_options(p)
    p.set_defaults(func=cmd_bench_boot)

    p = sub.add_parser("lock", help="show, verify (download + sha256) or update the sources lock")
    p.add_argument("action", choices=["show", "verify", "update"], nargs="?", default="show")
    p.add_argument("names", nargs="*", help="lock entries (default: all)")
    p.add_argument("--lock", type=_path, help="lock file (default images/sources.lock.toml)")
    p.add_argument("--cache", type=_path)
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser("sut", help="list the systems under test, or add one of yours",
                       description="A system under test = a Xen source + optional patch series + binding profile "
                       "+ hypervisor variant (images/xen/suts.toml, and your own file). `harness sut add` appends "
                       "to your file; pytest --sut NAME runs the boot suite under it.")
    p.add_argument("action", choices=["list", "add"], nargs="?", default="list")
    p.add_argument("name", nargs="?", help="(add) the new SUT's name: it starts its test ids")
    p.add_argument("--xen-src", help="(add) a Xen tree, GIT_URL#REF or FILE.tar.xz")
    p.add_argument("--sha256", help="(add) the tarball's sha256, checked before use")
    p.add_argument("--xen-patches", help="(add) a patch series applied on top (directory or mbox)")
    p.add_argument("--profile", help="(add) binding profile: single, scmi-smc-passthrough, v5, v10, v11")
    p.add_argument("--record", dest="record_name", metavar="NAME",
                   help="(add) its record, records/NAME.toml (default: the profile's): a new revision of the "
                        "series with a known binding gets its own, e.g. --profile v11 --record v12")
    p.add_argument("--variant", help="(add) hypervisor variant (default: the profile's)")
    p.add_argument("--description", help="(add) one line about it")
    p.set_defaults(func=cmd_sut)

    p = sub.add_parser("cache", help="show the cache's entries, sizes and ages; prune frees space")
    p.add_argument("action", nargs="?", choices=["show", "prune"], default="show")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="(prune) entries unused for DAYS days")
    p.add_argument("--keep-last", type=int, metavar="N", help="(prune) all but the N most recently used per recipe")
    p.add_argument("--dry-run", action="store_true", help="(prune) only say what would go")
    p.add_argument("--cache", type=_path)
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("coverage", help="run the boot suite on the SUT's coverage hypervisor and print how much "
                       "of Xen's SCMI code it executed (per file, per scenario, the lines never executed) and "
                       "what coverage costs a boot")
    add_build_options(p)
    p.add_argument("-k", dest="select", help="only the boot tests pytest -k selects")
    p.add_argument("--artifacts", type=_path, default=Path("artifacts") / "coverage-run",
                   help="where the run's artifacts and report go (default artifacts/coverage-run)")
    p.add_argument("--cost-runs", type=int, default=3, help="plain and coverage boots timed for the cost (0: skip)")
    p.set_defaults(func=cmd_coverage)

    p = sub.add_parser("plan", help="write a scenario's boot plan (host and guest DTS, Xen's and dom0's command "
                       "lines, xl.cfg, load addresses, the QEMU command) without booting it")
    add_build_options(p)
    p.add_argument("--scenario", required=True, help="a scenario name (scenarios/*.toml) or a .toml path")
    p.add_argument("--out", type=_path, help="where it goes (default artifacts/plan/SCENARIO)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("boot", help="boot a scenario and attach this terminal to its console (Ctrl-t q quits)",
                       description="Build what is missing, boot scenarios/SCENARIO.toml on the board, attach "
                       "this terminal (raw: keys and bytes go through as typed and sent) to UART0 (Xen, dom0, "
                       "dom0less guests), replaying it from Xen's banner; the SCMI trace (UART1) is in the "
                       "workdir's uart1.log. Keys: Ctrl-a three times switches Xen's console input (Xen, dom0, "
                       "each dom0less domain; xl domUs: `xl console NAME` in dom0, Ctrl-] leaves it); Ctrl-t q "
                       "quits; Ctrl-t t shows the last trace lines; Ctrl-t Ctrl-t sends Ctrl-t; Ctrl-t ? lists "
                       "the keys.")
    add_build_options(p)
    p.add_argument("--scenario", help="a scenario name (scenarios/*.toml) or a .toml path")
    p.add_argument("--workdir", type=_path, help="where the DTs, logs and sockets go "
                   "(default artifacts/interactive/SCENARIO)")
    p.add_argument("--print-qemu-cmd", action="store_true",
                   help="print a qemu-system-aarch64 command that boots the same system by hand (UART0 and "
                   "QEMU's monitor on the terminal, QEMU's escape moved to Ctrl-t so that Ctrl-a reaches Xen), "
                   "and its keys on stderr, and exit")
    p.add_argument("--gdb", action="store_true", help="start QEMU's gdbstub and print the gdb-multiarch line "
                   "that loads xen-syms and TF-A's ELF files")
    p.add_argument("--no-wait", action="store_true", help="attach at once instead of after dom0's shell is up "
                   "(xl guests are then not created)")
    p.set_defaults(func=cmd_boot)

    p = sub.add_parser("report", help="boot time per stage and scenario from JUnit XML: table, markdown, SVG plot, "
                       "slowdowns vs earlier nights",
                       description="Boot time per stage and scenario (test id + boot name) from the JUnit XML of "
                       "`pytest -m boot --junitxml=...`, with pass/fail/skip counts. The files given are the shards "
                       "of one night, merged; earlier nights (--history, --history-dir) add a time series to the "
                       "plot and flag scenarios whose total grew by more than --threshold percent.")
    p.add_argument("junit", nargs="*", type=_path, metavar="JUNIT",
                   help="tonight's JUnit XML files, or directories of them (shards are merged)")
    p.add_argument("--history", nargs="+", type=_path, default=[], metavar="NIGHT",
                   help="earlier nights, oldest first: each a JUnit XML file or a directory of one night's "
                   "shard files (without JUNIT, the last one is the night reported)")
    p.add_argument("--history-dir", type=_path, metavar="DIR",
                   help="a directory with one subdirectory (or .xml file) per night, in name order: "
                   "name them by date, e.g. DIR/2026-11-22/")
    p.add_argument("--plot", type=_path, metavar="FILE.svg",
                   help="write stacked bars per scenario (and, with history, a time series per scenario)")
    p.add_argument("--markdown", metavar="FILE",
                   help="also write the report as markdown (CI job summaries); '-' prints it instead of the table")
    p.add_argument("--threshold", type=float, default=20.0, metavar="PERCENT",
                   help="flag scenarios whose total grew by more than this vs the previous night (default 20)")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit with status 3 when a scenario is flagged")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("record", help="review and accept what `pytest --record` observed; list records no test reads",
                       description="A revision's record (records/NAME.toml) is what Xen was seen to do on real boots; "
                       "`pytest -m boot --sut SUT --record` writes what it lacks to records/NAME.pending.toml. "
                       "status: every record and what is pending; diff: what accepting NAME would change; accept: "
                       "take NAME's pending entries (a reviewer's defect/defect_line kept); check: entries no test "
                       "reads any more (exit 1 when there are).")
    p.add_argument("action", choices=["status", "diff", "accept", "check"], nargs="?", default="status")
    p.add_argument("name", nargs="?", help="(diff, accept) the record's name: a SUT's record (harness sut list)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("matrix", help="the revision matrix: every recorded behaviour across the SUTs, differences "
                       "and defects marked, as markdown and an HTML page (from the records; no boot)")
    p.add_argument("--sut", action="append", default=[], help="a column (repeat; default: every shipped SUT)")
    p.add_argument("--out", type=_path, default=Path("docs"), help="directory for revision-matrix.md/.html (default docs)")
    p.add_argument("--board", default="qemu-virt", help="the board the records' per-board entries are read for")
    p.add_argument("--junit", nargs="+", type=_path, metavar="JUNIT",
                   help="a night's JUnit files (or directories): mark the recorded behaviours its boots broke")
    p.set_defaults(func=cmd_matrix)
    return ap


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):     # an ASCII locale must not turn a description into a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parser().parse_args(argv)
    try:
        refuse_empty(args)
        return args.func(args)
    except HarnessError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
