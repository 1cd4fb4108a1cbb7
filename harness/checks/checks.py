"""What the scenario tests assert, derived from the board and the scenario (never
hard-coded): each helper reads the server's trace (UART1) and the guests' consoles
and raises AssertionError with the lines that matter.

The expectations come from the data: a guest with `agent = "guest3"` must be heard
on agent 3's id and nowhere else; a device it has in `passthrough` must be granted
to agent 3 by Xen's management agent; a device in `uses` that the agent holds no
permission for must be DENIED; a destroyed guest's agent must be reset and every
resource it changed must go back to the board's default.
"""
from __future__ import annotations

import re
import time
from typing import Callable

from ..data.board import Agent, Board
from ..machine.console import ConsoleTimeout
from ..data.profiles import Profile, profile as get_profile
from ..images.scmi import trace
from ..images.scmi.protocols import BY_NAME
from ..machine.steps import checked
from ..machine.system import Guest, System

SCMI_PROBED = "SCMI Protocol v2.0"
READY = "HARNESS: domU ready"
POWER_PROTOCOL = BY_NAME["POWER"].id
# Seconds a check waits past the evidence that what it waits for can no longer come (the
# domain is gone, the guest printed its final line, Xen moved on): a failing check reports
# within this of its evidence instead of sitting out its whole timeout.
EVIDENCE_GRACE = 4.0


class GaveUp(ConsoleTimeout, AssertionError):
    """A wait ended early: the evidence says what it waited for cannot happen any more."""


def expect_until(con, patterns, *, since: int, timeout: float, evidence: Callable[[], str | None],
                 poll: float = 1.0, grace: float = EVIDENCE_GRACE, what: str = ""):
    """con.expect(patterns, since=since) for at most `timeout` seconds, asking evidence()
    every `poll` seconds whether it can still come; once evidence() names why not, wait at
    most `grace` more and raise GaveUp with that reason and the console's tail."""
    deadline = time.monotonic() + timeout
    seen, seen_at = None, None
    while True:
        if seen is None:
            seen = evidence()
            if seen is not None:
                seen_at = time.monotonic()
        now = time.monotonic()
        end = deadline if seen_at is None else min(deadline, seen_at + grace)
        try:
            return con.expect(patterns, since=since, timeout=max(0.05, min(poll, end - now)))
        except ConsoleTimeout as e:
            timed_out = e
        now = time.monotonic()
        if now >= end:
            if seen is None:
                raise timed_out
            raise GaveUp(f"{what or 'the wait'}: gave up {now - seen_at:.1f} s after the evidence that it cannot "
                         f"come any more: {seen}\n{timed_out}") from None


class PermissionKept(AssertionError):
    """An agent used a device it should no longer (or never) hold: the one assertion a
    SUT that never revokes permissions (v5) is expected to fail."""


def agent_of(board: Board, g: Guest) -> Agent | None:
    return board.agent_named(g.agent) if g.agent else None


def rings_own_agent(g: Guest) -> bool:
    """A guest whose DT describes the channel Xen gave it (the normal case)."""
    return g.agent is not None and g.dt_agent in (None, g.agent)


@checked()
def guest_probed_scmi(s: System, g: Guest, timeout: float = 120) -> str:
    """A Linux guest probed SCMI through its own agent: its console says so and the
    server heard PROTOCOL_VERSION on that agent. Returns the guest's console."""
    agent = agent_of(s.machine.board, g)
    log = s.wait_guest(g.name, READY, timeout=timeout)
    assert SCMI_PROBED in log, f"{g.name}: Linux did not probe SCMI; its console ends:\n{log[-2000:]}"
    heard = trace.messages(s.trace.text, agent=agent.id, message="PROTOCOL_VERSION", status="SUCCESS")
    assert heard, f"{g.name}: the server never heard agent {agent.id} ({agent.name})"
    return log


@checked()
def only_expected_agents(s: System, sc_spec, text: str | None = None) -> set[int]:
    """Every message the server heard came from an agent the scenario gives someone:
    Xen's management agent, dom0's (when it has SCMI), a guest's own agent, and with
    #scmi-secondary-agents-cells = 2 each secondary agent (Xen asks them who they are)."""
    board = s.machine.board
    allowed = {board.management.id}
    if sc_spec.dom0_scmi and board.agent("dom0"):
        allowed.add(board.agent("dom0").id)
    allowed |= {agent_of(board, g).id for g in sc_spec.dom0less + sc_spec.xl if rings_own_agent(g)}
    if sc_spec.secondary_cells == 2:
        allowed |= {a.id for a in board.agents if a.role != "management"}
    senders = {m.agent for m in trace.messages(s.trace.text if text is None else text)}
    assert senders <= allowed, f"the server heard agents {sorted(senders - allowed)} that nobody was given " \
                               f"(allowed: {sorted(allowed)})"
    return senders


