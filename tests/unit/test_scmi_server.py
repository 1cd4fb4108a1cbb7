"""The SCMI server's protocol and policy code, built natively (ASan+UBSan)
and driven through its SMT channels exactly as an agent would, no QEMU.

Unit board (tests/unit/boards/scmi-unit.toml): agent 5 dom0 (boot grants
uart=dev0{clk0}, rtc=dev1{clk1,sensor0}), agent 1 xen (privileged), agents 2-4
guests with nothing; devices 2 periph {clk2,rst0,pd0} and 3 guest_dev
{clk3,rst1,pd1}. Agent id 0 is the platform's (DEN0056 4.1.2). The rules of
issue 10, one test each with the spec section, are in test_scmi_conformance.py.
"""
from __future__ import annotations

import random
import struct

import pytest

from harness.images.scmi import trace as tr
from harness.images.scmi.host import header
from scmi_helpers import UNIT_BOARD, Builds, needs_gcc, variant


pytestmark = needs_gcc

BASE, POWER, CLOCK, SENSOR, RESET = 0x10, 0x11, 0x14, 0x15, 0x16
from scmi_helpers import (COMMS_ERROR, DENIED, DOM0, G2, G3, INVALID, NOT_FOUND, NOT_SUPPORTED,  # noqa: E402,F401
                          OUT_OF_RANGE, OWN, PROTOCOL_ERROR, SUCCESS, XEN)


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    return Builds(tmp_path_factory.mktemp("scmi-host"))


@pytest.fixture
def board():
    from harness.data.board import load_board
    return load_board(UNIT_BOARD)


@pytest.fixture
def srv(builds, board):
    server = builds.server(board)
    yield server
    server.close()   # raises if ASan/UBSan reported anything


def grant(srv, agent, device, allow=1):
    r = srv.call(XEN, BASE, 0x9, agent, device, allow)
    assert r.status == SUCCESS
    return r


def one_message(reply) -> tr.Message:
    msgs = tr.messages(reply.trace)
    assert len(msgs) == 1, reply.trace
    return msgs[0]


# --- Base protocol -----------------------------------------------------------

def test_boot_trace_and_grants(srv):
    events = tr.parse_log(srv.boot_trace, strict=True)
    assert isinstance(events[0], tr.Boot) and events[0].fields["board"] == "qemu-virt"
    grants = tr.states(events, granted=1)
    assert [(g.fields["device"], g.fields["agent"], g.by) for g in grants] == [(0, DOM0, None), (1, DOM0, None)]


def test_protocol_version(srv):
    r = srv.call(DOM0, BASE, 0x0)
    assert (r.status, r.words()) == (SUCCESS, [0x20000])
    assert r.channel_status == 1 and r.ret == 0


@pytest.mark.parametrize("agent,nproto", [(DOM0, 2), (XEN, 4), (G2, 0)])
def test_protocol_attributes_counts_callers_protocols_and_all_agents(srv, agent, nproto):
    r = srv.call(agent, BASE, 0x1)
    assert r.status == SUCCESS
    assert r.words()[0] & 0xff == nproto
    assert (r.words()[0] >> 8) & 0xff == 5


def test_protocol_message_attributes(srv):
    for msg in (0, 1, 2, 3, 4, 5, 6, 7, 9, 0xA, 0xB):
        r = srv.call(G2, BASE, 0x2, msg)
        assert (r.status, r.words()) == (SUCCESS, [0]), msg
    assert srv.call(G2, BASE, 0x2, 0x8).status == NOT_FOUND     # NOTIFY_ERRORS: no
    assert srv.call(G2, BASE, 0x2, 0xC).status == NOT_FOUND
    assert srv.call(G2, BASE, 0x2).status == PROTOCOL_ERROR


