"""Boot-time report from pytest JUnit XML: a table per stage and scenario, a markdown
summary for CI, an SVG plot, and a night-over-night comparison that flags slowdowns.

The boot fixtures record, per boot, JUnit properties `time_<boot>_<milestone>`: `prepare`
is host-side preparation in seconds; every other one (firmware, xen, kernel, shell) is
the time since QEMU started at which the boot *reached* that milestone (TF-A's banner,
Xen's banner, Linux starting, the shell answering). The report turns these into phases
named by what runs in them: `qemu` (QEMU start -> TF-A's banner), `firmware` (TF-A and the
loader, up to Xen's or the native Linux's first line), `xen` (Xen, up to dom0's Linux),
`linux` (Linux up to its shell). A boot's total is prepare + the time at which it
reached its last milestone.

A boot shared by several tests (`shared_boot`: one per scenario and module) is recorded
by each of them; it is one boot here, drawn, counted and compared once: the tests that
name the same boot directory (property `boot_dir_<boot>`), or, in files without it, the
tests of one module recording identical times for one boot name.

Inputs: a *night* is one or more JUnit XML files (the shards of one run, merged) or a
directory holding them. The last night given is reported; the earlier ones are its
history (oldest first), used for the comparison and the time series.

A *scenario* is (configuration, test id, boot name), or for a shared boot (configuration,
test module, boot name). The configuration is the JUnit
testsuite name when it is not pytest's default: CI jobs set it per matrix cell with
`-o junit_suite_name=...`, so the same test on two boards is two scenarios while the
shards of one cell merge.

Standard library only (the report job needs no installed dependencies:
`python3 -m harness.run.cli report ...` from a checkout works).
"""
from __future__ import annotations

import math
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from xml.sax.saxutils import escape

from ..errors import HarnessError

STAGES = ("prepare", "firmware", "xen", "kernel", "shell")     # the milestones recorded, in boot order
# A phase is named by what runs in it, i.e. by the milestone it starts at (None: QEMU's start)
PHASE_AFTER = {None: "qemu", "firmware": "firmware", "xen": "xen", "kernel": "linux"}
PHASES = ("prepare", "qemu", "firmware", "xen", "linux")        # their order
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")
BAD = ("error", "failed")                                         # a boot's outcome if any of its tests had it
DEFAULT_THRESHOLD = 20.0                                         # percent
_PROP = re.compile(r"^time_(?P<boot>.+)_(?P<stage>[A-Za-z0-9-]+)$")
_FIX_JUNIT = "pass the file pytest wrote with --junitxml=FILE, or a directory of such files"


# ---------------------------------------------------------------------------- model

@dataclass(frozen=True, order=True)
class Scenario:
    config: str       # JUnit testsuite name ("" for pytest's default)
    test: str         # pytest node id (tests/boot/test_x.py::test_y[param])
    boot: str         # BootSpec name

    @property
    def short_test(self) -> str:
        """test_x::test_y[param], as in the artifacts directory (a shared boot: test_x)."""
        path, _, rest = self.test.partition("::")
        return f"{Path(path).stem}::{rest}" if rest else Path(path).stem if path.endswith(".py") else self.test

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.config, self.short_test, f"[{self.boot}]") if p)


@dataclass
class BootTiming:
    """One boot's recorded stage times (prepare: seconds; others: seconds since QEMU start)."""
    stages: dict[str, float]

    def durations(self) -> dict[str, float]:
        """Seconds spent in each phase, in boot order, named by what ran (PHASE_AFTER): the
        time up to the `xen` milestone is the firmware's, not Xen's."""
        out = {}
        if "prepare" in self.stages:
            out["prepare"] = self.stages["prepare"]
        prev, since = 0.0, None
        for stage, t in sorted(((s, t) for s, t in self.stages.items() if s != "prepare"),
                               key=lambda st: (st[1], _stage_rank(st[0]))):
            phase = PHASE_AFTER.get(since, since)
            out[phase] = out.get(phase, 0.0) + max(t - prev, 0.0)
            prev, since = t, stage
        return out

    @property
    def total(self) -> float:
        reached = [t for s, t in self.stages.items() if s != "prepare"]
        return self.stages.get("prepare", 0.0) + (max(reached) if reached else 0.0)

    def comparable(self, other: "BootTiming") -> bool:
        """Same stages reached: a boot that died in the kernel is not compared with one that got a shell."""
        return set(self.stages) == set(other.stages)


