"""pytest plugin (entry point pytest11): markers, options, and the fixtures that
build through the cache and boot real systems.

Every test that boots (it uses `sut`, `harness_builder` or a fixture built on them)
runs once per system under test given with --sut (default: the shipped SUTs that can
be built here), with the SUT's name first in its id: test_reset_on_destroy[v5-xl-domu].

Fixtures:
  sut              (module)  the harness.images.sut.Sut of this parametrisation
  harness_builder  (module)  the Builder for that SUT and the options given
  artifacts        (test)    artifacts/<test id>/, kept on pass and on fail
  boot             (test)    boot(spec, until=State.SHELL) -> System; stopped at teardown
  xen_build        (module)  xen_build(variant=SUT's, needs=(CONFIG_X,)) -> cache entry, or skip
  needs            (module)  needs("reset-revokes-permissions", ...): skip unless the SUT's profile can

A test x SUT pair that cannot apply (the SUT's binding profile lacks a capability the test
needs: its `needs` marker, or its scenario's `needs`) is left out of collection, not
skipped: one line at the end says how many pairs and why (docs/running.md). Skips are kept
for what a SUT could run but this machine, board or build lacks.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ..errors import HarnessError
from ..data.profiles import CAPABILITIES

pytest_plugins = ["harness.run.shard",     # --shard I/N for parallel CI jobs
                  "harness.run.parallel"]  # -n N (pytest-xdist): whole boot groups per worker

MARKERS = {
    "boot": "boots a real system on qemu-system-aarch64 (slow)",
    "build": "builds real images through the cache (slow on a cold cache)",
    "multiagent": "needs a Xen with CONFIG_SCMI_SMC_MA (skipped with the reason otherwise)",
    "scenarios": "scenarios(family, [predicate]): parametrise over the scenarios of a family for --board",
    "any_sut": "runs under the first --sut only (it boots nothing that depends on the SUT)",
    "needs": "needs(capability, ..., lacks=(capability, ...)): runs only under the SUTs whose binding profile "
             "can (and, with lacks, cannot) do these (harness/data/profiles.py CAPABILITIES); the other SUTs' pairs "
             "are left out of collection, counted in one summary line",
}


def _directory(text: str) -> Path:
    """A directory option: an empty value is refused (Path('') would mean the current directory)."""
    if not text.strip():
        import argparse
        raise argparse.ArgumentTypeError("an empty path would mean the current directory: give a directory")
    return Path(text)


def pytest_addoption(parser):
    g = parser.getgroup("harness", "Xen SCMI harness")
    g.addoption("--board", help="board name or .toml (default qemu-virt)")
    g.addoption("--sut", action="append", default=[], metavar="NAME",
                help="system under test (images/xen/suts.toml or your own file; see `harness sut list`); "
                "repeat to run the boot suite under each (default: env HARNESS_SUT, comma-separated, "
                "else the shipped SUTs that can be built here)")
    g.addoption("--xen-src", help="'lock', a local Xen tree, or GIT_URL#REF")
    g.addoption("--xen-patches", help="patch series dir or mbox, or 'none' (default ../shared/sut's when present)")
    g.addoption("--tfa-src", help="'lock', a local TF-A tree, or GIT_URL#REF")
    g.addoption("--harness-cache", type=_directory, help="build cache directory")
    g.addoption("--artifacts", type=_directory, default=Path("artifacts"),
                help="directory for per-test artifacts (default ./artifacts)")
    g.addoption("--xen-coverage", action="store_true",
                help="boot the SUT's coverage hypervisor (its variant + '-coverage') and report which lines and "
                     "branches of Xen's SCMI code the selected boot tests executed (<artifacts>/coverage/)")
    g.addoption("--keep-qemu", action="store_true",
                help="on a failed boot test, keep QEMU running until Ctrl-C (to attach to its consoles)")
    g.addoption("--record", action="store_true",
                help="write what the SUT's record (records/<name>.toml) lacks or where a boot differs from it into "
                     "records/<name>.pending.toml, for review (`harness record diff|accept NAME`); never in CI")


REPO = Path(__file__).resolve().parents[2]
# the harness's state in pytest's stash, not as attributes of the config object
SUTS = pytest.StashKey[list]()         # the SUT names of this session, in order
BUILDERS = pytest.StashKey[dict]()     # SUT name -> its Builder
NOT_APPLICABLE = pytest.StashKey[dict]()   # SUT name -> {what it lacks: pairs left out}


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    _check_rootdir(config)
    if config.option.record and os.environ.get("CI"):
        raise pytest.UsageError("harness: --record in CI (env CI is set): CI asserts records, it never writes "
                                "them; record on your machine and commit the accepted records/<name>.toml")
    given = config.option.board or os.environ.get("HARNESS_BOARD")
    if given:                        # parsed now, so --collect-only and -k runs see a bad board too
        from ..data.board import load_board
        try:
            load_board(given)
        except HarnessError as e:
            raise pytest.UsageError(f"harness: --board {given}: {e}") from None


def _check_rootdir(config) -> None:
    """pytest finds its rootdir and pyproject.toml before plugins add their options, so
    `--board /path/b.toml` (a space, not '=') makes it take /path/b.toml for a test path:
    rootdir /path, no pyproject.toml, no testpaths/markers/junit settings. Say so instead
    of running a different suite."""
    if config.inipath is not None or not (REPO / "pyproject.toml").is_file():
        return
    try:
        Path.cwd().relative_to(REPO)
    except ValueError:
        return                       # pytest run from elsewhere on purpose
    raise pytest.UsageError(
        f"harness: pytest took rootdir {config.rootpath} and did not read {REPO / 'pyproject.toml'}: an option "
        f"value given after a space (e.g. --board /path/board.toml) looks like a test path to pytest before "
        f"the harness's options exist. Write it with '=' (--board=/path/board.toml, --xen-src=DIR, "
        f"--sut=NAME), or use the environment (HARNESS_BOARD=/path/board.toml).")


def sut_names(config) -> list[str]:
    """The SUTs this session runs under, in order (checked: an unknown name ends the session)."""
    if SUTS not in config.stash:
        from ..images import sut
        from ..images.build import OWN_TREE
        own = config.option.xen_src or os.environ.get("HARNESS_XEN_SRC")
        own = own if own and own != "lock" and Path(own).expanduser().is_dir() else None
        names = config.option.sut or [n for n in os.environ.get("HARNESS_SUT", "").split(",") if n] \
            or ([OWN_TREE] if own else sut.default_names())     # --xen-src DIR alone: that tree
        try:
            for n in names:
                if n != OWN_TREE:
                    sut.get(n)
        except HarnessError as e:
            pytest.exit(f"harness: {e}", returncode=4)
        config.stash[SUTS] = list(dict.fromkeys(names))
    return config.stash[SUTS]


def _builder(config, sut_name: str | None = None):
    """One Builder per SUT, made from the options (bad options end the session, explained)."""
    builders = config.stash.setdefault(BUILDERS, {})
    sut_name = sut_name or sut_names(config)[0]
    if sut_name not in builders:
        from ..images.build import Builder, BuildOptions
        o = config.option
        try:
            b = Builder(BuildOptions.from_env(
                board=o.board, sut=sut_name, xen_src=o.xen_src, xen_patches=o.xen_patches, tfa_src=o.tfa_src,
                cache_dir=o.harness_cache))
        except HarnessError as e:
            pytest.exit(f"harness: {e}", returncode=4)
        if getattr(o, "xen_coverage", False):
            import dataclasses
            from ..images.build.xen import variants
            from .coverage import variant_for
            cov = variant_for(b.sut.variant)
            if cov not in variants():
                pytest.exit(f"harness: --xen-coverage: SUT {sut_name}'s variant {b.sut.variant!r} has no coverage "
                            f"variant {cov!r} in images/xen/variants.toml (add one, or leave this SUT out)",
                            returncode=4)
            b.sut = dataclasses.replace(b.sut, variant=cov)
            b.coverage = True
        builders[sut_name] = b
    return builders[sut_name]


@pytest.hookimpl(tryfirst=True)     # before the scenario parametrisation: ids read sut-scenario
def pytest_generate_tests(metafunc):
    if "sut" in metafunc.fixturenames:
        names = sut_names(metafunc.config)
        if metafunc.definition.get_closest_marker("any_sut"):
            names = names[:1]
        metafunc.parametrize("sut", names, indirect=True, scope="module")


@pytest.fixture(scope="module")
def sut(request):
    return _builder(request.config, getattr(request, "param", None)).sut


def _command_line_timeout_wins(config, items) -> None:
    """--timeout N given on the command line wins over the tests' own timeout markers
    (pytest-timeout lets a marker win; a person who types --timeout means it)."""
    if getattr(config.option, "timeout", None) is not None:
        if config.option.timeout < 0:    # pytest-timeout takes <= 0 as "no timeout": every wait unbounded
            raise pytest.UsageError(f"harness: --timeout {config.option.timeout} is negative, which pytest-timeout "
                                    "takes as no timeout at all: give seconds > 0 (or 0 to switch them off on "
                                    "purpose)")
        for item in items:
            if item.get_closest_marker("timeout"):
                item.add_marker(pytest.mark.timeout(config.option.timeout), append=False)


def unmet(profile, item) -> list[str]:
    """What item's `needs` markers ask of a SUT that `profile` lacks ('!cap': has what it must not)."""
    missing = []
    for mark in item.iter_markers("needs"):
        missing += [c for c in mark.args if not profile.can(c) and c not in missing]
        missing += [f"!{c}" for c in mark.kwargs.get("lacks", ()) if profile.can(c) and f"!{c}" not in missing]
    return missing