def test_discover_vendor_subvendor_implementation(srv):
    assert srv.call(DOM0, BASE, 0x3).name(0) == "XenHarness"
    r = srv.call(DOM0, BASE, 0x4)
    assert (r.status, r.name(0)) == (SUCCESS, "qemu-virt")
    r = srv.call(DOM0, BASE, 0x5)
    assert (r.status, r.words()) == (SUCCESS, [0x10000])
    assert r.length == 4 + 8


def _protocols(reply):
    n = reply.words()[0]
    return list(reply.payload[8:8 + n])


def test_discover_list_protocols_only_what_the_caller_may_use(srv):
    assert _protocols(srv.call(DOM0, BASE, 0x6, 0)) == [CLOCK, SENSOR]
    assert _protocols(srv.call(XEN, BASE, 0x6, 0)) == [POWER, CLOCK, SENSOR, RESET]
    assert _protocols(srv.call(G2, BASE, 0x6, 0)) == []
    grant(srv, G2, 3)
    assert _protocols(srv.call(G2, BASE, 0x6, 0)) == [POWER, CLOCK, RESET]


def test_discover_list_protocols_traces_the_ids_it_offers(srv):
    """The trace says which protocols an agent was offered (a protocol not offered is how a
    missing permission shows before any request: checks.power_refusal); none: no key."""
    m = one_message(srv.call(XEN, BASE, 0x6, 1))
    assert (m.results["count"], m.results["ids"]) == (3, f"{CLOCK:#x},{SENSOR:#x},{RESET:#x}")
    m = one_message(srv.call(G2, BASE, 0x6, 0))
    assert m.results == {"count": 0}


def test_discover_list_protocols_skip_and_padding(srv):
    r = srv.call(XEN, BASE, 0x6, 1)
    assert _protocols(r) == [CLOCK, SENSOR, RESET]
    assert r.length == 4 + 8 + 4          # 3 ids padded to one word
    r = srv.call(XEN, BASE, 0x6, 4)
    assert (r.status, r.words()) == (SUCCESS, [0])
    assert srv.call(XEN, BASE, 0x6, 5).status == INVALID
    assert srv.call(XEN, BASE, 0x6).status == PROTOCOL_ERROR


@pytest.mark.parametrize("agent,name", [(DOM0, "dom0"), (1, "xen"), (2, "guest2"), (4, "guest4")])
def test_discover_agent_own_id(srv, agent, name):
    r = srv.call(agent, BASE, 0x7, OWN)
    assert (r.status, r.words()[0], r.name(4)) == (SUCCESS, agent, name)


def test_discover_agent_by_id(srv):
    r = srv.call(G3, BASE, 0x7, DOM0)
    assert (r.status, r.words()[0], r.name(4)) == (SUCCESS, DOM0, "dom0")
    r = srv.call(G3, BASE, 0x7, 1)
    assert (r.words()[0], r.name(4)) == (1, "xen")
    assert srv.call(G3, BASE, 0x7, 6).status == NOT_FOUND
    assert srv.call(G3, BASE, 0x7, 0xFFFFFFFE).status == NOT_FOUND
    assert one_message(srv.call(G3, BASE, 0x7, 1)).results == {"id": 1, "name": "xen"}


def test_notify_errors_not_implemented(srv):
    # not implemented over SMC: an undefined message of an implemented protocol (4.1.4)
    assert srv.call(DOM0, BASE, 0x8, 1).status == NOT_FOUND


def test_set_device_permissions_grant_and_revoke(srv):
    assert srv.call(G2, CLOCK, 0x7, 3, 1).status == DENIED     # no device, no clock protocol
    r = grant(srv, G2, 3)
    assert tr.states(r.trace, device=3, agent=2, granted=1, by=1)
    assert srv.call(G2, CLOCK, 0x7, 3, 1).status == SUCCESS
    assert srv.call(G2, CLOCK, 0x7, 2, 1).status == DENIED     # clock 2 is device 2's
    r = grant(srv, G2, 3, 0)
    assert tr.states(r.trace, device=3, agent=2, granted=0, by=1)
    assert srv.call(G2, CLOCK, 0x6, 3).status == DENIED
    # granting twice is fine and silent
    grant(srv, G2, 3)
    assert not tr.states(grant(srv, G2, 3).trace)