@dataclass
class TestResult:
    config: str
    test: str
    outcome: str
    message: str
    boots: dict[str, BootTiming]
    source: Path
    seconds: float = 0.0             # the testcase's time (pytest: setup + call + teardown)
    sut: str = ""                    # its system under test (property `sut`), "" for none
    boot_dirs: dict[str, str] = field(default_factory=dict)   # boot -> its directory (`boot_dir_<boot>`)
    records: tuple[str, ...] = ()    # the record entries it read (`record_<section>`: "records/x.toml [s.key]")


@dataclass
class Boot:
    """One boot of a night, and the tests that ran on it (several: a shared boot)."""
    timing: BootTiming
    outcome: str                     # its tests' worst (BAD first, else passed, else theirs)
    tests: list[str]


@dataclass
class Night:
    label: str
    sources: list[Path] = field(default_factory=list)
    tests: dict[tuple[str, str], TestResult] = field(default_factory=dict)
    timestamp: str = ""              # earliest testsuite timestamp, if any
    warnings: list[str] = field(default_factory=list)

    def add(self, results: list[TestResult]) -> None:
        for r in results:
            key = (r.config, r.test)
            old = self.tests.get(key)
            if old is not None:
                self.warnings.append(f"{r.test} is in both {old.source} and {r.source}; "
                                     f"using {r.source}")
            self.tests[key] = r

    @property
    def counts(self) -> Counter:
        return Counter(r.outcome for r in self.tests.values())

    @property
    def per_sut(self) -> dict[str, tuple[float, int]]:
        """SUT -> (seconds its tests took, how many): the suite's time per system under test."""
        out: dict[str, tuple[float, int]] = {}
        for r in self.tests.values():
            if r.sut:
                secs, n = out.get(r.sut, (0.0, 0))
                out[r.sut] = (secs + r.seconds, n + 1)
        return out

    @property
    def boots(self) -> dict[Scenario, Boot]:
        """Every boot with timings, once however many tests recorded it (a shared boot:
        scenario (config, test module, boot name), its tests listed)."""
        groups: dict[tuple, tuple[str, BootTiming, list[TestResult], bool]] = {}
        for r in self.tests.values():
            for name, t in r.boots.items():
                module = r.test.split("::", 1)[0]
                d = r.boot_dirs.get(name)
                if d:                # <artifacts>/<module>/<boot> for a shared boot, .../<test>/<boot> per test
                    key, shared = (r.config, r.sut, d), Path(d).parent.name == Path(module).stem
                else:                # older files: the same times for one boot name in one module
                    key, shared = (r.config, r.sut, module, name, tuple(sorted(t.stages.items()))), False
                groups.setdefault(key, (name, t, [], shared))[2].append(r)
        out = {}
        for name, t, results, shared in groups.values():
            first = results[0]
            test = first.test.split("::", 1)[0] if shared or len(results) > 1 else first.test
            outcomes = {r.outcome for r in results}
            worst = next((o for o in BAD if o in outcomes), "passed" if "passed" in outcomes else first.outcome)
            out[Scenario(first.config, test, name)] = Boot(t, worst, [r.test for r in results])
        return out


@dataclass
class Row:
    scenario: Scenario
    outcome: str
    timing: BootTiming
    tests: int = 1                   # how many tests ran on this boot
    prev_night: str | None = None
    prev_total: float | None = None

    @property
    def change(self) -> float | None:
        """Relative change of the total vs the previous comparable night (0.25 = +25%)."""
        if self.prev_total is None or self.prev_total <= 0:
            return None
        return self.timing.total / self.prev_total - 1.0


