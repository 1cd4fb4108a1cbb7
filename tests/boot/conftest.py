"""Scenario parametrisation for the boot tests: @pytest.mark.scenarios(family, [predicate])
gives one test per scenario of the family written for the --board in use (by the board's
[board] name, so a copy of a board file under another file name selects the same
scenarios); a family with no scenario for that board is deselected, not skipped. Each
scenario carries its `needs` as a `needs` mark, so a SUT whose profile cannot run it leaves
that pair out of collection (harness.run.pytest_plugin counts them in one line). A
scenario file that does not load is left out with a warning naming it and its error
(tests/unit/test_scenario.py fails on it) instead of stopping the whole collection."""
import os
import warnings

import pytest

from harness.data.board import load_board
from harness.errors import HarnessError
from harness.plan.scenario import load_scenario, names


BOARD_NAME = pytest.StashKey[str]()    # the --board's [board] name
LEFT_OUT = pytest.StashKey[str]()      # why scenario tests were left out, for the summary


def _board(config) -> str:
    if BOARD_NAME not in config.stash:
        given = config.getoption("board") or (os.environ.get("HARNESS_BOARD") or "qemu-virt")
        try:
            config.stash[BOARD_NAME] = load_board(given).name
        except HarnessError as e:
            raise pytest.UsageError(f"harness: --board {given}: {e}") from None
    return config.stash[BOARD_NAME]


def pytest_generate_tests(metafunc):
    mark = metafunc.definition.get_closest_marker("scenarios")
    if mark is None:
        return
    family, *pred = mark.args
    broken: dict[str, str] = {}
    chosen = [sc for sc in map(load_scenario, names(family, board=_board(metafunc.config), broken=broken))
              if not pred or pred[0](sc)]
    for name, error in broken.items():
        warnings.warn(pytest.PytestWarning(f"scenario {name} left out of {metafunc.function.__name__}: {error}"))
    metafunc.parametrize("name", [pytest.param(sc.name, marks=pytest.mark.needs(*sc.needs)) for sc in chosen],
                         indirect=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    empty = [i for i in items if i.get_closest_marker("scenarios") and "NOTSET" in i.name]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [i for i in items if i not in empty]
        board = _board(config)
        if not names(board=board, broken={}):      # a renamed copy of a board: say what it costs
            written = sorted({b for n in names(family="forwarding", broken={}) for b in load_scenario(n).boards})
            config.stash[LEFT_OUT] = (
                f"harness: board {board!r} has no scenario: {len(empty)} scenario test(s) left out (every scenario "
                f"is written for one of {', '.join(written)} by its `boards` list). If this board is a copy of one "
                f"of those with its agent and device names, add {board!r} to the scenarios' boards lists.")
            tr = config.pluginmanager.get_plugin("terminalreporter")
            if tr:
                tr.write_line(config.stash[LEFT_OUT], yellow=True)


def pytest_terminal_summary(terminalreporter, config):
    if LEFT_OUT in config.stash:
        terminalreporter.write_line(config.stash[LEFT_OUT], yellow=True)