def test_set_device_permissions_errors(srv):
    assert srv.call(DOM0, BASE, 0x9, 2, 3, 1).status == DENIED          # not privileged
    assert srv.call(G2, BASE, 0x9, 2, 3, 1).status == DENIED            # not even for itself
    assert srv.call(XEN, BASE, 0x9, 9, 3, 1).status == NOT_FOUND        # no agent 9
    assert srv.call(XEN, BASE, 0x9, 2, 4, 1).status == NOT_FOUND        # no device 4
    assert srv.call(XEN, BASE, 0x9, 2, 3, 3).status == INVALID          # reserved flag bits
    assert srv.call(XEN, BASE, 0x9, 2, 3).status == PROTOCOL_ERROR
    assert srv.call(G2, CLOCK, 0x6, 3).status == DENIED                 # nothing changed


def test_set_protocol_permissions(srv):
    grant(srv, G2, 3)
    r = srv.call(XEN, BASE, 0xA, 2, 3, CLOCK, 0)
    assert r.status == SUCCESS
    assert tr.states(r.trace, device=3, agent=2, proto=CLOCK, allowed=0)
    assert srv.call(G2, CLOCK, 0x6, 3).status == DENIED
    assert srv.call(G2, RESET, 0x4, 1, 2, 0).status == SUCCESS          # reset still allowed
    assert CLOCK not in _protocols(srv.call(G2, BASE, 0x6, 0))
    assert srv.call(XEN, BASE, 0xA, 2, 3, CLOCK, 1).status == SUCCESS
    assert srv.call(G2, CLOCK, 0x6, 3).status == SUCCESS


def test_set_protocol_permissions_errors(srv):
    assert srv.call(DOM0, BASE, 0xA, 2, 3, CLOCK, 1).status == DENIED
    assert srv.call(XEN, BASE, 0xA, 9, 3, CLOCK, 1).status == NOT_FOUND
    assert srv.call(XEN, BASE, 0xA, 2, 9, CLOCK, 1).status == NOT_FOUND
    assert srv.call(XEN, BASE, 0xA, 2, 3, CLOCK, 2).status == INVALID
    assert srv.call(XEN, BASE, 0xA, 2, 3, 0x100 | CLOCK, 1).status == INVALID
    assert srv.call(XEN, BASE, 0xA, 2, 3, BASE, 0).status == NOT_SUPPORTED
    assert srv.call(XEN, BASE, 0xA, 2, 3, 0x99, 0).status == NOT_SUPPORTED
    assert srv.call(XEN, BASE, 0xA, 2, 3, CLOCK).status == PROTOCOL_ERROR


def test_reset_agent_configuration_restores_touched_state(srv):
    grant(srv, G2, 3)
    srv.call(G2, CLOCK, 0x5, 0, 3, 48000000, 0)
    srv.call(G2, CLOCK, 0x7, 3, 1)
    srv.call(G2, RESET, 0x4, 1, 2, 0)            # assert
    srv.call(G2, POWER, 0x4, 0, 1, 0)            # on
    r = srv.call(XEN, BASE, 0xB, 2, 0)
    assert r.status == SUCCESS
    assert tr.states(r.trace, agent_reset=2, flags=0, by=1)
    restored = {(s.subject, tuple(sorted(s.fields.items()))) for s in tr.states(r.trace, reset_of=2)}
    assert len(restored) == 4
    assert tr.states(r.trace, clock=3, enabled=0, reset_of=2)
    assert tr.states(r.trace, clock=3, rate=24000000, reset_of=2)
    assert tr.states(r.trace, reset=1, asserted=0, reset_of=2)
    assert tr.states(r.trace, power=1, on=0, reset_of=2)
    # permissions kept without flag bit 0
    r = srv.call(G2, CLOCK, 0x6, 3)
    assert (r.status, r.words()) == (SUCCESS, [24000000, 0])
    assert srv.call(XEN, POWER, 0x5, 1).words() == [0x40000000]