@dataclass
class Report:
    nights: list[Night]              # oldest first; the last one is reported
    threshold: float                 # percent
    rows: list[Row]
    missing: list[tuple[Scenario, str]]   # scenarios with timings in an earlier night, not tonight

    @property
    def night(self) -> Night:
        return self.nights[-1]

    @cached_property
    def stages(self) -> list[str]:
        """The phase columns: known phases that occur, in boot order, then any others."""
        seen = {s for n in self.nights for b in n.boots.values() for s in b.timing.durations()}
        return sorted(seen, key=lambda s: (PHASES.index(s) if s in PHASES else len(PHASES), s))

    def regressed(self, row: Row) -> bool:
        return row.change is not None and row.change * 100.0 > self.threshold

    @cached_property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if self.regressed(r)]


def _stage_rank(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


# ---------------------------------------------------------------------------- reading

def parse_junit(path: Path) -> tuple[list[TestResult], str]:
    """The test results in one JUnit XML file, and its earliest testsuite timestamp."""
    path = Path(path)
    if not path.exists():
        raise HarnessError("no such file", where=str(path), fix=_FIX_JUNIT)
    if not path.is_file():
        raise HarnessError("not a regular file", where=str(path), fix=_FIX_JUNIT)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise HarnessError(f"not XML ({e})", where=str(path),
                           fix=_FIX_JUNIT + " (an empty or truncated file means pytest did not finish: rerun it)") \
            from None
    except OSError as e:
        raise HarnessError(f"cannot read it: {e.strerror}", where=str(path), fix=_FIX_JUNIT) from None
    if root.tag == "testsuite":
        suites = [root]
    elif root.tag == "testsuites":
        suites = root.findall("testsuite")
    else:
        raise HarnessError(f"not a JUnit XML report: its root element is <{root.tag}>, "
                           "not <testsuites> or <testsuite>", where=str(path), fix=_FIX_JUNIT)
    results = []
    stamps = []
    for suite in suites:
        name = suite.get("name", "")
        config = "" if name in ("", "pytest") else name
        if suite.get("timestamp"):
            stamps.append(suite.get("timestamp"))
        for case in suite.iter("testcase"):
            results.append(_testcase(case, config, path))
    return results, min(stamps) if stamps else ""


def _nodeid(case: ET.Element) -> str:
    """pytest's node id from xunit attributes: file + class path + name."""
    name, classname, file = case.get("name", "?"), case.get("classname", ""), case.get("file")
    if file:
        module = file[:-3].replace("/", ".").replace("\\", ".") if file.endswith(".py") else file
        classes = classname[len(module) + 1:].split(".") if classname.startswith(module + ".") else []
        return "::".join([file, *classes, name])
    return f"{classname}::{name}" if classname else name


def _testcase(case: ET.Element, config: str, path: Path) -> TestResult:
    test = _nodeid(case)
    outcome, message = "passed", ""
    for tag, out in (("skipped", "skipped"), ("error", "error"), ("failure", "failed")):
        el = case.find(tag)
        if el is not None:       # failure beats error (teardown) beats skipped
            outcome = "xfailed" if tag == "skipped" and el.get("type") == "pytest.xfail" else out
            lines = (el.get("message") or el.text or "").strip().splitlines()
            message = lines[0] if lines else ""
    props, boot_dirs = {}, {}
    sut = next((p.get("value", "") for p in case.iter("property") if p.get("name") == "sut"), "")
    try:
        seconds = max(0.0, float(case.get("time", "0")))
    except ValueError:
        seconds = 0.0
    for p in case.iter("property"):
        if p.get("name", "").startswith("boot_dir_"):
            boot_dirs[p.get("name")[len("boot_dir_"):]] = p.get("value", "")
            continue
        m = _PROP.match(p.get("name", ""))
        if m:
            props.setdefault(m["boot"], {})[m["stage"]] = p.get("value", "")
    boots = {}
    for boot, stages in props.items():
        if not any(s in STAGES for s in stages):
            continue              # a time_* property that is not a boot timing
        timing = {}
        for stage, value in stages.items():
            try:
                secs = float(value)
                if not math.isfinite(secs) or secs < 0:
                    raise ValueError
            except ValueError:
                raise HarnessError(f"test {test}: value {value!r} is not a number of seconds",
                                   where=str(path), field=f"property time_{boot}_{stage}",
                                   fix="boot timings must be recorded as seconds (a float); regenerate "
                                       "the report with the harness's pytest plugin") from None
            timing[stage] = secs
        boots[boot] = BootTiming(timing)
    read = tuple(p.get("value", "") for p in case.iter("property") if p.get("name", "").startswith("record_"))
    return TestResult(config, test, outcome, message, boots, path, seconds, sut, boot_dirs, read)


def _xml_files(path: Path) -> list[Path]:
    path = Path(path)
    if not path.exists():
        raise HarnessError("no such file or directory", where=str(path), fix=_FIX_JUNIT)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.xml") if p.is_file())
        if not files:
            raise HarnessError("no JUnit XML files (*.xml) in this directory", where=str(path),
                               fix=_FIX_JUNIT)
        return files
    return [path]


def load_night(paths: list[Path], label: str | None = None) -> Night:
    """One night from its JUnit files (shards, merged) and directories of them."""
    files: list[Path] = []
    for p in paths:
        for f in _xml_files(p):
            if f.resolve() not in {x.resolve() for x in files}:
                files.append(f)
    if label is None:
        label = _label(paths)
    night = Night(label)
    stamps = []
    for f in files:
        results, stamp = parse_junit(f)
        night.sources.append(f)
        night.add(results)
        if stamp:
            stamps.append(stamp)
    night.timestamp = min(stamps) if stamps else ""
    return night


def _label(paths: list[Path]) -> str:
    if len(paths) == 1:
        p = Path(paths[0])
        return p.name if p.is_dir() else p.stem
    parents = {Path(p).resolve().parent for p in paths}
    return parents.pop().name if len(parents) == 1 else f"{Path(paths[0]).stem} +{len(paths) - 1}"


def nights_in_dir(directory: Path) -> list[Night]:
    """Every night in a history directory, in name order: each subdirectory (its *.xml
    files are that night's shards) and each *.xml file directly in it is one night."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HarnessError("not a directory", where=str(directory),
                           fix="give --history-dir a directory with one subdirectory (or .xml file) per night, "
                               "named so that they sort by date, e.g. 2026-11-22/")
    entries = sorted(p for p in directory.iterdir()
                     if (p.is_dir() and any(p.rglob("*.xml"))) or (p.is_file() and p.suffix == ".xml"))
    if not entries:
        raise HarnessError("no nights in this directory (no subdirectory with *.xml files, no *.xml file)",
                           where=str(directory),
                           fix="put each night's JUnit files in a subdirectory named by date, e.g. 2026-11-22/")
    return [load_night([p]) for p in entries]


# ---------------------------------------------------------------------------- comparing

def build_report(nights: list[Night], threshold: float = DEFAULT_THRESHOLD) -> Report:
    if not nights:
        raise HarnessError("no JUnit XML given", fix="harness report artifacts/junit.xml")
    if threshold < 0 or not math.isfinite(threshold):
        raise HarnessError(f"threshold {threshold} is not a percentage >= 0", field="--threshold",
                           fix="e.g. --threshold 20 flags totals that grew by more than 20%")
    boots = [n.boots for n in nights]
    rows = []
    for scen, boot in sorted(boots[-1].items()):
        row = Row(scen, boot.outcome, boot.timing, len(boot.tests))
        for earlier, earlier_boots in reversed(list(zip(nights[:-1], boots[:-1]))):
            prev = earlier_boots.get(scen)
            if prev is not None and prev.timing.comparable(boot.timing):
                row.prev_night, row.prev_total = earlier.label, prev.timing.total
                break
        rows.append(row)
    missing = {}
    for earlier, earlier_boots in zip(nights[:-1], boots[:-1]):
        for scen in earlier_boots:
            if scen not in boots[-1]:
                missing[scen] = earlier.label
    return Report(nights, threshold, rows, sorted(missing.items()))


# ---------------------------------------------------------------------------- text and markdown

def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _pct(change: float | None) -> str:
    return "" if change is None else f"{round(change * 100) + 0:+d}%"


def _table(report: Report) -> tuple[list[str], list[list[str]]]:
    with_config = any(r.scenario.config for r in report.rows)
    head = (["config"] if with_config else []) + ["test", "boot", "result"] + report.stages + ["total"]
    history = len(report.nights) > 1
    if history:
        head += ["prev", "change"]
    body = []
    for r in report.rows:
        d = r.timing.durations()
        test = r.scenario.short_test + (f" ({r.tests} tests)" if r.tests > 1 else "")
        line = ([r.scenario.config] if with_config else []) + [test, r.scenario.boot, r.outcome]
        line += [_secs(d.get(s)) for s in report.stages] + [_secs(r.timing.total)]
        if history:
            flag = " SLOWER" if report.regressed(r) else ""
            line += [_secs(r.prev_total), _pct(r.change) + flag]
        body.append(line)
    return head, body


def _per_sut_line(night: Night) -> str:
    """'v5 229.8 s (24 tests), upstream-4.20 41.0 s (9 tests)': the suite's time per SUT
    (the sum of its tests' durations; what issue 12 measures against its 2 minutes)."""
    return ", ".join(f"{sut} {secs:.1f} s ({n} tests)" for sut, (secs, n) in sorted(night.per_sut.items()))


def _counts_line(night: Night) -> str:
    c = night.counts
    return (f"{c['passed']} passed, {c['failed']} failed, {c['error']} errors, "
            f"{c['skipped']} skipped, {c['xfailed']} xfailed ({sum(c.values())} tests)")


def _header(report: Report) -> str:
    n = report.night
    run = f", run {n.timestamp[:16].replace('T', ' ')}" if n.timestamp else ""
    files = f"{len(n.sources)} JUnit file{'s' if len(n.sources) != 1 else ''}"
    hist = ""
    if len(report.nights) > 1:
        hist = (f"; history: {len(report.nights) - 1} earlier night(s), "
                f"flagging totals up by more than {report.threshold:g}%")
    return f"night {n.label} ({files}{run}){hist}"


STAGE_NOTE = ("Phase columns are seconds spent in each phase, named by what runs in it: prepare = host-side "
              "preparation before QEMU starts; qemu = QEMU start -> TF-A's banner; firmware = TF-A and the "
              "loader, up to Xen's banner (native: Linux's first line); xen = Xen, up to dom0's Linux "
              "starting; linux = Linux, up to its shell answering; total = prepare + QEMU start -> the "
              "last milestone reached. A boot shared by several tests is one row.")


def format_text(report: Report) -> str:
    out = [f"Boot times: {_header(report)}", f"Tests: {_counts_line(report.night)}"]
    if report.night.per_sut:
        out.append(f"Time per SUT: {_per_sut_line(report.night)}")
    out.append("")
    head, body = _table(report)
    if body:
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        numeric = {i for i, h in enumerate(head) if h in report.stages or h in ("total", "prev", "change")}

        def fmt(cells):
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        out += [fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]
        out += ["", STAGE_NOTE]
    else:
        out.append("No boot timings in these files (no test recorded time_<boot>_<stage> properties).")
    out += _lists(report, bullet="  ")
    return "\n".join(out) + "\n"


def _lists(report: Report, bullet: str, md: bool = False) -> list[str]:
    out = []
    code = (lambda s: f"`{s}`") if md else (lambda s: s)
    if report.regressions:
        out += ["", f"{'**' if md else ''}SLOWER: {len(report.regressions)} scenario(s) "
                    f"grew by more than {report.threshold:g}% in total{'**' if md else ''}"]
        out += [f"{bullet}{code(r.scenario.label)}: {r.prev_total:.2f} s ({r.prev_night}) -> "
                f"{r.timing.total:.2f} s ({_pct(r.change)})" for r in report.regressions]
    if report.missing:
        out += ["", "No timings tonight for (they had some in an earlier night):"]
        out += [f"{bullet}{code(s.label)} (last: {night})" for s, night in report.missing]
    bad = [r for r in report.night.tests.values() if r.outcome in ("failed", "error")]
    if bad:
        out += ["", "Failed:"]
        out += [f"{bullet}{code(' '.join(p for p in (r.config, r.test) if p))} ({r.outcome})"
                + (f": {r.message[:200]}" if r.message else "") for r in bad]
    for w in (w for n in report.nights for w in n.warnings):
        out += [f"{bullet}warning: {w}"]
    return out


def format_markdown(report: Report, plot_name: str | None = None) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")
    out = ["### Boot times", "", f"{_header(report)}  ", f"Tests: **{_counts_line(report.night)}**"]
    if report.night.per_sut:
        out[-1] += "  "
        out.append(f"Time per SUT: {_per_sut_line(report.night)}")
    out.append("")
    head, body = _table(report)
    if body:
        numeric = [h in report.stages or h in ("total", "prev", "change") for h in head]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
        for b in body:
            b = [f"**{c.replace(' SLOWER', '')} slower**" if c.endswith(" SLOWER") else c for c in b]
            out.append("| " + " | ".join(cell(c) for c in b) + " |")
        out += ["", STAGE_NOTE]
    else:
        out.append("No boot timings in these files.")
    out += _lists(report, bullet="- ", md=True)
    if plot_name:
        out += ["", f"Plot: `{plot_name}` (in the job's artifacts)."]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- SVG

COLOURS = {"prepare": "#9e9e9e", "qemu": "#9467bd", "firmware": "#8c564b", "xen": "#1f77b4",
           "linux": "#2ca02c"}
_EXTRA = ("#ff7f0e", "#17becf", "#bcbd22", "#e377c2")
WIDTH, PAD = 960, 16


def _colour(stage: str, stages: list[str]) -> str:
    return COLOURS.get(stage) or _EXTRA[[s for s in stages if s not in COLOURS].index(stage) % len(_EXTRA)]


def ticks(top: float, most: int = 8) -> list[float]:
    """Axis ticks 0, step, 2 step ... up to the first at or above top, step 1, 2 or 5 x 10^k
    seconds: the axis ends on a tick, so every bar is read against labelled seconds."""
    top = max(top, 1e-3)
    for k in range(-3, 7):
        for m in (1, 2, 5):
            step = m * 10.0 ** k
            if math.ceil(top / step - 1e-9) <= most:
                return [round(i * step, 6) for i in range(math.ceil(top / step - 1e-9) + 1)]
    return [0.0, top]


def _tick_label(v: float) -> str:
    return f"{v:g} s"


def _fit(text: str, px: float, size: float, middle: bool = False) -> str:
    """text cut to about px pixels at font size `size` (at the end, or in the middle)."""
    n = max(int(px / (size * 0.6)), 4)
    if len(text) <= n:
        return text
    if middle:
        head = (n - 1) // 2
        return text[:head] + "\u2026" + text[len(text) - (n - 1 - head):]
    return text[:n - 1] + "\u2026"


class _Svg:
    def __init__(self):
        self.parts: list[str] = []

    def rect(self, x, y, w, h, fill, title=None, extra=""):
        t = f"<title>{escape(title)}</title>" if title else ""
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
                          f'fill="{fill}"{extra}>{t}</rect>')

    def text(self, x, y, s, size=11, anchor="start", fill="#222", bold=False, title=None):
        weight = ' font-weight="bold"' if bold else ""
        t = f"<title>{escape(title)}</title>" if title else ""
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'fill="{fill}"{weight}>{t}{escape(s)}</text>')

    def line(self, x1, y1, x2, y2, stroke="#bbb"):
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"/>')

    def done(self, height: float) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
                f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="sans-serif">\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.parts) + "\n</svg>\n")