def _profiles(config) -> dict:
    """SUT name -> its binding profile, for the SUTs whose profile is known without building
    (every named SUT; your tree's comes from its code, and a tree that cannot say is left to
    the tests, which report it)."""
    from ..images import sut
    from ..images.build import OWN_TREE, BuildOptions, own_tree
    out = {}
    for name in sut_names(config):
        try:
            if name != OWN_TREE:
                out[name] = sut.get(name).profile
            else:
                o = config.option
                out[name] = own_tree(BuildOptions.from_env(board=o.board, sut=name, xen_src=o.xen_src,
                                                           xen_patches=o.xen_patches)).profile
        except HarnessError:
            pass
    return out


def _leave_out_what_cannot_apply(config, items) -> None:
    """A test x SUT pair whose SUT's profile lacks what the test needs is no test at all:
    deselected (after -m/-k, so only pairs that would have run are counted), not skipped."""
    pairs = [i for i in items if "sut" in getattr(getattr(i, "callspec", None), "params", {})
             and i.get_closest_marker("needs")]
    if not pairs:
        return
    profiles = _profiles(config)
    left: dict[str, dict[str, int]] = {}
    out = []
    for item in pairs:
        name = item.callspec.params["sut"]
        missing = unmet(profiles[name], item) if name in profiles else []
        if missing:
            why = left.setdefault(name, {})
            why[", ".join(missing)] = why.get(", ".join(missing), 0) + 1
            out.append(item)
    if out:
        config.hook.pytest_deselected(items=out)
        gone = set(map(id, out))
        items[:] = [i for i in items if id(i) not in gone]
        config.stash[NOT_APPLICABLE] = left