def test_reset_agent_configuration_with_permissions_flag_revokes(srv):
    grant(srv, G2, 3)
    grant(srv, G2, 2)
    srv.call(XEN, BASE, 0xA, 2, 2, RESET, 0)
    r = srv.call(XEN, BASE, 0xB, 2, 1)
    assert r.status == SUCCESS
    assert {s.fields["device"] for s in tr.states(r.trace, agent=2, granted=0)} == {2, 3}
    assert tr.states(r.trace, device=2, agent=2, proto=RESET, allowed=1)
    assert srv.call(G2, CLOCK, 0x6, 3).status == DENIED
    assert _protocols(srv.call(G2, BASE, 0x6, 0)) == []


def test_reset_agent_only_undoes_that_agents_changes(srv):
    grant(srv, G2, 3)
    grant(srv, G3, 3)
    srv.call(G3, CLOCK, 0x7, 3, 1)                # guest3 enables the shared clock
    srv.call(G2, POWER, 0x4, 0, 1, 0)             # guest2 powers the domain
    r = srv.call(XEN, BASE, 0xB, 2, 1)
    assert not tr.states(r.trace, clock=3)
    assert srv.call(G3, CLOCK, 0x3, 3).words()[0] == 1          # still enabled
    assert srv.call(G3, POWER, 0x5, 1).words() == [0x40000000]  # guest2's change undone


def test_reset_agent_keeps_a_later_change_by_another_agent(srv):
    """A shared clock (periph_clk, of periph, default 50 MHz): dom0 sets 25 MHz, guest2
    then 100 MHz; resetting dom0 leaves guest2's 100 MHz (the write in force is not
    dom0's). Resetting guest2 then puts the board default back."""
    grant(srv, DOM0, 2)
    grant(srv, G2, 2)
    assert srv.call(DOM0, CLOCK, 0x5, 0, 2, 25000000, 0).status == SUCCESS
    assert srv.call(G2, CLOCK, 0x5, 0, 2, 100000000, 0).status == SUCCESS
    r = srv.call(XEN, BASE, 0xB, DOM0, 0)
    assert r.status == SUCCESS and not tr.states(r.trace, clock=2)
    assert srv.call(XEN, CLOCK, 0x6, 2).words() == [100000000, 0]
    r = srv.call(XEN, BASE, 0xB, G2, 0)
    assert tr.states(r.trace, clock=2, rate=50000000, reset_of=G2)
    assert srv.call(XEN, CLOCK, 0x6, 2).words() == [50000000, 0]


def test_reset_agent_undoes_its_own_change_in_force_to_the_board_default(srv):
    """guest2 sets 100 MHz, dom0 then 25 MHz: dom0's write is in force, so resetting dom0
    puts the board default (50 MHz) back, not guest2's earlier rate; resetting guest2
    afterwards changes nothing (its write is no longer in force)."""
    grant(srv, DOM0, 2)
    grant(srv, G2, 2)
    srv.call(G2, CLOCK, 0x5, 0, 2, 100000000, 0)
    srv.call(DOM0, CLOCK, 0x5, 0, 2, 25000000, 0)
    r = srv.call(XEN, BASE, 0xB, DOM0, 0)
    assert tr.states(r.trace, clock=2, rate=50000000, reset_of=DOM0)
    assert srv.call(XEN, CLOCK, 0x6, 2).words() == [50000000, 0]
    r = srv.call(XEN, BASE, 0xB, G2, 0)
    assert not tr.states(r.trace, clock=2)
    # a clock's rate and its gate are separate settings: the gate dom0 set stays after
    # resetting guest2, who changed only the rate
    srv.call(DOM0, CLOCK, 0x7, 2, 1)
    srv.call(G2, CLOCK, 0x5, 0, 2, 100000000, 0)
    srv.call(XEN, BASE, 0xB, G2, 0)
    assert srv.call(XEN, CLOCK, 0x3, 2).words()[0] & 1 == 1
    assert srv.call(XEN, CLOCK, 0x6, 2).words() == [50000000, 0]


