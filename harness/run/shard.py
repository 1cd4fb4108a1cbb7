"""pytest option `--shard I/N`: run only the I-th of N shards of the selected tests.

The tests left after -m/-k are grouped by the boot they share (the tests of one scenario
on one SUT share a boot: harness.run.pytest_plugin's shared_boot), the groups sorted and dealt
out round-robin: shard I keeps groups I-1, I-1+N, I-1+2N, ... So every shard of the same
checkout and options gets a disjoint share, the N shards together run every selected test
exactly once, and no boot is made twice because its tests landed on two shards. Registered by
harness.run.pytest_plugin (`pytest_plugins`).
"""
from __future__ import annotations

import re

import pytest

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); anything else is a usage error that says what to write."""
    m = _SHARD.fullmatch(text or "")
    if m:
        index, total = int(m[1]), int(m[2])
        if 1 <= index <= total:
            return index, total
    raise pytest.UsageError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. --shard 2/4 "
                            "(the second of four shards)")


def boot_group(item) -> str:
    """Tests that share a boot belong together: a shared_boot test's group is its module,
    SUT and scenario (the boot it shares), or, not parametrised by scenario, its module and
    SUT (its boots are named by what the module's tests ask for, e.g. v11-cells3 shared by
    two tests); any other test is a group of its own."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "shared_boot" in getattr(item, "fixturenames", ()):
        module = item.nodeid.split("::")[0]
        return f"{module}[{params.get('sut')}-{params['name']}]" if "name" in params else f"{module}[{params.get('sut')}]"
    return item.nodeid


def select(nodeids: list[str], index: int, total: int, groups: dict[str, str] | None = None) -> set[str]:
    """The node ids shard `index` (1-based) of `total` keeps: the groups (default: each
    node id its own) sorted by key and dealt out round-robin, so a boot is never split."""
    groups = groups or {}
    members: dict[str, list[str]] = {}
    for n in sorted(nodeids):
        members.setdefault(groups.get(n, n), []).append(n)
    return {n for pos, key in enumerate(sorted(members)) if pos % total == index - 1 for n in members[key]}


def pytest_addoption(parser):
    parser.getgroup("harness", "Xen SCMI harness").addoption(
        "--shard", metavar="I/N",
        help="run only shard I of N: the selected tests sorted by node id, every N-th from the I-th "
             "(for parallel CI jobs; the N shards together run every selected test once)")


def pytest_configure(config):
    text = config.getoption("shard", None)
    config._harness_shard = parse_shard(text) if text is not None else None


def deselect(config, items) -> None:
    """Keep this shard's share of items (called by harness.run.pytest_plugin's collection hook,
    after -m/-k and before anything is built, so a shard builds only for what it runs)."""
    shard = getattr(config, "_harness_shard", None)
    if not shard or not items:
        return
    keep = select([i.nodeid for i in items], *shard, groups={i.nodeid: boot_group(i) for i in items})
    kept = [i for i in items if i.nodeid in keep]
    dropped = [i for i in items if i.nodeid not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config):
    shard = getattr(config, "_harness_shard", None)
    if shard:
        return f"harness shard: {shard[0]}/{shard[1]}"