@checked()
def device_granted(s: System, g: Guest, device: str) -> None:
    """Xen's management agent gave g's agent the device (SET_DEVICE_PERMISSIONS, flags=1)."""
    board = s.machine.board
    agent, dev = agent_of(board, g), board.device(device)
    grants = [m for m in trace.messages(s.trace.text, agent=board.management.id, message="SET_DEVICE_PERMISSIONS")
              if m.params.get("target") == agent.id and m.params.get("device") == dev.id]
    assert grants, f"{g.name}: Xen never sent SET_DEVICE_PERMISSIONS target={agent.id} device={dev.id} ({device})"
    assert grants[-1].ok and grants[-1].params.get("flags") == 1, f"{g.name}: {grants[-1].line}"


def _guest_done(s: System, g: Guest, timeout: float) -> None:
    """A Linux guest printed its final line (its drivers probed before init ran): what it
    asked the firmware at boot it has asked. Fails at once if the domain dies first."""
    if g.image == "linux":
        s.wait_guest(g.name, READY, timeout=timeout)


@checked()
def device_power_used(s: System, g: Guest, device: str, timeout: float = 60) -> None:
    """g's Linux powered the device's SCMI power domain on through its agent (the driver
    bound to the device's node): SUCCESS, and the server's state changed. Once the guest
    printed its final line the line must be there within EVIDENCE_GRACE; otherwise the
    failure names the refusal the agent got instead."""
    board = s.machine.board
    agent, dev = agent_of(board, g), board.device(device)
    _guest_done(s, g, timeout)
    for pd in dev.power_domains:
        try:
            s.trace.expect(rf"SCMI-STATE: power={pd} on=1 by agent={agent.id}\b", since=0, timeout=EVIDENCE_GRACE)
        except ConsoleTimeout:
            form, lines = power_refusal(s.trace.text, agent.id, pd)
            raise AssertionError(f"{g.name}: agent {agent.id} never powered {device}'s power domain {pd} on "
                                 f"although its Linux finished booting; the server "
                                 + (f"refused it ({form}):\n" + "\n".join(lines) if form else
                                    "heard no request for it") ) from None


def power_refusal(text: str, agent_id: int, pd: int) -> tuple[str | None, list[str]]:
    """How the server refused agent_id the power domain pd in trace text, one of the forms it
    gives: ("DENIED", lines) for POWER_STATE_GET/SET of pd refused, ("protocol DENIED", ...)
    for any power-protocol message refused because the agent holds no device using it,
    ("protocol not offered", ...) when BASE_DISCOVER_LIST_PROTOCOLS did not list the power
    protocol (so a Linux never asks); (None, []) when none of them shows."""
    mine = trace.messages(text, agent=agent_id)
    state = [m for m in mine if m.protocol == POWER_PROTOCOL and m.params.get("power") == pd
             and m.name in ("POWER_STATE_GET", "POWER_STATE_SET")]
    if state and not any(m.ok for m in state):
        return "DENIED", [m.line for m in state]
    proto = [m for m in mine if m.protocol == POWER_PROTOCOL and m.status == "DENIED"]
    if proto and not state:
        return "protocol DENIED", [m.line for m in proto]
    lists = [m for m in mine if m.name == "DISCOVER_LIST_PROTOCOLS" and m.ok]
    if lists and not any(m.protocol == POWER_PROTOCOL for m in mine) and not any(
            f"{POWER_PROTOCOL:#x}" in str(m.results.get("ids", "")).split(",") for m in lists):
        return "protocol not offered", [m.line for m in lists]
    return None, []


@checked()
def device_power_denied(s: System, g: Guest, device: str, since: int = 0, timeout: float = 60) -> str:
    """g's agent has no permission for the device: after trace position since, every way it
    could use the device's SCMI power domain was refused. The server refuses in one of the
    forms power_refusal() knows (DENIED, the protocol denied, the protocol not offered);
    returns the form it saw. A request that succeeded is PermissionKept. Decided as soon as
    the guest printed its final line (plus EVIDENCE_GRACE for a request still in flight)."""
    board = s.machine.board
    agent, dev = agent_of(board, g), board.device(device)
    _guest_done(s, g, timeout)
    forms = []
    for pd in dev.power_domains:
        try:      # up to the status code: a line still arriving must not be matched (or parsed) half-way
            s.trace.expect(rf"SCMI: agent={agent.id} proto={POWER_PROTOCOL:#x} msg=0x[45] POWER_STATE_[GS]ET "
                           rf"power={pd}\b.* -> "
                           rf"[A-Z_]+\(-?\d+\)", since=since, timeout=EVIDENCE_GRACE if g.image == "linux" else timeout)
        except ConsoleTimeout:
            pass
        text = s.trace.text_since(since)
        asked = [m for m in trace.messages(text, agent=agent.id, protocol=POWER_PROTOCOL)
                 if m.params.get("power") == pd and m.name in ("POWER_STATE_GET", "POWER_STATE_SET")]
        allowed = [m.line for m in asked if m.ok]
        if allowed:
            raise PermissionKept(f"{g.name}: agent {agent.id} has no permission for {device}, yet the server "
                                 f"let it use power domain {pd}:\n" + "\n".join(allowed))
        form, lines = power_refusal(text, agent.id, pd)
        if form is None:
            heard = [m.line for m in trace.messages(text, agent=agent.id)]
            raise AssertionError(f"{g.name}: agent {agent.id} neither used nor was refused {device}'s power domain "
                                 f"{pd} (its guest finished booting); what the server heard from it:\n"
                                 + ("\n".join(heard[-20:]) or "nothing"))
        forms.append(form)
    return ", ".join(dict.fromkeys(forms))