def not_applicable_line(left: dict[str, dict[str, int]]) -> str:
    """The one line that says how many test x SUT pairs were left out, and why."""
    total = sum(n for why in left.values() for n in why.values())
    per = []
    for name, why in left.items():
        caps = list(dict.fromkeys(c for w in why for c in w.split(", ")))
        lacks = [c for c in caps if not c.startswith("!")]
        has = [c[1:] for c in caps if c.startswith("!")]
        reasons = ([f"lacks {', '.join(lacks)}"] if lacks else []) + ([f"is {', '.join(has)}"] if has else [])
        per.append(f"{name} {sum(why.values())} ({'; '.join(reasons)})")
    return (f"harness: {total} test x SUT pairs left out (not skipped): the SUT's binding profile cannot run "
            f"them: {', '.join(per)} (capabilities: harness/data/profiles.py)")


def pytest_terminal_summary(terminalreporter, config):
    if NOT_APPLICABLE in config.stash:
        terminalreporter.write_line(not_applicable_line(config.stash[NOT_APPLICABLE]))


@pytest.hookimpl(trylast=True)     # after -m/-k deselect: build only for what will run
def pytest_collection_modifyitems(session, config, items):
    """Leave out the test x SUT pairs that cannot apply, keep --shard's share, then build
    every image the selected boot tests may need before any test (and its timeout) starts:
    a cold cache costs minutes, a warm one a fraction of a second. Under -n the controller
    builds (harness/run/parallel.py); a worker says what it collected."""
    from . import parallel, shard
    _leave_out_what_cannot_apply(config, items)
    shard.deselect(config, items)
    _command_line_timeout_wins(config, items)
    if parallel.is_worker(config):
        parallel.write_groups(config, items, config.stash.get(NOT_APPLICABLE, {}))
        return
    if config.option.collectonly or not any(i.get_closest_marker("boot") for i in items):
        return
    build_images(config, {i.callspec.params.get("sut") for i in items if i.get_closest_marker("boot")
                          and hasattr(i, "callspec")} - {None})