def test_reset_agent_configuration_errors(srv):
    assert srv.call(DOM0, BASE, 0xB, 2, 0).status == DENIED
    assert srv.call(G2, BASE, 0xB, 2, 0).status == DENIED
    assert srv.call(XEN, BASE, 0xB, 7, 0).status == NOT_FOUND
    assert srv.call(XEN, BASE, 0xB, 2, 2).status == INVALID
    assert srv.call(XEN, BASE, 0xB, 2).status == PROTOCOL_ERROR


# --- dispatch and common messages ------------------------------------------

def test_unknown_protocol_and_message(srv):
    assert srv.call(XEN, 0x99, 0x0).status == NOT_SUPPORTED           # no such protocol
    assert srv.call(XEN, BASE, 0x20).status == NOT_FOUND              # no such message
    assert srv.call(XEN, CLOCK, 0xFF).status == NOT_FOUND
    assert srv.call(XEN, SENSOR, 0x4, 0, 0).status == NOT_FOUND       # trip points
    m = one_message(srv.call(XEN, CLOCK, 0x42))
    assert (m.name, m.status) == ("UNKNOWN", "NOT_FOUND")


def test_protocol_denied_to_agent_without_devices(srv):
    for proto in (POWER, CLOCK, SENSOR, RESET):
        assert srv.call(G2, proto, 0x0).status == DENIED
    assert srv.call(DOM0, RESET, 0x0).status == DENIED


@pytest.mark.parametrize("proto,version", [(POWER, 0x10000), (CLOCK, 0x10000),
                                           (SENSOR, 0x10000), (RESET, 0x10000)])
def test_versions_and_message_attributes(srv, proto, version):
    assert srv.call(XEN, proto, 0x0).words() == [version]
    assert srv.call(XEN, proto, 0x0, 0).status == PROTOCOL_ERROR
    assert srv.call(XEN, proto, 0x2, 0x3).status == SUCCESS
    assert srv.call(XEN, proto, 0x2, 0x40).status == NOT_FOUND
    assert srv.call(XEN, proto, 0x1, 0).status == PROTOCOL_ERROR


# --- Clock ---------------------------------------------------------------------

def test_clock_attributes_are_public_state_is_not(srv):
    r = srv.call(DOM0, CLOCK, 0x1)
    assert r.words() == [4]
    r = srv.call(DOM0, CLOCK, 0x3, 0)
    assert (r.words()[0], r.name(4)) == (1, "uart_clk")
    r = srv.call(DOM0, CLOCK, 0x3, 3)                  # description of a clock dom0 cannot use
    assert (r.status, r.words()[0], r.name(4)) == (SUCCESS, 0, "guest_clk")
    assert srv.call(DOM0, CLOCK, 0x6, 3).status == DENIED
    assert srv.call(DOM0, CLOCK, 0x3, 4).status == NOT_FOUND


def test_clock_describe_rates(srv):
    r = srv.call(XEN, CLOCK, 0x4, 2, 0)
    w = r.words()
    assert w[0] == 3                                   # 3 returned, 0 remaining, discrete
    assert [w[1], w[3], w[5]] == [25000000, 50000000, 100000000]
    r = srv.call(XEN, CLOCK, 0x4, 2, 2)
    assert r.words() == [1, 100000000, 0]
    assert srv.call(XEN, CLOCK, 0x4, 2, 3).status == OUT_OF_RANGE
    assert srv.call(XEN, CLOCK, 0x4, 9, 0).status == NOT_FOUND
    assert srv.call(XEN, CLOCK, 0x4, 2).status == PROTOCOL_ERROR


