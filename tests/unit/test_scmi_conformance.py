"""Issue 10: the SCMI server against the rules of the SCMI specification (Arm DEN0056)
that an independent conformance client checks. One test per rule, named after it,
citing the section (v2.0/3.x numbering: 4.1 common, 4.2 Base, 4.6 Clock, 4.7 Sensor).

Rule 1 runs on the default board (boards/qemu-virt.toml) itself: it must conform.
The other rules run on the frozen unit board (tests/unit/boards/scmi-unit.toml),
numbered the same way (xen 1, guests 2-4, dom0 5).
"""
from __future__ import annotations

import pytest

from harness.data.board import load_board
from harness.images.scmi import protocols
from harness.images.scmi import trace as tr
from scmi_helpers import UNIT_BOARD, Builds, needs_gcc, variant

pytestmark = needs_gcc

BASE, POWER, CLOCK, SENSOR, RESET = 0x10, 0x11, 0x14, 0x15, 0x16
from scmi_helpers import (COMMS_ERROR, DENIED, DOM0, G2, G3, INVALID, NOT_FOUND, NOT_SUPPORTED,  # noqa: E402,F401
                          OUT_OF_RANGE, OWN, PROTOCOL_ERROR, SUCCESS, XEN)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    return Builds(tmp_path_factory.mktemp("scmi-conformance"))


@pytest.fixture
def srv(builds):
    server = builds.server(load_board(UNIT_BOARD))
    yield server
    server.close()


def grants(srv, agent, device):
    """Can `agent` read the state of the clocks of `device` (index in the board)?"""
    return srv.call(agent, CLOCK, 0x6, device).status


# --- Rule 1: agent id 0 is the platform ----------------------------------------------

def test_rule1_agent_id_0_is_the_platform(builds):
    """DEN0056 4.1.2 (agent_id): "A value of 0 identifies the platform itself. Where
    implemented, agent_ids are sequential and start from one." 4.2.2.8
    BASE_DISCOVER_AGENT: agent 0 answers with the platform's name (the conformance
    suite checks it starts with "platform"); 4.2.2.2: [15:8] the number of agents."""
    board = load_board("qemu-virt")                     # the default board, as shipped
    ids = sorted(a.id for a in board.agents)
    assert ids == list(range(1, len(ids) + 1)), "real agents number 1..N"
    assert not board.allow_agent_id_0
    with builds.server(board) as srv:
        boot = tr.parse_log(srv.boot_trace, strict=True)[0]
        assert "deviation" not in boot.fields
        for caller in board.agents:
            r = srv.call(caller.id, BASE, 0x7, 0)
            assert (r.status, r.words()[0]) == (SUCCESS, 0)
            assert r.name(4).startswith("platform")
            assert "deviation" not in tr.messages(r.trace)[0].results
            r = srv.call(caller.id, BASE, 0x7, OWN)
            assert (r.words()[0], r.name(4)) == (caller.id, caller.name)
        for a in board.agents:
            r = srv.call(XEN, BASE, 0x7, a.id)
            assert (r.status, r.words()[0], r.name(4)) == (SUCCESS, a.id, a.name)
        assert srv.call(XEN, BASE, 0x7, len(ids) + 1).status == NOT_FOUND
        assert (srv.call(XEN, BASE, 0x1).words()[0] >> 8) & 0xff == len(ids)


def test_rule1_agent_id_0_as_a_real_agent_is_an_opt_in_traced_deviation(builds):
    """The Xen series' documentation numbers dom0's channel 0: a board may reproduce
    that only with [scmi] allow_agent_id_0 = true, and the server says so."""
    def seed_numbering(data):
        data["scmi"]["allow_agent_id_0"] = True
        next(a for a in data["scmi"]["agents"] if a["name"] == "dom0")["id"] = 0
    with builds.server(variant(seed_numbering)) as srv:
        boot = tr.parse_log(srv.boot_trace, strict=True)[0]
        assert boot.fields["deviation"] == "agent-id-0"
        r = srv.call(XEN, BASE, 0x7, 0)
        assert (r.status, r.words()[0], r.name(4)) == (SUCCESS, 0, "dom0")
        m = tr.messages(r.trace)[0]
        assert m.results == {"id": 0, "name": "dom0", "deviation": "agent-id-0"}