def build_images(config, wanted: set[str]) -> None:
    """Build the images of the SUTs in wanted (none named: the first SUT's), with a line
    for each build on the terminal; a failed build ends the session, explained."""
    tr = config.pluginmanager.get_plugin("terminalreporter")

    def progress(label, state, secs):            # what builds, and its heartbeats; not what is cached
        if tr and state not in ("start", "cached"):
            tr.write_line(f"harness build: {label}: {state}" + (f" in {secs:.1f}s" if secs else ""))
    for name in [n for n in sut_names(config) if n in wanted] or sut_names(config)[:1]:
        b = _builder(config, name)
        if tr:
            tr.write_line(f"harness: SUT {b.sut.describe()}")
        b.progress = progress
        try:
            b.build()
        except HarnessError as e:
            pytest.exit(f"harness: building the images of SUT {name} failed: {e}", returncode=4)
        b.progress = lambda *a: None


@pytest.fixture(scope="module")
def harness_builder(request, sut):
    return _builder(request.config, sut.name)


@pytest.fixture(autouse=True)
def _record_sut(request, record_property):
    """JUnit: every test that runs under a SUT says which (and its profile), and every test
    that builds or boots what it ran on (board, sources, series, lock entries)."""
    if "sut" in request.fixturenames:
        s = request.getfixturevalue("sut")
        record_property("sut", s.name)
        record_property("sut_profile", s.profile.name)
        missing = unmet(s.profile, request.node)      # a pair collection could not judge (a tree's profile)
        if missing:
            pytest.skip(f"SUT {s.name} (profile {s.profile.name}) cannot run this test: "
                        + "; ".join(f"it lacks {c} ({CAPABILITIES[c]})" if c in CAPABILITIES
                                    else f"it is {c[1:]}, which this test's SUT must not be" for c in missing))
    if "harness_builder" in request.fixturenames:      # boot and shared_boot alike
        from .lifecycle import provenance
        prov = provenance(request.getfixturevalue("harness_builder"))
        for key, value in prov.items():
            record_property(key, value)
        if "sut" in request.fixturenames:
            prov = {"sut": f"{s.name} (profile {s.profile.name})", **prov}
        request.node._harness_provenance = prov          # for its <system-out> (_system_out)


@pytest.fixture(scope="module")
def needs(sut):
    """needs(capability, ...): skip, saying why, unless the SUT's profile can do them all
    (a test that always needs them says so by its `needs` marker instead: its pairs with a
    SUT that cannot are left out of collection)."""

    def check(*capabilities: str) -> None:
        missing = [c for c in capabilities if not sut.profile.can(c)]
        if missing:
            pytest.skip(f"SUT {sut.name} (profile {sut.profile.name}) lacks "
                        + "; ".join(f"{c} ({CAPABILITIES[c]})" for c in missing))
    return check


