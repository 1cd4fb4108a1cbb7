"""Records (harness/checks/records.py): line templates, the pending -> accepted flow, comparing a
boot with a record, stale entries, and the shipped records themselves. No QEMU."""
import re
import tomllib

import pytest

from harness.checks import records
from harness.errors import HarnessError

# what v10 printed on two channels with one agent id (a real console's lines, dom0's prompt
# before one of them)
V10_DUPLICATE_ID = """\
(XEN) scmi: Got agent count 4
(XEN) scmi: Could not create channel for agent 5: -17
dom0# (XEN) d0v1 Unhandled SMC/HVC: 0x82000002
(XEN) d0v0 Unhandled SMC/HVC: 0x82000002
(XEN) scmi: Agent 5 SMC 82000002 addr 47ff0000
"""


def test_notable_lines_are_xens_failures_as_templates():
    got = records.notable(V10_DUPLICATE_ID, {"dom0_func_id": "0x82000002"})
    assert got == ["(XEN) scmi: Could not create channel for agent 5: -17",
                   "(XEN) d0v{vcpu} Unhandled SMC/HVC: {dom0_func_id}"]
    for t in got:
        assert re.search(records.template_regex(t, {"dom0_func_id": "0x82000002"}), V10_DUPLICATE_ID, re.M)
    # another board's dom0 SMC id is another line
    assert not re.search(records.template_regex(got[1], {"dom0_func_id": "0x82000007"}), V10_DUPLICATE_ID)


def test_a_crash_keeps_its_headline_and_a_joined_line_keeps_xens_part():
    text = ("(XEN) scmi: could not assign dev for d1 agent:3 dev_id:2 (-13)assign: d1 /dev errno=13\n"
            "(XEN) Unexpected Trap: Data Abort\n(XEN) PC:     00000a0000312abc scmi_probe+0x1c/0x3a0\n"
            "(XEN) ****************************************\n(XEN) Panic on CPU 0:\n")
    ctx = {"domid": 1, "agent": 3, "device": 2}
    got = records.notable(text, ctx, crash=True)
    assert got[0] == "(XEN) scmi: could not assign dev for d{domid} agent:{agent} dev_id:{device} (-13)"
    assert "(XEN) Panic on CPU 0:" in got and "(XEN) Unexpected Trap: Data Abort" in got
    assert records.notable(text, ctx) == got[:1]        # without crash=True only the SCMI line
    # an errno that contains an id is not taken for it
    assert "(-13)" in got[0] and "{agent}" not in got[0].split("(")[-1]


def test_braces_are_literal_and_an_unknown_placeholder_is_an_error():
    t = records.template("(XEN) scmi: weird {x}")
    assert t == "(XEN) scmi: weird {{x}}"
    assert re.fullmatch(records.template_regex(t), "(XEN) scmi: weird {x}")
    with pytest.raises(HarnessError, match="names {agent}"):
        records.template_regex("agent {agent}")


def test_compare_fields_exactly_and_lines_by_presence():
    want = {"crash": False, "dom0_scmi": True, "xen_lines": ["(XEN) d0v{vcpu} Unhandled SMC/HVC: 0x1"],
            "defect": "a reviewer's words"}
    seen = "(XEN) d0v1 Unhandled SMC/HVC: 0x1\n(XEN) something else\n"
    assert records.compare(want, {"crash": False, "dom0_scmi": True, "xen_lines": []}, seen) == []
    problems = records.compare(want, {"crash": False, "dom0_scmi": False}, "")
    assert problems == ["dom0_scmi: recorded True, observed False",
                        "xen_lines: Xen never printed '(XEN) d0v{vcpu} Unhandled SMC/HVC: 0x1'"]


@pytest.fixture
def record_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "RECORDS", tmp_path / "records")
    return tmp_path / "records"


