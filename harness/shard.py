"""pytest option `--shard I/N`: run only the I-th of N shards of the selected tests.

The tests left after -m/-k are sorted by node id and dealt out round-robin: shard I keeps
positions I-1, I-1+N, I-1+2N, ... So every shard of the same checkout and options gets a
disjoint share, the N shards together run every selected test exactly once, and
parametrized variants of one test land on different shards. Registered by
harness.pytest_plugin (`pytest_plugins`).
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


def select(nodeids: list[str], index: int, total: int) -> set[str]:
    """The node ids shard `index` (1-based) of `total` keeps."""
    return {n for pos, n in enumerate(sorted(nodeids)) if pos % total == index - 1}


def pytest_addoption(parser):
    parser.getgroup("harness", "Xen SCMI harness").addoption(
        "--shard", metavar="I/N",
        help="run only shard I of N: the selected tests sorted by node id, every N-th from the I-th "
             "(for parallel CI jobs; the N shards together run every selected test once)")


def pytest_configure(config):
    text = config.getoption("shard", None)
    config._harness_shard = parse_shard(text) if text is not None else None


@pytest.hookimpl(trylast=True)       # after -m/-k deselection, so shards share what is selected
def pytest_collection_modifyitems(config, items):
    shard = getattr(config, "_harness_shard", None)
    if not shard or not items:
        return
    keep = select([i.nodeid for i in items], *shard)
    kept = [i for i in items if i.nodeid in keep]
    dropped = [i for i in items if i.nodeid not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config):
    shard = getattr(config, "_harness_shard", None)
    if shard:
        return f"harness shard: {shard[0]}/{shard[1]}"