@pytest.fixture
def recorded(request, harness_builder, record_property):
    """recorded(section, key, observed, text="", context=None): assert what a boot observed
    against the SUT's record (records.py); with --record, write what the record lacks (the
    test passes) or where it differs (the test fails) to the pending file for review.
    Returns the accepted entry (or, when just recorded, the observation)."""
    from ..checks import records
    sut = harness_builder.sut
    name = records.sut_record(sut)

    def check(section: str, key: str, observed: dict, text: str = "", context: dict | None = None) -> dict:
        want = records.entry(name, section, key)
        record_property(f"record_{section}", f"records/{name}.toml [{section}.{key}]")
        if want is None and not request.config.option.record:
            pytest.fail(f"record {name} has no [{section}.{key}] ({records.SECTIONS[section]}): observe it with "
                        f"`pytest -m boot --sut {sut.name} --record -k {key}`, review `harness record diff {name}`, "
                        f"then `harness record accept {name}`; this boot observed:\n  {observed}", pytrace=False)
        if want is None:
            p = records.write_pending(name, section, key, observed)
            record_property("recorded", f"{p.name} [{section}.{key}]")
            return observed
        if want.get("defect"):
            line = f" ({want['defect_line']})" if want.get("defect_line") else ""
            record_property("sut_defect", want["defect"] + line)
        problems = records.compare(want, observed, text, context)
        if problems:
            if request.config.option.record:
                records.write_pending(name, section, key, observed)
            pytest.fail(f"SUT {sut.name} did otherwise than records/{name}.toml [{section}.{key}] says:\n  "
                        + "\n  ".join(problems) + (f"\n(written to records/{name}.pending.toml for review)"
                                                   if request.config.option.record else ""), pytrace=False)
        return want
    return check


class KnownBroken:
    """A check the SUT's record says it fails ([broken.<check>], records.py): inside
    `with known_broken("guest-scmi"):` a failure that shows the recorded evidence is noted
    (JUnit sut_defect) and the test goes on to its other checks; conclude() then makes the
    test a strict xfail. A failure without that evidence fails as ever, and the check passing
    fails too (the defect is gone: the record must say so)."""

    def __init__(self, record_property, sut):
        from ..checks import records
        self.record_property, self.sut, self.name = record_property, sut, records.sut_record(sut)
        self.hit: list[str] = []

    @contextlib.contextmanager
    def __call__(self, check: str):
        from ..checks import records
        entry = records.entry(self.name, "broken", check)
        if entry is None:
            yield
            return
        try:
            yield
        except AssertionError as e:
            if not re.search(records.template_regex(entry["evidence"]), str(e)):
                raise
            line = f" ({entry['defect_line']})" if entry.get("defect_line") else ""
            self.record_property("sut_defect", entry.get("defect", check) + line)
            self.hit.append(check)
            return
        pytest.fail(f"records/{self.name}.toml [broken.{check}] says SUT {self.sut.name} fails this check with "
                    f"{entry['evidence']!r}; it passed: the defect is gone, delete the entry", pytrace=False)

    def conclude(self) -> None:
        if self.hit:
            pytest.xfail(f"SUT {self.sut.name} fails {', '.join(self.hit)} as records/{self.name}.toml [broken] "
                         f"records (the defect: JUnit sut_defect)")


@pytest.fixture
def known_broken(harness_builder, record_property):
    return KnownBroken(record_property, harness_builder.sut)


@pytest.fixture(scope="module")
def xen_build(harness_builder):
    """xen_build(variant=None, needs=("CONFIG_X",...)): the built hypervisor (default: the
    SUT's variant), or skip saying why."""
    from ..images.build.xen import has_option

    def get(variant: str | None = None, needs: tuple[str, ...] = ()):
        variant = variant or harness_builder.sut.variant
        entry = harness_builder.build([f"xen-{variant}"])[f"xen-{variant}"]
        for opt in needs:
            if not has_option(entry, opt):
                pytest.skip(f"SUT {harness_builder.sut.name}: this Xen ({variant}) has no {opt}")
        return entry
    return get


