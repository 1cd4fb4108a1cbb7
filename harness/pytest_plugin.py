"""pytest plugin (entry point pytest11): markers, options, and the fixtures that
build through the cache and boot real systems.

Fixtures:
  harness_builder  (session) a Builder for the options given
  artifacts        (test)    artifacts/<test id>/, kept on pass and on fail
  boot             (test)    boot(spec, until=State.SHELL) -> System; stopped at teardown
  xen_build        (session) xen_build(variant) -> cache entry, or skip with the reason
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from .errors import HarnessError

pytest_plugins = ["harness.shard"]     # --shard I/N for parallel CI jobs

MARKERS = {
    "boot": "boots a real system on qemu-system-aarch64 (slow)",
    "build": "builds real images through the cache (slow on a cold cache)",
    "multiagent": "needs a Xen with CONFIG_SCMI_SMC_MA (skipped with the reason otherwise)",
    "scenarios": "scenarios(family, [predicate]): parametrise over the scenarios of a family for --board",
}


def pytest_addoption(parser):
    g = parser.getgroup("harness", "Xen SCMI harness")
    g.addoption("--board", help="board name or .toml (default qemu-virt)")
    g.addoption("--xen-src", help="'lock', a local Xen tree, or GIT_URL#REF")
    g.addoption("--xen-patches", help="patch series dir or mbox, or 'none' (default ../shared/sut's when present)")
    g.addoption("--tfa-src", help="'lock', a local TF-A tree, or GIT_URL#REF")
    g.addoption("--harness-cache", type=Path, help="build cache directory")
    g.addoption("--artifacts", type=Path, default=Path("artifacts"),
                help="directory for per-test artifacts (default ./artifacts)")
    g.addoption("--keep-qemu", action="store_true",
                help="on a failed boot test, keep QEMU running until Ctrl-C (to attach to its consoles)")


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def _builder(config):
    """One Builder per session, made from the options (bad options end the session, explained)."""
    if not hasattr(config, "_harness_builder"):
        from .build import Builder, BuildOptions
        o = config.option
        try:
            config._harness_builder = Builder(BuildOptions.from_env(
                board=o.board, xen_src=o.xen_src, xen_patches=o.xen_patches, tfa_src=o.tfa_src,
                cache_dir=o.harness_cache))
        except HarnessError as e:
            pytest.exit(f"harness: {e}", returncode=4)
    return config._harness_builder


@pytest.hookimpl(trylast=True)     # after -m/-k and --shard deselect: build only for what will run
def pytest_collection_modifyitems(session, config, items):
    """Build every image the selected boot tests may need before any test (and its
    timeout) starts: a cold cache costs minutes, a warm one a fraction of a second."""
    if config.option.collectonly or not any(i.get_closest_marker("boot") for i in items):
        return
    tr = config.pluginmanager.get_plugin("terminalreporter")

    def progress(label, state, secs):
        if tr and state != "start":
            tr.write_line(f"harness build: {label}: {state}" + (f" in {secs:.1f}s" if secs else ""))
    b = _builder(config)
    b.progress = progress
    try:
        b.build()
    except HarnessError as e:
        pytest.exit(f"harness: building the images failed: {e}", returncode=4)
    b.progress = lambda *a: None


@pytest.fixture(scope="session")
def harness_builder(request):
    return _builder(request.config)


@pytest.fixture(scope="session")
def xen_build(harness_builder):
    """xen_build(variant, needs=("CONFIG_X",...)): the built hypervisor, or skip saying why."""
    from .build.xen import has_option, needs_series

    def get(variant: str, needs: tuple[str, ...] = ()):
        if needs_series(variant) and harness_builder.series is None:
            pytest.skip(f"Xen variant {variant!r} needs a patch series (--xen-patches); none given")
        entry = harness_builder.build([f"xen-{variant}"])[f"xen-{variant}"]
        for opt in needs:
            if not has_option(entry, opt):
                pytest.skip(f"this Xen ({variant}) has no {opt}")
        return entry
    return get


def _test_dir(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", request.node.nodeid.split("::", 1)[-1]).strip("_")
    module = Path(request.node.fspath).stem
    return request.config.option.artifacts.absolute() / module / name


@pytest.fixture
def artifacts(request) -> Path:
    d = _test_dir(request)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    d = getattr(item, "_harness_artifacts", None)
    if d and report.when == "call":
        report.sections.append(("harness artifacts", str(d)))


@pytest.fixture
def boot(request, harness_builder, artifacts, record_property):
    """boot(spec, until=State.SHELL) -> System, booted; every system is stopped at teardown."""
    from .system import State, System, prepare
    systems: list[System] = []
    request.node._harness_artifacts = artifacts
    b = harness_builder
    record_property("board", b.board.name)
    record_property("xen_source", b.xen_spec.describe())
    record_property("xen_patches", f"{b.series.path.name} sha256:{b.series.digest}" if b.series else "none")
    for name in ("xen", "tf-a", "kernel"):
        record_property(f"lock_{name}", b.lock[name].describe())

    def start(spec, until=State.SHELL, gdb: bool = False) -> System:
        workdir = artifacts / spec.name
        t0 = time.monotonic()
        machine = prepare(b, spec, workdir, gdb=gdb)
        system = System(machine, spec)
        systems.append(system)
        system.prepare_seconds = round(time.monotonic() - t0, 3)
        if until is not None:
            system.transition(until)
        return system

    yield start

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for s in systems:
        timings = {"prepare": s.prepare_seconds, **s.timings()}
        (s.machine.workdir / "timings.json").write_text(json.dumps(timings, indent=2))
        for stage, secs in timings.items():
            record_property(f"time_{s.spec.name}_{stage}", secs)
        if failed and request.config.option.keep_qemu and s.machine.is_running():
            _keep_running(request, s)
        try:
            if s.machine.is_running() and not failed:
                s.machine.consoles.check()     # a failure line after the last wait still fails
        finally:
            s.machine.stop()


@pytest.fixture(scope="module")
def shared_boot(request, harness_builder):
    """shared_boot(spec, setup=None) -> System: one boot per spec name for the whole test
    module (setup(system) runs once after it booted), so read-only checks of a scenario
    share a boot and destructive ones (destroy, reboot) come last in the module. A system
    that died is booted again; asking for another spec stops the running one (group the
    tests by scenario: a module-scoped indirect parameter does). Artifacts:
    artifacts/<module>/<spec name>/."""
    from .system import State, System, prepare
    systems: dict[str, System] = {}
    root = request.config.option.artifacts.absolute() / Path(request.node.fspath).stem

    def get(spec, setup=None) -> System:
        for other in [o for o in systems.values() if o.spec.name != spec.name and o.machine.is_running()]:
            other.machine.stop()     # one machine at a time: 2 cores, and each holds its RAM
        s = systems.get(spec.name)
        if s is None or not s.machine.is_running():
            if s is not None:
                s.machine.stop()
            workdir = root / spec.name
            if workdir.exists():
                shutil.rmtree(workdir)
            t0 = time.monotonic()
            s = System(prepare(harness_builder, spec, workdir), spec)
            systems[spec.name] = s
            s.prepare_seconds = round(time.monotonic() - t0, 3)
            s.transition(State.SHELL)
            if setup:
                setup(s)
        return s

    yield get
    for s in systems.values():
        (s.machine.workdir / "timings.json").write_text(json.dumps({"prepare": s.prepare_seconds,
                                                                    **s.timings()}, indent=2))
        try:
            if s.machine.is_running():
                s.machine.consoles.check()
        finally:
            s.machine.stop()


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