def misconfig_context(board: Board, spec) -> dict:
    """What a profile's refusal regexes name (Profile.refusals): {id} the agent id a
    bad-config boot gives two channels (its secondary_ids), {dom0_func_id} dom0's SMC
    function id as Xen prints it."""
    from ..plan.plan import secondary_id_overrides
    ids = secondary_id_overrides(board, spec)
    dom0 = board.agent("dom0")
    return {"id": next(iter(ids.values()), ""), "dom0_func_id": f"{dom0.func_id:#x}" if dom0 else ""}


def xen_crash(failed, name: str, context: dict, watch=()) -> tuple[dict, str]:
    """A boot that stopped on a failure line (ConsoleFailure): it must be Xen's (UART0);
    returns the record's observation of it (crash, Xen's lines) and Xen's crash report (the
    80 lines up to the failing one), which the record's lines are checked against."""
    from . import records
    f = failed.failure
    assert f.console.name == "uart0", f"{name}: the boot failed on {f.console.name}, not in Xen:\n{failed}"
    report = "\n".join(f.console.lines(max(0, f.line - 80), f.line + 1))
    return {"crash": True, "xen_lines": records.notable(report, context, crash=True, watch=watch)}, report


def xen_refusal(s: System, board: Board, context: dict, watch=()) -> dict:
    """The record's observation of a boot that went on: Xen's lines and whether dom0's Linux
    kept SCMI (its PROTOCOL_VERSION reached the server on dom0's agent; Xen's own probe on
    dom0's channel, with cells = 2, only asks DISCOVER_AGENT)."""
    from . import records
    s.settle(quiet=1, timeout=10)
    heard = trace.messages(s.trace.text, agent=board.agent("dom0").id, message="PROTOCOL_VERSION")
    return {"crash": False, "xen_lines": records.notable(s.console.text, context, watch=watch),
            "dom0_scmi": bool(heard)}


@checked()
def destroy(s: System, g: Guest, timeout: float = 60) -> None:
    s.shell(f"xl destroy {s.domid(g.name)}", timeout=timeout)


RESET_LINE = r"SCMI: agent={mgmt} proto=0x10 msg=0xb RESET_AGENT_CONFIGURATION target={target} " \
             r"flags=(0x[0-9a-f]+) -> ([A-Z_]+)\(-?\d+\)"
RESET_GRACE = 5     # seconds a reset of the wrong agent waits for the right one before failing


@checked()
def agent_reset(s: System, g: Guest, since: int, profile: Profile | str = "v5", timeout: float = 30,
                evidence: Callable[[], str | None] | None = None) -> list:
    """After trace position `since` Xen's management agent reset g's agent with the
    profile's flags, and every resource the agent had moved away from the board's
    default was put back. Returns the restoring state lines. A reset of another agent
    fails within RESET_GRACE seconds, naming the agent that was reset instead.
    evidence() says when the domain is gone (default: it already is, `xl destroy`
    returned): from then on the reset must come within EVIDENCE_GRACE seconds."""
    board = s.machine.board
    prof = get_profile(profile) if isinstance(profile, str) else profile
    agent, mgmt = agent_of(board, g), board.management
    right, anyone = RESET_LINE.format(mgmt=mgmt.id, target=agent.id), RESET_LINE.format(mgmt=mgmt.id, target=r"\d+")
    gone = evidence or (lambda: f"{g.name}'s domain was destroyed (xl destroy returned)")
    try:
        m = expect_until(s.trace, [right, anyone], since=since, timeout=timeout, evidence=gone,
                         what=f"RESET_AGENT_CONFIGURATION of agent {agent.id} ({agent.name})")
        if not re.fullmatch(right, m.group(0)):
            m = s.trace.expect(right, since=since, timeout=RESET_GRACE)
    except ConsoleTimeout:
        others = [x.line for x in trace.messages(s.trace.text_since(since), agent=mgmt.id,
                                                 message="RESET_AGENT_CONFIGURATION")]
        if others:
            raise AssertionError(f"{g.name}: Xen never reset agent {agent.id} ({agent.name}); it reset instead:\n"
                                 + "\n".join(others)) from None
        raise
    assert m.group(2) == "SUCCESS", m.group(0)
    assert int(m.group(1), 16) == prof.reset_flags, f"{m.group(0)}: the {prof.name} series sends " \
                                                     f"flags={prof.reset_flags:#x}"
    before, after = s.trace.text[:m.match.start()], s.trace.text_since(since)
    restored = trace.states(after, by=mgmt.id, reset_of=agent.id)
    for (kind, rid), (key, value) in changed_by(board, before, agent.id).items():
        default = defaults(board)[(kind, rid)][key]
        assert any(st.subject == (kind, rid) and st.fields.get(key) == default for st in restored), \
            f"{g.name}: agent {agent.id} left {kind} {rid} at {key}={value}; the reset must restore " \
            f"{key}={default}. Restored: {[st.line for st in restored]}"
    return restored


