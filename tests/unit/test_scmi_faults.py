"""Our SCMI server misbehaving on purpose (images/tf-a/scmi-server/scmi_fault.c), built
natively: the table the harness loads per boot (harness.plan.plan.fault_table) arms each fault,
each hit is traced (SCMI-FAULT:), and nothing else changes."""
import struct


from harness.plan.plan import fault_table
from harness.images.scmi import trace as tr
from harness.data.spec import Fault

from scmi_helpers import DENIED, G2, G3, SUCCESS, XEN, UNIT_BOARD, needs_gcc
from test_scmi_server import BASE, board, builds  # noqa: F401  (the same host build, made once a session)

pytestmark = needs_gcc


def server(builds, board, *faults):
    return builds.server(board, faults=fault_table(board, faults) if faults else b"")


def test_no_table_arms_nothing(builds, board):
    s = server(builds, board)
    assert not [line for line in s.boot_trace if line.startswith("SCMI-FAULT")]
    s.close()


def test_a_status_fault_answers_it_and_changes_nothing(builds, board):
    s = server(builds, board, Fault(agent="xen", message="SET_DEVICE_PERMISSIONS", status="DENIED", times=1))
    assert "SCMI-FAULT: armed=1" in s.boot_trace
    r = s.call(XEN, BASE, 0x9, G3, 2, 1)
    assert r.status == DENIED and tr.faults(r.trace)[0].fields["kind"] == "status"
    assert not tr.states(r.trace), "a refused grant changes no state"
    assert s.call(XEN, BASE, 0x9, G3, 2, 1).status == SUCCESS, "times = 1: the next one is served"
    s.close()


def test_a_busy_fault_never_answers(builds, board):
    s = server(builds, board, Fault(agent="xen", message="RESET_AGENT_CONFIGURATION", kind="busy"))
    r = s.call(XEN, BASE, 0xB, G2, 0)
    assert r.channel_status & 0x1 == 0, "the channel stays busy"
    assert not tr.messages(r.trace) and tr.faults(r.trace)[0].fields["kind"] == "busy"
    s.close()


def test_an_agent_id_fault_lies_in_discover_agent(builds, board):
    s = server(builds, board, Fault(agent="guest3", message="DISCOVER_AGENT", kind="agent-id", value=7))
    r = s.call(G3, BASE, 0x7, 0xFFFFFFFF)
    assert r.status == SUCCESS and r.words()[0] == 7, "the id answered is the lie (the SCMI: line shows the real one)"
    s.close()


def test_a_length_fault_shortens_the_reply(builds, board):
    s = server(builds, board, Fault(agent="guest2", message="PROTOCOL_VERSION", kind="length", value=-4))
    r = s.call(G2, BASE, 0x0)
    assert r.length == 4 + 4, "status only: the version word is cut"
    s.close()


def test_table_layout():
    from harness.data.board import load_board
    t = fault_table(load_board(UNIT_BOARD), [Fault(agent="any", message="any", kind="busy", times=2)])
    assert struct.unpack("<9I", t) == (0x54464353, 1, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 2, 0, 2)


def test_an_smc_fault_refuses_the_doorbell_and_takes_nothing(builds, board):
    s = server(builds, board, Fault(agent="xen", message="RESET_AGENT_CONFIGURATION", kind="smc", value=-3, times=1))
    r = s.call(XEN, BASE, 0xB, G2, 0)
    assert r.ret == -3, "the SMC's x0 is the fault's value"
    assert r.channel_status & 0x1 == 0, "the message was not taken: the channel stays as the agent left it"
    assert not tr.messages(r.trace) and tr.faults(r.trace)[0].fields["kind"] == "smc"
    assert tr.faults(r.trace)[0].fields["value"] == -3
    r = s.call(XEN, BASE, 0xB, G2, 0)
    assert r.ret == 0 and r.status == SUCCESS, "times = 1: the next doorbell is served"
    s.close()


def test_a_targeted_fault_hits_only_messages_about_its_agent(builds, board):
    s = server(builds, board, Fault(agent="xen", target="guest3", message="SET_DEVICE_PERMISSIONS",
                                    status="DENIED", times=1))
    assert s.call(XEN, BASE, 0x9, G2, 2, 1).status == SUCCESS, "a grant for another agent is served"
    r = s.call(XEN, BASE, 0x9, G3, 2, 1)
    assert r.status == DENIED and tr.faults(r.trace), "the grant for the target is refused"
    assert s.call(XEN, BASE, 0x9, G3, 2, 1).status == SUCCESS
    s.close()