def _fresh_dir(root: Path, d: Path) -> Path:
    """d emptied for a new run, but only when it lies inside the artifacts root: a name
    that made it point elsewhere must never get a directory removed."""
    root, d = root.resolve(), d.resolve()
    if d == root or root not in d.parents:
        raise HarnessError(f"artifact directory {d} is outside the artifacts root {root}", field="--artifacts",
                           fix="use SUT, scenario and boot names without '/' or '..'")
    if d.exists():
        shutil.rmtree(d)
    return d


def _boot_dir(request, within: Path, d: Path) -> Path:
    """A boot's directory (inside `within`), claimed for this process in this run (two
    boots of one run in one directory fail at once: harness/run/parallel.py), then emptied."""
    from . import parallel
    parallel.claim_boot_dir(request.config, request.config.option.artifacts, d, request.node.nodeid)
    return _fresh_dir(within, d)


def _test_dir(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", request.node.nodeid.split("::", 1)[-1]).strip("_")
    module = Path(request.node.fspath).stem
    return request.config.option.artifacts.absolute() / module / name


@pytest.fixture
def artifacts(request) -> Path:
    d = _fresh_dir(request.config.option.artifacts.absolute(), _test_dir(request))
    try:
        d.mkdir(parents=True)
    except OSError as e:
        raise HarnessError(f"cannot create the test's artifact directory: {e.strerror or e}", where=str(d),
                           field="--artifacts", fix="give a writable directory with --artifacts=DIR") from None
    return d


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    d = getattr(item, "_harness_artifacts", None)
    if d and report.when == "call":
        report.sections.append(("harness artifacts", str(d)))
    if report.failed and report.when in ("setup", "call"):
        from . import lifecycle
        report.sections.extend(lifecycle.steps_report(call.start, call.stop))
    if report.when == "setup":
        item._harness_t0 = call.start
    elif report.when == "teardown":
        _system_out(item, report, getattr(item, "_harness_t0", call.start), call.stop)


@pytest.fixture
def boot(request, harness_builder, artifacts, record_property):
    """boot(spec, until=State.SHELL) -> System, booted; every system is stopped at teardown."""
    from . import lifecycle
    from ..machine.system import State, System
    systems: list[System] = []
    request.node._harness_artifacts = artifacts

    def start(spec, until=State.SHELL, gdb: bool = False) -> System:
        return lifecycle.start(harness_builder, spec, _boot_dir(request, artifacts, artifacts / spec.name), until=until,
                               gdb=gdb, owner=systems.append)

    yield start

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    keep = (lambda s: _keep_running(request, s)) if request.config.option.keep_qemu else None
    for s in systems:
        for stage, secs in lifecycle.finish(s, failed=failed, keep=keep).items():
            record_property(f"time_{s.spec.name}_{stage}", secs)


@pytest.fixture(scope="module")
def shared_boot(request, harness_builder):
    """shared_boot(spec, setup=None) -> System: one boot per spec name for the whole test
    module (setup(system) runs once after it booted), so read-only checks of a scenario
    share a boot and destructive ones (destroy, reboot) come last in the module. A system
    that died is booted again; asking for another spec stops the running one (group the
    tests by scenario: a module-scoped indirect parameter does). A setup that failed fails
    the module's later tests of that spec at once, with its error. Artifacts:
    artifacts/<module>/<spec name>/."""
    from . import lifecycle
    from ..machine.system import System
    systems: dict[str, System] = {}
    broken: dict[str, str] = {}     # spec name -> how its setup failed (once is enough to know)
    root = request.config.option.artifacts.absolute() / Path(request.node.fspath).stem

    def get(spec, setup=None) -> System:
        if spec.name in broken:      # the same setup on the same boot would fail the same way
            pytest.fail(f"shared boot {spec.name!r}: its setup failed in an earlier test of this module, "
                        f"so this test cannot run:\n{broken[spec.name]}", pytrace=False)
        for other in [o for o in systems.values() if o.spec.name != spec.name and o.machine.is_running()]:
            lifecycle.finish(other)  # one machine at a time: 2 cores, and each holds its RAM
        s = systems.get(spec.name)
        if s is None or not s.machine.is_running():
            if s is not None:
                lifecycle.finish(s, failed=True)   # it died: no last console check, the test saw why
            s = lifecycle.start(harness_builder, spec, _boot_dir(request, request.config.option.artifacts.absolute(), root / spec.name),
                                owner=lambda new: systems.__setitem__(spec.name, new))
            if setup:
                try:
                    with s.steps.step("setup", getattr(setup, "__name__", "setup")):
                        setup(s)
                except Exception as e:
                    broken[spec.name] = f"{type(e).__name__}: {e}"
                    raise
        # a step of its own, so the JUnit report knows which tests this boot served
        s.steps.record("shared-boot", f"{spec.name} given to a test", time.time(), 0.0)
        return s

    yield get
    for s in systems.values():
        if s in lifecycle.RUNNING:
            lifecycle.finish(s)


def _keep_running(request, system) -> None:
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    sd = system.machine.sockdir
    system.machine.consoles.close()      # QEMU's socket chardevs take one client: make room
    tr.write_line(f"\n--keep-qemu: {system.spec.name} is still running (pid {system.machine.pid}).")
    tr.write_line(f"  console: socat -,rawer UNIX-CONNECT:{sd / 'uart0.sock'}   "
                  f"trace: socat - UNIX-CONNECT:{sd / 'uart1.sock'}")
    tr.write_line("  press Ctrl-C to stop it and go on.")
    try:
        while system.machine.is_running():
            time.sleep(1)
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------------------- JUnit for CI pages
# GitLab's JUnit parser (lib/gitlab/ci/parsers/test/junit.rb) reads no <properties>: for a failed
# or errored test it shows the <failure>/<error> text followed by <system-out>, and links the
# first [[ATTACHMENT|path]] in <system-out> to that file in the job's artifacts (a path relative
# to the project dir, as `artifacts: paths` are; no '[', ']' or '|' in it). A testcase with two
# <system-out> elements breaks the parse of the whole file, so ours joins one pytest wrote
# (junit_logging). So every test that boots gets, in <system-out>: what it ran on, its boots'
# directories, and when it failed its harness steps and an attachment line per console log;
# and paths under the project dir are written relative to it, in failure messages too.
_SYSTEM_OUT = "harness_system_out"   # carried as a user property from makereport to sessionfinish
CONSOLE_LOGS = ("uart0.console.log", "uart1.console.log", "steps.log")   # GitLab links the first
_NO_ATTACH = re.compile(r"[\[\]|]")    # what GitLab's attachment path pattern cannot hold


def project_dir(config) -> Path:
    """What artifact paths are relative to: $CI_PROJECT_DIR on a GitLab runner, else pytest's rootdir."""
    return Path(os.environ.get("CI_PROJECT_DIR") or config.rootpath)


def relative(path: Path | str, base: Path) -> str | None:
    """path relative to base (POSIX), or None when it lies outside."""
    for p, b in ((Path(path).absolute(), base.absolute()), (Path(path).resolve(), base.resolve())):
        try:
            return p.relative_to(b).as_posix()
        except ValueError:
            pass
    return None


def relativize(text: str, base: Path) -> str:
    """Absolute paths under base written relative to it (a runner's build dir means nothing on a CI page)."""
    for b in sorted({str(base.absolute()), str(base.resolve())}, key=len, reverse=True):
        text = text.replace(b.rstrip("/") + "/", "")
    return text


def _system_out(item, report, start: float, stop: float) -> None:
    """The test's <system-out> (see above), put on its teardown report as a user property."""
    from . import lifecycle
    prov = getattr(item, "_harness_provenance", None)
    boots = lifecycle.boots_between(start, stop)
    if prov is None and not boots:
        return                       # not a test that builds or boots
    base = project_dir(item.config)
    failed = any(getattr(item, f"rep_{w}", report).failed for w in ("setup", "call")) or report.failed
    lines = ["harness: what this test ran on"] + [f"  {k}: {v}" for k, v in (prov or {}).items()]
    attach, outside = [], []
    if boots:
        lines.append(f"boots (directories relative to the project dir, {base.name or base}/):")
    for name, workdir in boots:
        rel = relative(workdir, base)
        lines.append(f"  {name}: {rel if rel is not None else workdir}")
        report.user_properties.append((f"boot_dir_{name}", rel if rel is not None else str(workdir)))
        for log in CONSOLE_LOGS if failed else ():
            if not (Path(workdir) / log).is_file():
                continue
            (attach if rel is not None and not _NO_ATTACH.search(rel) else outside).append(
                f"{rel}/{log}" if rel is not None else str(Path(workdir) / log))
    if failed:
        for title, text in (sec for sec in report_sections(item) if sec[0].startswith("harness steps")):
            lines += ["", f"--- {relativize(title, base)}", relativize(text, base)]
        if attach:
            lines += ["", "console logs (a CI page links the first):"] + [f"[[ATTACHMENT|{a}]]" for a in attach]
        if outside:
            lines += ["", f"console logs not attachable (outside {base}, or a path a CI page cannot link; "
                          "give --artifacts a directory inside the project):"] + [f"  {o}" for o in outside]
    report.user_properties.append((_SYSTEM_OUT, "\n".join(lines) + "\n"))


def report_sections(item) -> list[tuple[str, str]]:
    return [sec for w in ("setup", "call") for sec in getattr(getattr(item, f"rep_{w}", None), "sections", [])]


def _junit_finish(config) -> None:
    """Before pytest writes the JUnit file: each test's harness text moved from its properties
    into its one <system-out>, and the project dir cut from the paths in failures and errors."""
    from _pytest.junitxml import xml_key
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    base = project_dir(config)
    for reporter in xml.node_reporters_ordered:
        if "id" in vars(reporter):
            continue                 # not finalized (an interrupted test): no element to edit
        case = reporter.to_xml()     # a finalized reporter returns its one element: edits stay
        for el in case:
            if el.tag in ("failure", "error"):
                el.set("message", relativize(el.get("message", ""), base))
                el.text = relativize(el.text or "", base) or None
        props = case.find("properties")
        ours = [p for p in (props if props is not None else []) if p.get("name") == _SYSTEM_OUT]
        if not ours:
            continue
        for p in ours:
            props.remove(p)
        if not len(props):
            case.remove(props)
        out = case.find("system-out")
        if out is None:
            out = ET.SubElement(case, "system-out")
            out.text = ""
        out.text = "".join(p.get("value", "") for p in ours) + (out.text or "")


@pytest.hookimpl(tryfirst=True)      # before pytest's junitxml writes the file
def pytest_sessionfinish(session, exitstatus):
    _junit_finish(session.config)
    _coverage_report(session)


def _coverage_report(session):
    """--xen-coverage: the suite's coverage, merged over every boot, in <artifacts>/coverage/."""
    from . import parallel
    if not getattr(session.config.option, "xen_coverage", False) or parallel.is_worker(session.config):
        return                       # a worker's boots are reported by the main process (parallel.py)
    from . import coverage, lifecycle
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if not lifecycle.COVERAGE_RUNS:
        if tr:
            tr.write_line("harness coverage: no boot reported coverage (did any boot test run?)", red=True)
        return
    by_build: dict[Path, list[Path]] = {}
    for ws, run in lifecycle.COVERAGE_RUNS:
        by_build.setdefault(ws, []).append(run)
    root = session.config.option.artifacts.absolute() / "coverage"
    for ws, runs in by_build.items():      # one report per coverage build (per SUT)
        out = root / ws.name if len(by_build) > 1 else root
        summary = coverage.merged_report(ws, runs, out)
        if tr:
            tr.write_line(f"\nharness coverage of {len(runs)} boots of {ws.name} ({out}):")
            for line in coverage.summary_lines(summary):
                tr.write_line("  " + line)