def test_pending_is_reviewed_then_accepted_keeping_a_reviewers_defect(record_dir):
    records.write_pending("v99", "fault", "fault-x", {"crash": True, "xen_lines": ["(XEN) it's 'quoted'", "b\\c"]})
    assert records.load("v99") == {}                       # nothing accepted yet
    d = records.diff("v99")
    assert "+[fault.fault-x]" in d and "+crash = true" in d
    path, taken = records.accept("v99")
    assert taken == ["[fault.fault-x]"] and not records.pending_path("v99").exists()
    entry = records.entry("v99", "fault", "fault-x")
    assert entry == {"crash": True, "xen_lines": ["(XEN) it's 'quoted'", "b\\c"]}   # TOML round trip
    # a reviewer names the defect; recording again keeps it
    path.write_text(path.read_text().replace("crash = true", 'crash = true\ndefect = "panics"'))
    records.write_pending("v99", "fault", "fault-x", {"crash": False, "xen_lines": []})
    records.accept("v99")
    assert records.entry("v99", "fault", "fault-x") == {"crash": False, "xen_lines": [], "defect": "panics"}
    with pytest.raises(HarnessError, match="nothing pending"):
        records.accept("v99")


def test_an_unknown_section_or_broken_file_names_the_file(record_dir):
    record_dir.mkdir()
    (record_dir / "bad.toml").write_text("[faults.x]\ncrash = true\n")
    with pytest.raises(HarnessError, match=r"unknown section \[faults\]"):
        records.load("bad")
    (record_dir / "bad.toml").write_text("[fault.x\n")
    with pytest.raises(HarnessError, match="not valid TOML"):
        records.load("bad")


def test_an_entry_no_test_reads_is_reported(record_dir):
    records.write_pending("v99", "fault", "fault-gone", {"crash": False})
    records.write_pending("v99", "fault", "fault-here", {"crash": False})
    records.accept("v99")
    stale = records.unread({"fault": {"fault-here"}})
    assert len(stale) == 1 and "[fault.fault-gone]" in stale[0] and "no such scenario" in stale[0]


def test_the_shipped_records_are_all_read_and_well_formed():
    """Every entry of records/*.toml is read by a test today; no pending file is shipped (a
    pending record is for its author's review, CI never writes one)."""
    from harness.run.cli import known_record_keys
    assert records.unread(known_record_keys()) == []
    assert not list(records.RECORDS.glob("*.pending.toml"))
    for p in records.RECORDS.glob("*.toml"):
        data = tomllib.loads(p.read_text())
        for section, entries in data.items():
            for key, entry in entries.items():
                for t in entry.get("xen_lines", []):
                    records.template_regex(t, {"dom0_func_id": "0x1", "domid": 1, "agent": 1, "device": 1})


def test_every_shipped_sut_that_can_run_a_recorded_test_has_its_record():
    """No boot test of a shipped SUT can fail or skip for want of a record: each fault and
    bad-config scenario it can run, and the per-board entries of the tests it can run, are in
    its record."""
    from harness.images import sut as sutmod
    from harness.run.matrix import applies
    from harness.plan.scenario import names
    keys = [(sec, n) for sec in ("fault", "bad-config") for n in names(sec, board="qemu-virt", broken={})]
    keys += [(sec, "qemu-virt") for sec in ("xl-dtdev", "assign-domctl", "assign-denied")]
    missing = [f"{s.name}: records/{records.sut_record(s)}.toml [{sec}.{key}]"
               for s in sutmod.load_suts().values() if s.shipped
               for sec, key in keys if applies(s, sec, key, "qemu-virt")
               and records.entry(records.sut_record(s), sec, key) is None]
    assert missing == []