@pytest.mark.parametrize("flags,want,got", [
    (0x0, 50000000, 50000000),
    (0x0, 60000000, 50000000),       # round down
    (0x4, 60000000, 100000000),      # round up
    (0x8, 80000000, 100000000),      # nearest
    (0x8, 30000000, 25000000),
    (0x2, 100000000, 100000000),     # ignore-delayed-response is harmless
])
def test_clock_rate_set_rounding(srv, flags, want, got):
    r = srv.call(XEN, CLOCK, 0x5, flags, 2, want, 0)
    assert r.status == SUCCESS
    assert srv.call(XEN, CLOCK, 0x6, 2).words() == [got, 0]


def test_clock_rate_set_errors(srv):
    assert srv.call(XEN, CLOCK, 0x5, 0, 2, 1000, 0).status == OUT_OF_RANGE
    assert srv.call(XEN, CLOCK, 0x5, 0x4, 2, 200000000, 0).status == OUT_OF_RANGE
    assert srv.call(XEN, CLOCK, 0x5, 0x1, 2, 50000000, 0).status == NOT_SUPPORTED   # async
    assert srv.call(XEN, CLOCK, 0x5, 0x10, 2, 50000000, 0).status == INVALID
    assert srv.call(XEN, CLOCK, 0x5, 0, 7, 50000000, 0).status == NOT_FOUND
    assert srv.call(DOM0, CLOCK, 0x5, 0, 2, 50000000, 0).status == DENIED
    assert srv.call(XEN, CLOCK, 0x5, 0, 2, 50000000).status == PROTOCOL_ERROR


def test_clock_rate_64bit(srv):
    r = srv.call(XEN, CLOCK, 0x5, 0x8, 2, 0, 1)          # 2^32 Hz: above the clock's range
    assert r.status == OUT_OF_RANGE
    assert one_message(r).params["rate"] == 1 << 32
    r = srv.call(XEN, CLOCK, 0x5, 0x8, 2, 100000000, 0)
    assert (r.status, one_message(r).results["rate"]) == (SUCCESS, 100000000)


def test_clock_config_set(srv):
    r = srv.call(DOM0, CLOCK, 0x7, 0, 0)
    assert r.status == SUCCESS
    assert tr.states(r.trace, clock=0, enabled=0, by=DOM0)
    assert srv.call(DOM0, CLOCK, 0x3, 0).words()[0] == 0
    assert srv.call(DOM0, CLOCK, 0x7, 0, 2).status == INVALID
    assert srv.call(DOM0, CLOCK, 0x7, 2, 1).status == DENIED
    assert srv.call(DOM0, CLOCK, 0x7, 9, 1).status == NOT_FOUND
    assert srv.call(DOM0, CLOCK, 0x7, 0).status == PROTOCOL_ERROR


# --- Reset domain ---------------------------------------------------------------

def test_reset_domain(srv):
    assert srv.call(XEN, RESET, 0x1).words() == [2]
    r = srv.call(XEN, RESET, 0x3, 1)
    assert (r.words()[0], r.words()[1], r.name(8)) == (0, 0x7fffffff, "guest_rst")
    assert srv.call(XEN, RESET, 0x3, 2).status == NOT_FOUND
    r = srv.call(XEN, RESET, 0x4, 1, 0x2, 0)
    assert tr.states(r.trace, reset=1, asserted=1, by=1)
    r = srv.call(XEN, RESET, 0x4, 1, 0x0, 0)
    assert tr.states(r.trace, reset=1, asserted=0, by=1)
    r = srv.call(XEN, RESET, 0x4, 1, 0x1, 0)
    assert tr.states(r.trace, reset=1, pulsed=1)


