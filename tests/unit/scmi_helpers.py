"""Shared helpers for the SCMI server unit tests: build once per board, one
fresh server process per test."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from harness.data.board import load_board, parse_board
from harness.images.scmi.host import HostServer, build_host_server

# the server tests assert on one fixed topology, not on the default board (which scenarios tune)
UNIT_BOARD = Path(__file__).resolve().parent / "boards" / "scmi-unit.toml"

# SCMI status codes (DEN0056 4.1.4) and DISCOVER_AGENT's "the caller" id
SUCCESS, NOT_SUPPORTED, INVALID, DENIED, NOT_FOUND, OUT_OF_RANGE = 0, -1, -2, -3, -4, -5
COMMS_ERROR, PROTOCOL_ERROR = -7, -10
OWN = 0xFFFFFFFF
# the unit board's agent ids, read from it (the board file keeps every number)
_unit = load_board(UNIT_BOARD)
DOM0, XEN, G2, G3 = (_unit.agent_named(n).id for n in ("dom0", "xen", "guest2", "guest3"))

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc for the host build")


def variant(mutate) -> object:
    """The default board with its raw TOML data changed by mutate(data)."""
    base = load_board(UNIT_BOARD)
    data = copy.deepcopy(base.raw)
    mutate(data)
    return parse_board(data, UNIT_BOARD)


class Builds:
    """Caches one host binary per distinct board within a test session."""

    def __init__(self, root: Path):
        self.root, self.done = root, {}

    def server(self, board, faults: bytes = b"") -> HostServer:
        key = repr(board.raw)
        if key not in self.done:
            self.done[key] = build_host_server(board, self.root / f"b{len(self.done)}")
        return HostServer(self.done[key], board, faults=faults)