def defaults(board: Board) -> dict:
    d = {("clock", c.id): {"enabled": int(c.enabled), "rate": c.default_rate_hz} for c in board.clocks}
    d.update({("reset", r.id): {"asserted": int(r.asserted)} for r in board.resets})
    d.update({("power", p.id): {"on": int(p.on)} for p in board.power_domains})
    return d


def changed_by(board: Board, text: str, agent_id: int) -> dict:
    """(kind, id) -> (field, value) for resources whose last change in text was made by
    agent_id and left them away from the board default."""
    last = {}
    for st in trace.states(text):
        kind, rid = st.subject
        if (kind, rid) not in defaults(board):
            continue
        for key, value in st.fields.items():
            if key in defaults(board)[(kind, rid)]:
                last[(kind, rid, key)] = (st.by, value)
    out = {}
    for (kind, rid, key), (by, value) in last.items():
        if by == agent_id and value != defaults(board)[(kind, rid)][key]:
            out[(kind, rid)] = (key, value)
    return out


PRIVILEGED_OPS = ("setperm", "protoperm", "reset")


@checked()
def probe_results(s: System, g: Guest, timeout: float = 60) -> list:
    """The scmi-probe guest's op lines, once it printed `SCMI-PROBE: done`."""
    from ..images.build.probe import parse_output
    log = s.wait_guest(g.name, "SCMI-PROBE: done", timeout=timeout)
    ops = [line for line in parse_output(log) if line.kind == "op"]
    assert len(ops) == len(g.ops), f"{g.name}: {len(g.ops)} ops asked, {len(ops)} answered:\n{log[-2000:]}"
    return ops


@checked()
def probe_denied_privileged(s: System, g: Guest) -> None:
    """A non-privileged agent's permission and reset requests reach the server (through
    Xen, on its own agent) and are DENIED; nothing changes state on its behalf."""
    agent = agent_of(s.machine.board, g)
    for line in probe_results(s, g):
        assert line.get("x0") == 0, f"{g.name}: Xen did not forward {line.text}"
        if line["op"] in PRIVILEGED_OPS:
            assert line.status_name == "DENIED", f"{g.name}: a non-privileged agent got {line.text}"
    for name in ("SET_DEVICE_PERMISSIONS", "RESET_AGENT_CONFIGURATION"):
        heard = trace.messages(s.trace.text, agent=agent.id, message=name)
        assert heard and all(m.status == "DENIED" for m in heard), \
            f"{g.name}: the server must hear and deny {name} from agent {agent.id}: {[m.line for m in heard]}"
    assert not trace.states(s.trace.text, by=agent.id), f"agent {agent.id} changed state"


@checked()
def probe_not_forwarded(s: System, g: Guest, since: int = 0) -> None:
    """A guest ringing an SCMI id it was not given: Xen answers NOT_SUPPORTED to every
    SMC, and the server never hears the probe's privileged messages on the agent whose
    id it rang (that agent may be busy with its own guest, which never sends those)."""
    rung = s.machine.board.agent_named(g.dt_agent)
    results = probe_results(s, g)
    for line in results:
        assert line.get("smc") == "NOT_SUPPORTED", f"{g.name}: Xen forwarded {line.text}"
    names = {"setperm": "SET_DEVICE_PERMISSIONS", "protoperm": "SET_PROTOCOL_PERMISSIONS",
             "reset": "RESET_AGENT_CONFIGURATION"}
    sent = {names[line["op"]] for line in results if line["op"] in names}
    assert sent, f"{g.name}: give the probe a privileged op, or this check proves nothing"
    heard = [m.line for m in trace.messages(s.trace.text_since(since), agent=rung.id) if m.name in sent]
    assert not heard, f"{g.name}'s SMCs reached the server as agent {rung.id}: {heard}"