# --- Rule 2: an undefined message id answers NOT_FOUND -------------------------------

UNDEFINED = [(p.id, m) for p in protocols.PROTOCOL_TABLE for m in (0x1F, 0x80, 0xFF)] + [
    (BASE, 0x8),                  # BASE_NOTIFY_ERRORS: not implemented here
    (SENSOR, 0x4), (SENSOR, 0x5),  # trip points: not implemented
    (POWER, 0x6), (CLOCK, 0x8), (SENSOR, 0x7), (RESET, 0x5),   # first id past the last
]


@pytest.mark.parametrize("protocol,message", UNDEFINED,
                         ids=[f"{protocols.BY_ID[p].name}-0x{m:x}" for p, m in UNDEFINED])
def test_rule2_undefined_message_id_is_not_found(srv, protocol, message):
    """DEN0056 4.1.4 (status codes): a message id the protocol does not implement
    answers NOT_FOUND, as PROTOCOL_MESSAGE_ATTRIBUTES (4.2.2.3) reports it; NOT_SUPPORTED
    stays for a protocol that is not implemented at all."""
    r = srv.call(XEN, protocol, message, 0, 0)
    assert r.status == NOT_FOUND
    assert tr.messages(r.trace)[0].status == "NOT_FOUND"
    assert srv.call(XEN, protocol, 0x2, message).status == NOT_FOUND
    assert srv.call(XEN, 0x99, message).status == NOT_SUPPORTED


# --- Rule 3: SENSOR_DESCRIPTION_GET past the last sensor -----------------------------

def test_rule3_sensor_description_index_equal_to_count_is_invalid(srv):
    """DEN0056 4.7.2.4 SENSOR_DESCRIPTION_GET: INVALID_PARAMETERS if desc_index is not
    a valid sensor index; valid indexes are 0..num_sensors-1."""
    num = srv.call(DOM0, SENSOR, 0x1).words()[0] & 0xffff
    assert num == 1
    r = srv.call(DOM0, SENSOR, 0x3, num - 1)
    assert (r.status, r.words()[0]) == (SUCCESS, 1)
    assert srv.call(DOM0, SENSOR, 0x3, num).status == INVALID
    assert srv.call(DOM0, SENSOR, 0x3, num + 1).status == INVALID


# --- Rule 4: permission changes aimed at the privileged agent -------------------------

def test_rule4_denying_the_privileged_agent_is_refused_not_ignored(srv):
    """DEN0056 4.2.2.10 BASE_SET_DEVICE_PERMISSIONS / 4.2.2.11
    BASE_SET_PROTOCOL_PERMISSIONS: SUCCESS means the permission is now as asked. The
    privileged agent reaches every resource whatever its grants, so a denial aimed at it
    cannot take effect: DENIED (4.1.4, the caller may not perform the action), no state
    changes, and it still uses the resource."""
    for msg, args in ((0x9, (XEN, 3, 0)), (0xA, (XEN, 3, CLOCK, 0))):
        r = srv.call(XEN, BASE, msg, *args)
        assert r.status == DENIED, hex(msg)
        assert not tr.states(r.trace)
    assert srv.call(XEN, CLOCK, 0x6, 3).status == SUCCESS
    assert CLOCK in list(srv.call(XEN, BASE, 0x6, 0).payload[8:12])
    # allowing it what it already has is true, and answers SUCCESS without a state line
    for msg, args in ((0x9, (XEN, 3, 1)), (0xA, (XEN, 3, CLOCK, 1))):
        r = srv.call(XEN, BASE, msg, *args)
        assert r.status == SUCCESS and not tr.states(r.trace)


# --- Rule 5: RESET_AGENT_CONFIGURATION and permissions -------------------------------

