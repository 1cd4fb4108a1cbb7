"""harness/images/scmi/trace.py: parsing the SCMI server's secure-console trace."""
from __future__ import annotations

import pytest

from harness.images.scmi import trace as tr

# A UART1 log as the QEMU proof produced it (TF-A banner, trace, noise).
LOG = """\
NOTICE:  BL31: v2.12.1(release):
SCMI-BOOT: board=qemu-virt agents=5 devices=4 clocks=4 resets=2 power_domains=2 sensors=1 shmem=0x47ff0000
SCMI-STATE: device=0 agent=0 granted=1 by platform\r
SCMI: agent=0 proto=0x10 msg=0x0 PROTOCOL_VERSION -> SUCCESS(0) version=0x20000
SCMI: agent=0 proto=0x10 msg=0x7 DISCOVER_AGENT query=0x1 -> SUCCESS(0) id=1 name=xen
SCMI: agent=0 proto=0x14 msg=0x6 CLOCK_RATE_GET clock=2 -> DENIED(-3)
SCMI-STATE: device=3 agent=2 granted=1 by agent=1
SCMI: agent=1 proto=0x10 msg=0x9 SET_DEVICE_PERMISSIONS target=2 device=3 flags=0x1 -> SUCCESS(0)
SCMI-STATE: clock=3 enabled=1 by agent=2
SCMI: agent=2 proto=0x14 msg=0x7 CLOCK_CONFIG_SET clock=3 attrs=0x1 -> SUCCESS(0)
SCMI-STATE: agent_reset=2 flags=0x1 by agent=1
SCMI-STATE: clock=3 enabled=0 reset_of=2 by agent=1
SCMI: agent=1 proto=0x10 msg=0xb RESET_AGENT_CONFIGURATION target=2 flags=0x1 -> SUCCESS(0)
SCMI-SMT: agent=0 error=channel-free value=0x1
SCMI: agent=0 proto=0x99 msg=0x3 UNKNOWN length=3 -> COMMS_ERROR(-7)
ERROR:   QEMU System Reset: with GPIO.
"""


def test_parse_message_line():
    m = tr.parse_line("SCMI: agent=2 proto=0x14 msg=0x5 CLOCK_RATE_SET clock=3 flags=0x0 "
                      "rate=48000000 -> SUCCESS(0) rate=48000000\r\n")
    assert isinstance(m, tr.Message)
    assert (m.agent, m.protocol, m.message, m.name) == (2, 0x14, 5, "CLOCK_RATE_SET")
    assert m.params == {"clock": 3, "flags": 0, "rate": 48000000}
    assert m.results == {"rate": 48000000}
    assert (m.status, m.code, m.ok, m.protocol_name) == ("SUCCESS", 0, True, "CLOCK")


def test_parse_error_and_string_results():
    m = tr.parse_line("SCMI: agent=0 proto=0x10 msg=0x7 DISCOVER_AGENT query=0xffffffff -> SUCCESS(0) id=0 name=dom0")
    assert m.params == {"query": 0xFFFFFFFF} and m.results == {"id": 0, "name": "dom0"}
    m = tr.parse_line("SCMI: agent=4 proto=0x16 msg=0x4 RESET reset=0 flags=0x1 state=0x0 -> DENIED(-3)")
    assert (m.status, m.code, m.ok, m.results) == ("DENIED", -3, False, {})


def test_parse_state_lines():
    s = tr.parse_line("SCMI-STATE: clock=3 enabled=1 by agent=2")
    assert isinstance(s, tr.State)
    assert (s.fields, s.by, s.subject) == ({"clock": 3, "enabled": 1}, 2, ("clock", 3))
    s = tr.parse_line("SCMI-STATE: device=0 agent=0 granted=1 by platform")
    assert s.by is None and s.fields == {"device": 0, "agent": 0, "granted": 1}
    s = tr.parse_line("SCMI-STATE: device=3 agent=2 proto=0x14 allowed=0 by agent=1")
    assert s.fields["proto"] == 0x14 and s.by == 1


def test_parse_other_lines():
    e = tr.parse_line("SCMI-SMT: agent=0 error=channel-free value=0x1")
    assert e == tr.SmtError(agent=0, error="channel-free", value=1, line=e.line)
    b = tr.parse_line("SCMI-BOOT: board=qemu-virt agents=5 shmem=0x47ff0000")
    assert isinstance(b, tr.Boot) and b.fields == {"board": "qemu-virt", "agents": 5, "shmem": 0x47FF0000}


def test_prefix_found_after_noise():
    m = tr.parse_line("[uart1 12.3] SCMI: agent=1 proto=0x10 msg=0x0 PROTOCOL_VERSION -> SUCCESS(0)")
    assert m.agent == 1 and m.line.startswith("SCMI: ")


@pytest.mark.parametrize("line", [
    "NOTICE:  BL31: v2.12.1(release):", "", "scmi: agent = 1 (Xen's own debug line)",
])
def test_non_trace_lines(line):
    assert tr.parse_line(line) is None


@pytest.mark.parametrize("line", [
    "SCMI: agent=1 proto=0x10 msg=0x0 PROTOCOL_VERS",                 # cut short
    "SCMI: agent=1 proto=0x10 msg=0x0 PROTOCOL_VERSION -> SUCCESS",
    "SCMI-STATE: clock=3 enabled=1",                                  # no 'by'
    "SCMI-SMT: agent=0",
])
def test_garbled_lines(line):
    with pytest.raises(tr.TraceParseError):
        tr.parse_line(line)
    assert tr.parse_log(line) == []
    with pytest.raises(tr.TraceParseError):
        tr.parse_log(line, strict=True)


def test_parse_log_and_filters():
    events = tr.parse_log(LOG, strict=True)
    assert len(events) == 14
    assert [m.name for m in tr.messages(LOG, agent=0, protocol=0x10)] == ["PROTOCOL_VERSION", "DISCOVER_AGENT"]
    assert len(tr.messages(events, status="DENIED")) == 1
    assert len(tr.messages(events, status=-7)) == 1
    assert [m.agent for m in tr.messages(LOG, message="RESET_AGENT_CONFIGURATION")] == [1]
    assert [m.name for m in tr.messages(LOG.splitlines(), protocol=0x14, message=7)] == ["CLOCK_CONFIG_SET"]
    assert [s.fields["enabled"] for s in tr.states(LOG, clock=3)] == [1, 0]
    assert len(tr.states(LOG, clock=3, by=2)) == 1
    assert len(tr.states(LOG, by=None)) == 1
    assert tr.states(LOG, reset_of=2)[0].fields["clock"] == 3