def render_svg(report: Report) -> str:
    """Stacked horizontal bars (tonight, per scenario) and, with history, one small
    stacked-column chart per scenario: total per night, coloured by stage."""
    svg, stages = _Svg(), report.stages
    y = PAD + 14
    svg.text(PAD, y, f"Boot time per stage and scenario, night {report.night.label}", size=14, bold=True)
    y += 18
    svg.text(PAD, y, f"Tests: {_counts_line(report.night)}", size=11, fill="#555")
    y += 15
    svg.text(PAD, y, _fit(_header(report), WIDTH - 2 * PAD, 11), size=11, fill="#555")
    y += 16
    x = PAD
    for s in stages:                       # legend
        svg.rect(x, y - 9, 10, 10, _colour(s, stages))
        svg.text(x + 14, y, s, size=11)
        x += 24 + 7 * len(s)
    y += 14

    bar_w = WIDTH - 2 * PAD - 150
    axis = ticks(max((r.timing.total for r in report.rows), default=0.0))
    top = axis[-1]
    if report.rows:                        # the seconds axis, its grid through every bar
        y += 12
        grid_h = 36 * len(report.rows) + 8
        for v in axis:
            gx = PAD + v / top * bar_w
            svg.line(gx, y + 2, gx, y + 2 + grid_h, "#e4e4e4")
            svg.text(gx, y, _tick_label(v), size=9, anchor="middle", fill="#555")
        svg.line(PAD, y + 2 + grid_h, PAD + bar_w, y + 2 + grid_h, "#888")
    for r in report.rows:
        slower = report.regressed(r)
        colour = "#c62828" if slower or r.outcome in ("failed", "error") else "#222"
        label = r.scenario.label + (f" ({r.tests} tests)" if r.tests > 1 else "") \
            + ("" if r.outcome == "passed" else f" ({r.outcome})")
        svg.text(PAD, y + 11, _fit(label, WIDTH - 2 * PAD, 11, middle=True), size=11, fill=colour, bold=slower,
                 title=label)
        x = PAD
        for stage, secs in r.timing.durations().items():
            w = secs / top * bar_w
            svg.rect(x, y + 15, w, 14, _colour(stage, stages), title=f"{stage}: {secs:.2f} s")
            x += w
        note = f"{r.timing.total:.2f} s"
        if r.change is not None:
            note += f" ({_pct(r.change)})"
        svg.text(x + 6, y + 26, note, size=11, fill=colour, bold=slower)
        y += 36
    if not report.rows:
        svg.text(PAD, y + 12, "no boot timings in these files", size=12, fill="#555")
        y += 24
    else:
        y += 12

    if len(report.nights) > 1:
        y = _history(svg, report, y + 16)
    return svg.done(y + PAD)


