"""Parse the SCMI server's trace on the secure console (docs/scmi-trace.md).

    SCMI: agent=2 proto=0x14 msg=0x7 CLOCK_CONFIG_SET clock=3 attrs=0x1 -> SUCCESS(0)
    SCMI-STATE: clock=3 enabled=1 by agent=2
    SCMI-SMT: agent=0 error=channel-free value=0x1
    SCMI-BOOT: board=qemu-virt agents=5 ...

``parse_line`` turns one line into a dataclass (None for other output),
``parse_log`` a whole console log; ``messages`` and ``states`` filter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Union

from .protocols import TRACE_NAMES as PROTOCOLS  # noqa: E402  (the one table)
STATUS = {
    "SUCCESS": 0, "NOT_SUPPORTED": -1, "INVALID_PARAMETERS": -2, "DENIED": -3,
    "NOT_FOUND": -4, "OUT_OF_RANGE": -5, "BUSY": -6, "COMMS_ERROR": -7,
    "GENERIC_ERROR": -8, "HARDWARE_ERROR": -9, "PROTOCOL_ERROR": -10, "IN_USE": -11,
}

_PREFIX = re.compile(r"SCMI(?P<kind>-STATE|-SMT|-BOOT|-FAULT)?: ")
_MESSAGE = re.compile(
    r"agent=(?P<agent>\d+) proto=0x(?P<proto>[0-9a-f]+) msg=0x(?P<msg>[0-9a-f]+) "
    r"(?P<name>[A-Z0-9_]+)(?P<params>(?: [a-z_]+=\S+)*) -> "
    r"(?P<status>[A-Z_]+)\((?P<code>-?\d+)\)(?P<results>(?: [a-z_]+=\S+)*)$")
_KV = re.compile(r"([a-z_]+)=(\S+)")

Value = Union[int, str]


class TraceParseError(ValueError):
    """A line carries a trace prefix but not the documented format."""


def _value(text: str) -> Value:
    if re.fullmatch(r"0x[0-9a-f]+", text):
        return int(text, 16)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _fields(text: str) -> dict[str, Value]:
    return {k: _value(v) for k, v in _KV.findall(text)}


@dataclass(frozen=True)
class Message:
    """One SCMI message and the server's answer."""
    agent: int
    protocol: int
    message: int
    name: str
    status: str
    code: int
    params: dict[str, Value] = field(default_factory=dict)
    results: dict[str, Value] = field(default_factory=dict)
    line: str = ""

    @property
    def protocol_name(self) -> str:
        return PROTOCOLS.get(self.protocol, f"0x{self.protocol:x}")

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass(frozen=True)
class State:
    """One state change; ``by`` is the agent id that caused it, None = platform."""
    fields: dict[str, Value]
    by: int | None
    line: str = ""

    @property
    def subject(self) -> tuple[str, Value]:
        """The first key=value: what changed (clock=3, device=2, agent_reset=2)."""
        key = next(iter(self.fields))
        return key, self.fields[key]


@dataclass(frozen=True)
class SmtError:
    agent: int
    error: str
    value: int
    line: str = ""


@dataclass(frozen=True)
class Boot:
    fields: dict[str, Value]
    line: str = ""


@dataclass(frozen=True)
class Fault:
    """A fault the boot asked for fired (or, with `armed`, how many were loaded)."""
    fields: dict[str, Value]
    line: str = ""


Event = Union[Message, State, SmtError, Boot, Fault]


def parse_line(line: str) -> Event | None:
    """Parse one console line; None if it is not a trace line at all."""
    line = line.rstrip("\r\n")
    m = _PREFIX.search(line)
    if m is None:
        return None
    body, kind, raw = line[m.end():].rstrip(), m.group("kind"), line[m.start():].rstrip()
    if kind is None:
        mm = _MESSAGE.fullmatch(body)
        if mm is None:
            raise TraceParseError(f"bad SCMI message line: {line!r}")
        return Message(agent=int(mm["agent"]), protocol=int(mm["proto"], 16), message=int(mm["msg"], 16),
                       name=mm["name"], status=mm["status"], code=int(mm["code"]),
                       params=_fields(mm["params"]), results=_fields(mm["results"]), line=raw)
    if kind == "-STATE":
        sm = re.fullmatch(r"(?P<kv>(?:[a-z_]+=\S+ ?)+) by (?:platform|agent=(?P<by>\d+))", body)
        if sm is None:
            raise TraceParseError(f"bad SCMI-STATE line: {line!r}")
        return State(fields=_fields(sm["kv"]), by=int(sm["by"]) if sm["by"] else None, line=raw)
    fields = _fields(body)
    if kind == "-FAULT":
        return Fault(fields=fields, line=raw)
    if kind == "-SMT":
        if not {"agent", "error", "value"} <= fields.keys():
            raise TraceParseError(f"bad SCMI-SMT line: {line!r}")
        return SmtError(agent=int(fields["agent"]), error=str(fields["error"]),
                        value=int(fields["value"]), line=raw)
    return Boot(fields=fields, line=raw)


def parse_log(text: str | Iterable[str], strict: bool = False) -> list[Event]:
    """All trace events of a console log, in order. A garbled line (another
    CPU's output cut into it) is skipped unless strict."""
    lines = text.splitlines() if isinstance(text, str) else text
    events = []
    for line in lines:
        try:
            event = parse_line(line)
        except TraceParseError:
            if strict:
                raise
            continue
        if event is not None:
            events.append(event)
    return events


def _events(log: str | Iterable) -> list[Event]:
    if isinstance(log, str):
        return parse_log(log)
    items = list(log)
    if items and isinstance(items[0], str):
        return parse_log(items)
    return items


def messages(log, *, agent: int | None = None, protocol: int | None = None,
             message: int | str | None = None, status: str | int | None = None) -> list[Message]:
    """Messages of a log (text, lines or parsed events) matching every filter
    given; message is an id or a name, status a name or a code."""
    out = []
    for e in _events(log):
        if not isinstance(e, Message):
            continue
        if agent is not None and e.agent != agent:
            continue
        if protocol is not None and e.protocol != protocol:
            continue
        if message is not None and (e.name if isinstance(message, str) else e.message) != message:
            continue
        if status is not None and (e.status if isinstance(status, str) else e.code) != status:
            continue
        out.append(e)
    return out


def states(log, *, by: int | None | str = "any", **fields: Value) -> list[State]:
    """State changes whose fields include all given key=values, e.g.
    ``states(log, clock=3, enabled=1)``; by= filters on the causing agent."""
    out = []
    for e in _events(log):
        if not isinstance(e, State):
            continue
        if by != "any" and e.by != by:
            continue
        if all(e.fields.get(k) == v for k, v in fields.items()):
            out.append(e)
    return out


def faults(log) -> list[Fault]:
    """The faults that fired (SCMI-FAULT: lines with an agent), in order."""
    return [e for e in _events(log) if isinstance(e, Fault) and "agent" in e.fields]