def test_reset_domain_errors(srv):
    assert srv.call(XEN, RESET, 0x4, 1, 0x4, 0).status == NOT_SUPPORTED     # async
    assert srv.call(XEN, RESET, 0x4, 1, 0x8, 0).status == INVALID
    assert srv.call(XEN, RESET, 0x4, 1, 0x1, 1).status == INVALID           # not a cold reset
    assert srv.call(XEN, RESET, 0x4, 5, 0x1, 0).status == NOT_FOUND
    grant(srv, G2, 3)
    assert srv.call(G2, RESET, 0x4, 0, 0x1, 0).status == DENIED
    assert srv.call(G2, RESET, 0x4, 1, 0x1).status == PROTOCOL_ERROR


# --- Power domain ---------------------------------------------------------------

def test_power_domain(srv):
    r = srv.call(XEN, POWER, 0x1)
    assert r.words() == [2, 0, 0, 0]
    r = srv.call(XEN, POWER, 0x3, 0)
    assert (r.words()[0], r.name(4)) == (1 << 29, "pd_periph")
    assert srv.call(XEN, POWER, 0x5, 0).words() == [0x40000000]
    r = srv.call(XEN, POWER, 0x4, 0, 0, 0)
    assert tr.states(r.trace, power=0, on=1, by=1)
    assert srv.call(XEN, POWER, 0x5, 0).words() == [0]
    r = srv.call(XEN, POWER, 0x4, 0, 0, 0x40000000)
    assert tr.states(r.trace, power=0, on=0)


def test_power_domain_errors(srv):
    assert srv.call(XEN, POWER, 0x4, 0, 0, 0x1234).status == INVALID
    assert srv.call(XEN, POWER, 0x4, 2, 0, 0).status == INVALID
    assert srv.call(XEN, POWER, 0x4, 1, 0, 0).status == NOT_SUPPORTED       # async
    assert srv.call(XEN, POWER, 0x4, 0, 3, 0).status == NOT_FOUND
    assert srv.call(XEN, POWER, 0x5, 3).status == NOT_FOUND
    assert srv.call(XEN, POWER, 0x3, 3).status == NOT_FOUND
    grant(srv, G2, 3)
    assert srv.call(G2, POWER, 0x5, 0).status == DENIED
    assert srv.call(G2, POWER, 0x4, 0, 0, 0).status == DENIED
    assert srv.call(G2, POWER, 0x4, 0, 0).status == PROTOCOL_ERROR


# --- Sensor -----------------------------------------------------------------------

def test_sensor(srv):
    assert srv.call(DOM0, SENSOR, 0x1).words() == [1, 0, 0, 0]
    r = srv.call(DOM0, SENSOR, 0x3, 0)
    w = r.words()
    assert w[0] == 1                                   # one returned, none remaining
    assert w[1] == 0 and w[2] == 0                     # id 0, no async, no trip points
    assert w[3] & 0xff == 2                            # degrees C
    assert (w[3] >> 11) & 0x1f == 0x1d                 # 10^-3 (5-bit two's complement)
    assert r.name(16) == "soc_temp"
    assert srv.call(DOM0, SENSOR, 0x3, 1).status == INVALID   # index = count: rule 3
    assert srv.call(DOM0, SENSOR, 0x3, 2).status == INVALID
    r = srv.call(DOM0, SENSOR, 0x6, 0, 0)
    assert r.words() == [45000, 0]


def test_sensor_errors(srv):
    assert srv.call(DOM0, SENSOR, 0x6, 0, 1).status == NOT_SUPPORTED        # async
    assert srv.call(DOM0, SENSOR, 0x6, 0, 2).status == INVALID
    assert srv.call(DOM0, SENSOR, 0x6, 1, 0).status == NOT_FOUND
    assert srv.call(DOM0, SENSOR, 0x6, 0).status == PROTOCOL_ERROR
    grant(srv, G2, 2)                                  # sensor protocol not in device 2
    assert srv.call(G2, SENSOR, 0x6, 0, 0).status == DENIED