def _history(svg: _Svg, report: Report, y: float) -> float:
    stages, nights = report.stages, report.nights
    svg.text(PAD, y + 12, f"Total boot time per night, stacked by phase ({nights[0].label} .. {nights[-1].label}; "
             "one scale for all)", size=14, bold=True)
    y += 26
    boots = [n.boots for n in nights]
    scenarios = sorted({s for b in boots for s in b})
    # one scale for every panel: a panel's height says seconds, comparable with its neighbours
    axis = ticks(max((b.timing.total for night in boots for b in night.values()), default=0.0))
    top = axis[-1]
    flagged = {r.scenario: r for r in report.regressions}
    cols, ph = 2, 170
    pw = (WIDTH - (cols + 1) * PAD) / cols
    for i, scen in enumerate(scenarios):
        px, py = PAD + (i % cols) * (pw + PAD), y + (i // cols) * (ph + PAD)
        row = flagged.get(scen)
        border = "#c62828" if row else "#ccc"
        svg.rect(px, py, pw, ph, "none", extra=f' stroke="{border}" stroke-width="{2 if row else 1}"')
        note = f"{_pct(row.change)} vs {row.prev_night}" if row else ""
        svg.text(px + 8, py + 15, _fit(scen.short_test, pw - 16, 11.5 if row else 11, middle=True), size=11,
                 bold=bool(row),
                 title=scen.label)
        sub = " ".join(p for p in (f"[{scen.boot}]", scen.config) if p)
        svg.text(px + 8, py + 29, _fit(sub, pw - 24 - len(note) * 7, 11), size=11, fill="#555", title=scen.label)
        if note:
            svg.text(px + pw - 8, py + 29, note, size=11, anchor="end", fill="#c62828", bold=True)
        cx, cy, cw, ch = px + 44, py + 44, pw - 52, ph - 66
        series = [(n, b.get(scen)) for n, b in zip(nights, boots)]
        svg.line(cx, cy + ch, cx + cw, cy + ch, "#888")
        svg.line(cx, cy, cx, cy + ch, "#888")
        for v in sorted({*axis[::max(1, math.ceil(len(axis) / 4))], axis[-1]}):
            ty = cy + ch - v / top * ch
            if v:
                svg.line(cx, ty, cx + cw, ty, "#eee")
            svg.text(cx - 4, ty + 3, _tick_label(v), size=9, anchor="end", fill="#555")
        slot = cw / len(nights)
        bw = min(slot * 0.7, 28)
        for j, (n, b) in enumerate(series):
            bx = cx + j * slot + (slot - bw) / 2
            if b is None:
                svg.text(bx + bw / 2, cy + ch - 3, "\u00d7", size=9, anchor="middle", fill="#999",
                         title=f"{n.label}: no timings")
                continue
            timing, outcome = b.timing, b.outcome
            by = cy + ch
            for stage, secs in timing.durations().items():
                h = secs / top * ch
                by -= h
                svg.rect(bx, by, bw, h, _colour(stage, stages),
                         title=f"{n.label} ({outcome}): {stage} {secs:.2f} s, total {timing.total:.2f} s")
            if slot >= 30:
                svg.text(bx + bw / 2, by - 3, f"{timing.total:.1f}", size=9, anchor="middle",
                         fill="#c62828" if outcome in ("failed", "error") else "#555")
        step = max(1, math.ceil(len(nights) * 64 / cw))
        for j in sorted({*range(0, len(nights), step), len(nights) - 1}):
            if j != len(nights) - 1 and len(nights) - 1 - j < step:
                continue                   # keep the last label readable
            label = _fit(nights[j].label, max(slot * step, 40), 9)
            lx, anchor = cx + j * slot + slot / 2, "middle"
            if lx + len(label) * 2.7 > cx + cw:          # the last label ends at the axis' end
                lx, anchor = cx + cw, "end"
            svg.text(lx, cy + ch + 12, label, size=9, anchor=anchor, fill="#555")
    rows = math.ceil(len(scenarios) / cols)
    return y + rows * (ph + PAD)


# ---------------------------------------------------------------------------- command

def main(junit: list[Path], *, history: list[Path] = (), history_dir: Path | None = None,
         plot: Path | None = None, markdown: str | None = None, threshold: float = DEFAULT_THRESHOLD,
         fail_on_regression: bool = False, out=None) -> int:
    """`harness report`: 0, or 3 with fail_on_regression when a scenario got slower."""
    out = out or sys.stdout
    if plot is not None and Path(plot).suffix.lower() != ".svg":
        raise HarnessError("the plot is written as SVG", where=str(plot), field="--plot",
                           fix="name the file *.svg, e.g. --plot boot-times.svg")
    nights = nights_in_dir(history_dir) if history_dir else []
    nights += [load_night([p]) for p in history]
    if junit:
        nights.append(load_night(list(junit)))
    if not nights:
        raise HarnessError("no JUnit XML given",
                           fix="harness report artifacts/junit.xml (several files: the shards of one night; "
                               "earlier nights with --history or --history-dir)")
    report = build_report(nights, threshold)
    if plot is not None:
        plot = Path(plot)
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot.write_text(render_svg(report), encoding="utf-8")
    md = format_markdown(report, plot.name if plot is not None else None) if markdown else None
    if markdown == "-":
        out.write(md)
    else:
        out.write(format_text(report))
        if markdown:
            Path(markdown).parent.mkdir(parents=True, exist_ok=True)
            Path(markdown).write_text(md, encoding="utf-8")
    if plot is not None and markdown != "-":
        out.write(f"plot: {plot}\n")
    return 3 if fail_on_regression and report.regressions else 0
