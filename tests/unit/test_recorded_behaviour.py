"""The checks and profile records against console lines recorded on real trees (a v10
tree cannot be booted here: issue 21 and ../shared/sut/v10-binding.md give its lines),
and the fail-fast wait on a console fed by hand. No QEMU."""
import socket
import threading
import time

import pytest

from harness.checks import checks
from harness.machine.console import Console, ConsoleTimeout

# What v10 printed (issue 21): the server's view of agent 3 after its flags=1 reset, and a
# new Linux guest on it that was offered no protocol
V10_AFTER_RESET = """\
SCMI: agent=3 proto=0x10 msg=0x0 PROTOCOL_VERSION -> SUCCESS(0) version=0x20000
SCMI: agent=3 proto=0x10 msg=0x1 PROTOCOL_ATTRIBUTES -> SUCCESS(0) protocols=0 agents=5
SCMI: agent=3 proto=0x10 msg=0x6 DISCOVER_LIST_PROTOCOLS skip=0 -> SUCCESS(0) count=0
"""
V10_DUPLICATE_ID = """\
(XEN) scmi: Got agent count 4
(XEN) scmi: Could not create channel for agent 5: -17
(XEN) d0v1 Unhandled SMC/HVC: 0x82000002
"""
V10_XL_DTDEV = ("libxl: error: libxl_create.c:1162:libxl__domain_config_setdefault: passthrough not supported on "
                "this platform\nParsing config from /guests/domd.cfg")


def test_a_protocol_not_offered_is_a_refusal():
    assert checks.power_refusal(V10_AFTER_RESET, 3, 1) == ("protocol not offered",
                                                           [V10_AFTER_RESET.splitlines()[2]])


def test_a_listed_power_protocol_is_no_refusal_until_asked():
    text = "SCMI: agent=3 proto=0x10 msg=0x6 DISCOVER_LIST_PROTOCOLS skip=0 -> SUCCESS(0) count=2 ids=0x11,0x14\n"
    assert checks.power_refusal(text, 3, 1) == (None, [])
    other = text.replace("0x11,0x14", "0x14,0x16")
    assert checks.power_refusal(other, 3, 1)[0] == "protocol not offered"


def test_denied_power_state_and_denied_protocol():
    denied = "SCMI: agent=3 proto=0x11 msg=0x4 POWER_STATE_SET power=1 flags=0x0 state=0x0 -> DENIED(-3)\n"
    assert checks.power_refusal(denied, 3, 1) == ("DENIED", [denied.strip()])
    proto = "SCMI: agent=3 proto=0x11 msg=0x0 PROTOCOL_VERSION -> DENIED(-3)\n"
    assert checks.power_refusal(proto, 3, 1) == ("protocol DENIED", [proto.strip()])
    # another agent's refusal says nothing about agent 3
    assert checks.power_refusal(denied.replace("agent=3", "agent=2"), 3, 1) == (None, [])


def test_assign_tool_result_line():
    from harness.images.build.dom0tools import ASSIGN_RESULT as RESULT
    m = RESULT.search("XEN-ASSIGN-DT: domid=3 path=/pl061@9030000 rc=-1 errno=95 name=EOPNOTSUPP\n")
    assert m and m.group(4) == "95" and m.group(5) == "EOPNOTSUPP"


@pytest.fixture
def fed():
    """A console fed by the test: (console, write(text))."""
    ours, theirs = socket.socketpair()
    con = Console("uart1", ours)
    yield con, lambda text: theirs.sendall(text.encode())
    con.close()
    theirs.close()


def test_wait_gives_up_within_the_grace_after_the_evidence(fed):
    con, write = fed
    evidence_at = time.monotonic() + 1.0
    t0 = time.monotonic()
    with pytest.raises(checks.GaveUp, match="gave up .* cannot come any more: the domain is gone"):
        checks.expect_until(con, r"RESET_AGENT_CONFIGURATION", since=0, timeout=60, grace=1.0, poll=0.2,
                            evidence=lambda: "the domain is gone" if time.monotonic() >= evidence_at else None)
    took = time.monotonic() - t0
    assert 1.9 <= took < 4, f"gave up after {took:.1f} s, not ~2 s (1 s to the evidence + 1 s grace)"


def test_wait_still_takes_what_arrives_in_the_grace(fed):
    con, write = fed
    threading.Timer(0.5, write, args=("SCMI: agent=1 proto=0x10 msg=0xb RESET_AGENT_CONFIGURATION\n",)).start()
    m = checks.expect_until(con, r"RESET_AGENT_CONFIGURATION", since=0, timeout=60, grace=3.0, poll=0.2,
                            evidence=lambda: "gone at once")
    assert m.group(0) == "RESET_AGENT_CONFIGURATION"


def test_wait_without_evidence_is_a_plain_timeout(fed):
    con, _ = fed
    with pytest.raises(ConsoleTimeout) as e:
        checks.expect_until(con, r"never", since=0, timeout=0.6, poll=0.2, evidence=lambda: None)
    assert not isinstance(e.value, checks.GaveUp)