def test_board_without_sensors_or_grants(builds):
    def strip(data):
        data["scmi"].pop("sensors")
        for d in data["scmi"]["devices"]:
            d.pop("sensors", None)
        for a in data["scmi"]["agents"]:
            a.pop("devices", None)
    with builds.server(variant(strip)) as srv:
        assert srv.call(XEN, SENSOR, 0x1).words()[0] == 0
        assert srv.call(XEN, SENSOR, 0x3, 0).status == INVALID   # no sensor 0 to describe
        assert srv.call(XEN, SENSOR, 0x6, 0, 0).status == NOT_FOUND
        assert _protocols(srv.call(DOM0, BASE, 0x6, 0)) == []


# --- Transport: malformed and hostile input --------------------------------------

def test_unknown_function_id_is_smc_unk(srv):
    r = srv.smc(0x82000010, hdr=header(BASE, 0))
    assert r.ret == -1 and not r.trace


def test_doorbell_without_message(srv, board):
    r = srv.smc(board.agents[0].func_id, hdr=header(BASE, 0), channel_status=1)
    assert r.ret == 0
    assert r.channel_status == 3                      # FREE | ERROR
    (e,) = tr.parse_log(r.trace, strict=True)
    assert isinstance(e, tr.SmtError) and (e.agent, e.error) == (board.agents[0].id, "channel-free")


@pytest.mark.parametrize("length", [0, 3, 4 + 129, 0x1000, 0xFFFFFFFF])
def test_bad_length_is_comms_error(srv, board, length):
    r = srv.smc(board.agents[0].func_id, hdr=header(BASE, 0), length=length)
    assert r.status == COMMS_ERROR
    assert r.channel_status == 3
    m = one_message(r)
    assert (m.status, m.params["length"]) == ("COMMS_ERROR", length)


def test_extra_payload_is_protocol_error(srv, board):
    r = srv.smc(board.agents[1].func_id, hdr=header(BASE, 0x7), payload=struct.pack("<II", OWN, 0))
    assert r.status == PROTOCOL_ERROR and r.channel_status == 1


def test_token_and_header_preserved(srv, board):
    hdr = header(BASE, 0x0, token=0x2a5)
    r = srv.smc(board.agents[0].func_id, hdr=hdr)
    assert r.header == hdr and r.status == SUCCESS


def test_caller_is_identified_by_channel_not_by_message(srv, board):
    # a guest writing to its own channel cannot claim to be xen
    r = srv.smc(board.agents[2].func_id, hdr=header(BASE, 0x9), payload=struct.pack("<III", 2, 3, 1))
    assert r.status == DENIED
    assert one_message(r).agent == 2


def test_fuzz_never_crashes_and_always_traces(srv, board):
    rng = random.Random(1234)
    statuses = set(tr.STATUS.values())
    for _ in range(1500):
        agent = rng.choice(board.agents)
        proto = rng.choice([BASE, POWER, CLOCK, SENSOR, RESET, rng.randrange(256)])
        msg = rng.randrange(16) if rng.random() < 0.9 else rng.randrange(256)
        nwords = rng.randrange(6)
        words = [rng.choice([0, 1, 2, 3, 5, 0xFF, OWN, rng.getrandbits(32)]) for _ in range(nwords)]
        payload = struct.pack(f"<{nwords}I", *words)
        if rng.random() < 0.1:
            payload += bytes(rng.randrange(1, 4))          # not a whole word
        r = srv.smc(agent.func_id, hdr=header(proto, msg, rng.randrange(1024)), payload=payload)
        assert r.ret == 0 and r.channel_status == 1
        assert r.status in statuses
        assert 8 <= r.length <= 4 + 128
        m = one_message(r)
        assert (m.agent, m.protocol, m.message, m.code) == (agent.id, proto, msg, r.status)
        for line in r.trace:
            tr.parse_line(line)                            # strict: every line parses
