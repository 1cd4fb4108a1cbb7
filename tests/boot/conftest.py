"""Scenario parametrisation for the boot tests: @pytest.mark.scenarios(family, [predicate])
gives one test per scenario of the family written for the --board in use; a family with
no scenario for that board is deselected, not skipped."""
import os
from pathlib import Path

import pytest

from harness.scenario import load_scenario, names


def _board(config) -> str:
    return Path(config.getoption("board") or os.environ.get("HARNESS_BOARD", "qemu-virt")).stem


def pytest_generate_tests(metafunc):
    mark = metafunc.definition.get_closest_marker("scenarios")
    if mark is None:
        return
    family, *pred = mark.args
    chosen = [n for n in names(family, board=_board(metafunc.config)) if not pred or pred[0](load_scenario(n))]
    metafunc.parametrize("name", chosen, indirect=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    empty = [i for i in items if i.get_closest_marker("scenarios") and "NOTSET" in i.name]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [i for i in items if i not in empty]