def test_rule5_reset_with_permissions_flag_restores_the_boot_grants(srv):
    """DEN0056 4.2.2.12 BASE_RESET_AGENT_CONFIGURATION: flags bit 0 set, the agent's
    access permissions are reset to their default (the board's boot grants: run-time
    grants go, revoked boot grants come back, no protocol stays denied); clear, the
    permissions are kept. The resources the agent changed return to the board defaults
    either way."""
    uart_clk, guest_clk = 0, 3
    # run-time changes by Xen: a grant dom0 did not have, a boot grant revoked, a protocol denied
    assert srv.call(XEN, BASE, 0x9, DOM0, 3, 1).status == SUCCESS        # + guest_dev
    assert srv.call(XEN, BASE, 0x9, DOM0, 1, 0).status == SUCCESS        # - rtc (boot grant)
    assert srv.call(XEN, BASE, 0xA, DOM0, 0, CLOCK, 0).status == SUCCESS  # uart's clock protocol off
    assert srv.call(DOM0, CLOCK, 0x7, guest_clk, 1).status == SUCCESS    # dom0 enables guest_clk
    assert grants(srv, DOM0, uart_clk) == DENIED

    r = srv.call(XEN, BASE, 0xB, DOM0, 0)                                # without the flag
    assert r.status == SUCCESS
    assert tr.states(r.trace, clock=guest_clk, enabled=0, reset_of=DOM0)  # back to the default
    assert not tr.states(r.trace, granted=0) and not tr.states(r.trace, granted=1)
    assert grants(srv, DOM0, guest_clk) == SUCCESS                       # permissions kept
    assert grants(srv, DOM0, uart_clk) == DENIED

    r = srv.call(XEN, BASE, 0xB, DOM0, 1)                                # with the flag
    assert r.status == SUCCESS
    changed = {(s.fields["device"], s.fields["granted"]) for s in tr.states(r.trace, agent=DOM0)
               if "granted" in s.fields}
    assert changed == {(3, 0), (1, 1)}
    assert tr.states(r.trace, device=0, agent=DOM0, proto=CLOCK, allowed=1, by=XEN)
    assert grants(srv, DOM0, guest_clk) == DENIED                        # run-time grant gone
    assert grants(srv, DOM0, uart_clk) == SUCCESS                        # boot grants back
    assert srv.call(DOM0, SENSOR, 0x6, 0, 0).status == SUCCESS           # rtc's sensor too


def test_rule5_reset_with_permissions_flag_revokes_what_xen_granted(srv):
    """The case Xen relies on when a domain dies: a guest without boot grants loses
    every device Xen passed through to it."""
    assert srv.call(XEN, BASE, 0x9, G2, 3, 1).status == SUCCESS
    assert grants(srv, G2, 3) == SUCCESS
    assert srv.call(XEN, BASE, 0xB, G2, 1).status == SUCCESS
    assert grants(srv, G2, 3) == DENIED


# --- Rule 6: CLOCK_RATE_SET outside the clock's rates --------------------------------

@pytest.mark.parametrize("flags", [0x0, 0x4, 0x8, 0xC], ids=["down", "up", "auto", "auto+up"])
@pytest.mark.parametrize("rate", [1000, 24999999, 100000001, 1 << 40])
def test_rule6_clock_rate_set_outside_the_range_is_out_of_range(srv, flags, rate):
    """DEN0056 4.6.2.6 CLOCK_RATE_SET: flags bit 2 rounds up (else down), bit 3 lets the
    platform round automatically. We read the rounding as choosing between the supported
    rates around a request inside the clock's range [lowest, highest]; a request outside
    it is not a rate of the clock whichever way it is rounded: OUT_OF_RANGE, and the rate
    stays as it was."""
    r = srv.call(XEN, CLOCK, 0x5, flags, 2, rate & 0xFFFFFFFF, rate >> 32)
    assert r.status == OUT_OF_RANGE
    assert not tr.states(r.trace)
    assert srv.call(XEN, CLOCK, 0x6, 2).words() == [50000000, 0]


@pytest.mark.parametrize("flags,rate,got", [
    (0x0, 60000000, 50000000), (0x4, 60000000, 100000000), (0x8, 80000000, 100000000),
    (0x8, 30000000, 25000000), (0xC, 30000000, 25000000),      # auto ignores bit 2
    (0x0, 25000000, 25000000), (0x4, 100000000, 100000000),    # the ends are in range
])
def test_rule6_clock_rate_set_inside_the_range_rounds(srv, flags, rate, got):
    r = srv.call(XEN, CLOCK, 0x5, flags, 2, rate, 0)
    assert r.status == SUCCESS
    assert srv.call(XEN, CLOCK, 0x6, 2).words() == [got, 0]