def test_ci_refuses_to_record():
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "pytest", "--record", "--collect-only", "-q", "tests/unit/test_records.py"],
                       cwd=repo, capture_output=True, text=True, env={"CI": "true", "PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "never writes" in r.stderr + r.stdout


def test_the_matrix_marks_what_changed_names_defects_and_tonights_breakage(record_dir, tmp_path, monkeypatch):
    """Columns are SUTs, rows recorded behaviours; a cell that differs from the column to its
    left is marked; a SUT that cannot run a test shows n/a; defects are listed per SUT; a
    night's JUnit marks the entries whose test failed."""
    import dataclasses

    from harness.run import matrix
    from harness.images import sut as sutmod
    monkeypatch.setenv("HARNESS_SUTS", str(tmp_path / "none.toml"))
    shipped = sutmod.load_suts()
    old = dataclasses.replace(shipped["v10"], name="old", record="old")
    new = dataclasses.replace(shipped["v11"], name="new", record="new")
    single = dataclasses.replace(shipped["upstream-4.20"], name="single", record="single")
    for name, crash in (("old", True), ("new", False)):
        records.write_pending(name, "fault", "fault-setperm-denied", {"crash": crash, "xen_lines": ["(XEN) x"]})
        records.accept(name)
    p = records.path("new")
    p.write_text(p.read_text().replace("crash = false", 'crash = false\ndefect = "still broken"\ndefect_line = "f.c:1"'))
    rows, defects = matrix.build([old, new, single])
    crash = next(r for r in rows if r.field == "crash")
    assert crash.cells == {"old": True, "new": False, "single": matrix.NOT_APPLICABLE} and crash.changed == {"new"}
    lines = next(r for r in rows if r.field == "xen_lines")
    assert not lines.differs
    assert defects == {"old": [], "new": [("fault.fault-setperm-denied", "still broken (f.c:1)")], "single": []}
    assert crash.command() == 'pytest -m boot --sut SUT -k "test_faults and fault-setperm-denied"'
    junit = tmp_path / "night.xml"
    junit.write_text('<testsuite><testcase name="t"><properties><property name="sut" value="new"/>'
                     '<property name="record_fault" value="records/new.toml [fault.fault-setperm-denied]"/>'
                     '</properties><failure message="SUT new did otherwise"/></testcase></testsuite>')
    night = matrix.tonight([junit])
    assert night == {("new", "fault", "fault-setperm-denied"): "SUT new did otherwise"}
    md = matrix.markdown(rows, defects, [old, new, single], night)
    assert "**✗ no** ◆" in md and "| n/a |" in md and "still broken (f.c:1)" in md
    assert "<td class=\"changed\">" in matrix.page(rows, defects, [old, new, single])


def test_the_matrix_in_docs_is_the_current_one(tmp_path, monkeypatch):
    """docs/revision-matrix.md and .html are what `harness matrix` writes from today's records
    (regenerate them with `harness matrix` after accepting a record)."""
    from pathlib import Path

    from harness.run import matrix
    monkeypatch.setenv("HARNESS_SUTS", str(tmp_path / "none.toml"))
    docs = Path(__file__).resolve().parents[2] / "docs"
    for p in matrix.write(tmp_path):
        assert p.read_text() == (docs / p.name).read_text(), f"docs/{p.name} is stale: run `harness matrix`"


def test_a_known_broken_check_is_a_strict_xfail_on_its_evidence_only(record_dir):
    """[broken.<check>]: a failure with the recorded evidence is noted and the test goes on,
    then xfails; a failure without it fails as ever; the check passing fails (the defect is
    gone); a SUT without the entry runs the check as it is."""
    import types

    from harness.run.pytest_plugin import KnownBroken
    record_dir.mkdir()
    (record_dir / "rel.toml").write_text("[broken.guest-scmi]\nevidence = 'error -EOPNOTSUPP'\n"
                                         "defect = 'forwards nothing'\ndefect_line = 'smccc.h:111'\n")
    props = []
    kb = KnownBroken(lambda k, v: props.append((k, v)), types.SimpleNamespace(name="rel", record="rel"))
    with kb("guest-scmi"):
        raise AssertionError("domd: Linux did not probe SCMI: arm-scmi: error -EOPNOTSUPP: unable to ...")
    assert props == [("sut_defect", "forwards nothing (smccc.h:111)")]
    with pytest.raises(AssertionError, match="timed out"):
        with kb("guest-scmi"):
            raise AssertionError("timed out waiting for the guest")
    with pytest.raises(pytest.xfail.Exception, match="fails guest-scmi"):
        kb.conclude()
    with pytest.raises(pytest.fail.Exception, match="the defect is gone"):
        with kb("guest-scmi"):
            pass
    clean = KnownBroken(lambda k, v: None, types.SimpleNamespace(name="other", record="other"))
    with pytest.raises(AssertionError):
        with clean("guest-scmi"):
            raise AssertionError("error -EOPNOTSUPP")
    clean.conclude()                                    # nothing noted: no xfail
