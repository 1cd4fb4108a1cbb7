"""harness report: JUnit XML (synthetic, in tmp_path) -> table, markdown, SVG, slowdowns."""
import io
import xml.etree.ElementTree as ET

import pytest

from harness.run import cli, report
from harness.errors import HarnessError

NATIVE = {"prepare": 0.1, "firmware": 0.01, "kernel": 1.5, "shell": 4.5}
XEN = {"prepare": 0.1, "firmware": 0.01, "xen": 0.1, "kernel": 2.3, "shell": 5.8}


def case(name, boots=None, outcome="passed", module="test_first_boot", classname=None):
    """One <testcase> as pytest's xunit1 writes it."""
    props = "".join(f'<property name="time_{boot}_{stage}" value="{secs}"/>'
                    for boot, stages in (boots or {}).items() for stage, secs in stages.items())
    props = f"<properties>{props}</properties>" if props else ""
    body = {"passed": "", "failed": '<failure message="AssertionError: no reset">trace</failure>',
            "error": '<error message="failed on setup">trace</error>',
            "skipped": '<skipped type="pytest.skip" message="needs a series">x</skipped>'}[outcome]
    cls = classname or f"tests.boot.{module}"
    return (f'<testcase classname="{cls}" name="{name}" file="tests/boot/{module}.py" line="1" '
            f'time="9.0">{props}{body}</testcase>')


def junit(path, *cases, suite="pytest", stamp="2026-11-22T02:00:00+00:00"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
                    f'<testsuite name="{suite}" tests="{len(cases)}" timestamp="{stamp}">'
                    + "".join(cases) + "</testsuite></testsuites>")
    return path


def scaled(stages, factor):
    return {k: round(v * factor, 3) for k, v in stages.items()}


def test_phases_are_named_by_what_runs_in_them():
    """The time up to the `xen` milestone (Xen's banner) is the firmware's, up to `kernel`
    (dom0's Linux starts) Xen's, up to `shell` Linux's."""
    t = report.BootTiming(dict(XEN))
    d = t.durations()
    assert list(d) == ["prepare", "qemu", "firmware", "xen", "linux"]
    assert d["qemu"] == pytest.approx(0.01) and d["firmware"] == pytest.approx(0.09)
    assert d["xen"] == pytest.approx(2.2) and d["linux"] == pytest.approx(3.5)
    assert t.total == pytest.approx(5.9)
    native = report.BootTiming(dict(NATIVE)).durations()      # no Xen: TF-A hands over to Linux
    assert list(native) == ["prepare", "qemu", "firmware", "linux"] and native["firmware"] == pytest.approx(1.49)


def test_one_night_table_counts_and_scenarios(tmp_path):
    f = junit(tmp_path / "junit.xml",
              case("test_native", {"native": NATIVE}),
              case("test_multi[cells3]", {"multiagent-v5-cells3": XEN}),
              case("test_xl", {"xl-domu": XEN, "xl-second": NATIVE}, outcome="failed", module="test_xl_domu"),
              case("test_skipped", outcome="skipped"),
              case("test_unit_thing", module="test_board"),
              case("test_in_class", {"native": scaled(NATIVE, 1.2)}, classname="tests.boot.test_first_boot.TestK"))
    night = report.load_night([f])
    assert night.counts == {"passed": 4, "failed": 1, "skipped": 1}
    r = report.build_report([night])
    labels = [row.scenario.label for row in r.rows]
    assert "test_first_boot::TestK::test_in_class [native]" in labels
    assert "test_xl_domu::test_xl [xl-domu]" in labels and "test_xl_domu::test_xl [xl-second]" in labels
    assert len(r.rows) == 5 and not r.regressions
    text = report.format_text(r)
    assert "4 passed, 1 failed, 0 errors, 1 skipped, 0 xfailed (6 tests)" in text
    header = next(line for line in text.splitlines() if line.startswith("test "))
    assert header.split() == ["test", "boot", "result", "prepare", "qemu", "firmware", "xen", "linux", "total"]
    native = next(line for line in text.splitlines() if "test_native" in line)
    assert native.split()[1:] == ["native", "passed", "0.10", "0.01", "1.49", "-", "3.00", "4.60"]
    assert "tests/boot/test_xl_domu.py::test_xl (failed): AssertionError: no reset" in text


def test_shards_of_one_night_merge_and_cells_stay_apart(tmp_path):
    a = junit(tmp_path / "n" / "qemu-1.xml", case("test_a", {"b": XEN}), suite="qemu-virt.lock.sut.v5")
    b = junit(tmp_path / "n" / "qemu-2.xml", case("test_b", {"b": XEN}), suite="qemu-virt.lock.sut.v5")
    c = junit(tmp_path / "n" / "rpi-1.xml", case("test_a", {"b": NATIVE}), suite="rpi5-like.lock.sut.v5")
    night = report.load_night([tmp_path / "n"])          # a directory: its files are the shards
    assert night.sources == [a, b, c] and night.label == "n"
    assert sum(night.counts.values()) == 3
    configs = sorted({s.config for s in night.boots})
    assert configs == ["qemu-virt.lock.sut.v5", "rpi5-like.lock.sut.v5"]
    text = report.format_text(report.build_report([night]))
    assert text.splitlines()[3].split()[0] == "config"


def test_a_test_in_two_shards_is_counted_once_with_a_warning(tmp_path):
    a = junit(tmp_path / "1.xml", case("test_a", {"b": XEN}))
    b = junit(tmp_path / "2.xml", case("test_a", {"b": XEN}, outcome="failed"))
    night = report.load_night([a, b, a])
    assert night.counts == {"failed": 1}
    assert len(night.sources) == 2 and "test_a is in both" in night.warnings[0]


def nights(tmp_path, factor=1.0, reached_shell=True):
    last = dict(XEN) if reached_shell else {k: v for k, v in XEN.items() if k != "shell"}
    return [
        junit(tmp_path / "h" / "2026-11-20" / "j.xml", case("test_a", {"b": XEN}), case("test_n", {"n": NATIVE})),
        junit(tmp_path / "h" / "2026-11-21" / "j.xml", case("test_n", {"n": NATIVE})),  # test_a: no timings
        junit(tmp_path / "h" / "2026-11-22" / "j.xml", case("test_a", {"b": scaled(last, factor)}),
              case("test_n", {"n": scaled(NATIVE, 1.1)})),
    ]


def test_a_slowdown_beyond_the_threshold_is_flagged_against_the_last_comparable_night(tmp_path):
    nights(tmp_path, factor=1.5)
    r = report.build_report(report.nights_in_dir(tmp_path / "h"))
    assert [n.label for n in r.nights] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert [x.scenario.short_test for x in r.regressions] == ["test_first_boot::test_a"]
    slow = r.regressions[0]
    assert slow.prev_night == "2026-11-20" and slow.change == pytest.approx(0.5)
    text = report.format_text(r)
    assert "+50% SLOWER" in text and "+10%" in text
    assert "5.90 s (2026-11-20) -> 8.85 s (+50%)" in text
    assert "**+50% slower**" in report.format_markdown(r)
    assert not report.build_report(r.nights, threshold=60).regressions


def test_a_boot_that_stopped_early_is_not_compared(tmp_path):
    nights(tmp_path, factor=3.0, reached_shell=False)
    r = report.build_report(report.nights_in_dir(tmp_path / "h"))
    row = next(x for x in r.rows if x.scenario.boot == "b")
    assert row.prev_total is None and not r.regressions


def test_scenarios_missing_tonight_are_listed(tmp_path):
    junit(tmp_path / "h" / "1" / "j.xml", case("test_a", {"b": XEN}), case("test_gone", {"g": XEN}))
    junit(tmp_path / "h" / "2" / "j.xml", case("test_a", {"b": XEN}), case("test_gone", outcome="skipped"))
    r = report.build_report(report.nights_in_dir(tmp_path / "h"))
    assert [s.short_test for s, _ in r.missing] == ["test_first_boot::test_gone"]
    assert "test_first_boot::test_gone [g] (last: 1)" in report.format_text(r)


def test_markdown_is_a_table_for_job_summaries(tmp_path):
    f = junit(tmp_path / "j.xml", case("test_a[x|y]", {"b": XEN}), case("test_s", outcome="skipped"))
    md = report.format_markdown(report.build_report([report.load_night([f])]), plot_name="boot.svg")
    lines = md.splitlines()
    assert lines[0] == "### Boot times"
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 3 and table[1].startswith("|---|---|---|---:")
    assert "test_a[x\\|y]" in table[2]                      # a pipe in a test id does not split the row
    assert "1 passed, 0 failed, 0 errors, 1 skipped" in md and "`boot.svg`" in md


def test_svg_is_well_formed_with_bars_and_a_time_series(tmp_path):
    nights(tmp_path, factor=1.5)
    r = report.build_report(report.nights_in_dir(tmp_path / "h"))
    svg = report.render_svg(r)
    root = ET.fromstring(svg)                                  # well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "xen: 3.30 s" in titles                             # a bar segment of tonight (x1.5)
    assert any(t.startswith("2026-11-20 (passed): linux") for t in titles)      # a column of the series
    assert any(t == "2026-11-21: no timings" for t in titles)
    assert "+50% vs 2026-11-20" in svg
    one = report.render_svg(report.build_report(r.nights[-1:]))
    assert "Total boot time per night" not in one and ET.fromstring(one) is not None


def test_main_writes_plot_and_markdown_and_fails_on_regression_when_asked(tmp_path):
    nights(tmp_path, factor=1.5)
    out = io.StringIO()
    rc = report.main([], history_dir=tmp_path / "h", plot=tmp_path / "out" / "b.svg",
                     markdown=str(tmp_path / "out" / "s.md"), fail_on_regression=True, out=out)
    assert rc == 3
    assert (tmp_path / "out" / "b.svg").read_text().startswith("<svg")
    assert (tmp_path / "out" / "s.md").read_text().startswith("### Boot times")
    assert "Boot times: night 2026-11-22" in out.getvalue()
    out = io.StringIO()
    assert report.main([], history=sorted((tmp_path / "h").iterdir()), markdown="-", out=out) == 0
    assert out.getvalue().startswith("### Boot times")


def test_cli_report(tmp_path, capsys):
    f = junit(tmp_path / "j.xml", case("test_a", {"b": XEN}))
    assert cli.main(["report", str(f)]) == 0
    assert "test_first_boot::test_a" in capsys.readouterr().out


@pytest.mark.parametrize("content, says", [
    (None, "no such file"),
    ("", "not XML"),
    ("<testsuites><testsuite>", "not XML"),
    ("<html><body>404</body></html>", "not a JUnit XML report: its root element is <html>"),
    ('<testsuite><testcase classname="m" name="t"><properties>'
     '<property name="time_b_kernel" value="soon"/></properties></testcase></testsuite>',
     "value 'soon' is not a number of seconds"),
])
def test_bad_input_is_one_clear_error_naming_the_file(tmp_path, capsys, content, says):
    f = tmp_path / "night.xml"
    if content is not None:
        f.write_text(content)
    with pytest.raises(HarnessError) as e:
        report.main([f], out=io.StringIO())
    msg = str(e.value)
    assert str(f) in msg and says in msg and "fix:" in msg
    assert cli.main(["report", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and str(f) in err and len(err.strip().splitlines()) == 1


def test_other_bad_input(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="no JUnit XML files"):
        report.main([tmp_path / "empty"], out=io.StringIO())
    with pytest.raises(HarnessError, match="no nights in this directory"):
        report.main([], history_dir=tmp_path / "empty", out=io.StringIO())
    with pytest.raises(HarnessError, match="no JUnit XML given"):
        report.main([], out=io.StringIO())
    f = junit(tmp_path / "j.xml", case("test_a", {"b": XEN}))
    with pytest.raises(HarnessError, match="--plot.*fix: name the file \\*.svg"):
        report.main([f], plot=tmp_path / "plot.png", out=io.StringIO())
    with pytest.raises(HarnessError, match="--threshold"):
        report.main([f], threshold=-5, out=io.StringIO())


def test_time_properties_that_are_not_boot_timings_are_ignored(tmp_path):
    f = tmp_path / "j.xml"
    f.write_text('<testsuite><testcase classname="m" name="t"><properties>'
                 '<property name="time_limit_seconds" value="soon"/>'
                 '<property name="xen_source" value="lock"/></properties></testcase></testsuite>')
    night = report.load_night([f])
    assert night.boots == {} and night.counts == {"passed": 1}
    assert "No boot timings" in report.format_text(report.build_report([night]))



def test_time_per_sut_sums_each_suts_tests(tmp_path):
    """The suite's time per system under test (issue 12's figure): the testcases' times
    summed by their `sut` property; tests without one are left out."""
    def with_sut(name, sut):
        return case(name, {"b": XEN}).replace("<properties>", f'<properties><property name="sut" value="{sut}"/>')
    path = junit(tmp_path / "j.xml", with_sut("test_a[v5-x]", "v5"), with_sut("test_b[v5-y]", "v5"),
                 with_sut("test_a[v10-x]", "v10"), case("test_unit"))
    night = report.load_night([path])
    assert night.per_sut == {"v5": (18.0, 2), "v10": (9.0, 1)}
    r = report.build_report([night])
    line = "Time per SUT: v10 9.0 s (1 tests), v5 18.0 s (2 tests)"
    assert line in report.format_text(r).splitlines()
    assert line in report.format_markdown(r)


def shared(name, boot, stages, outcome="passed", boot_dir=None):
    """A test of tests/boot/test_scenarios.py on a shared boot (its directory: <module>/<boot>)."""
    d = boot_dir or f"artifacts/cell/shard-1/test_scenarios/{boot}"
    return case(name, {boot: stages}, outcome=outcome, module="test_scenarios").replace(
        "<properties>", f'<properties><property name="boot_dir_{boot}" value="{d}"/>')


def five_on_one_boot(path, factor=1.0, outcome="passed"):
    return junit(path, *[shared(f"test_{t}[v5-xl-domu]", "v5-xl-domu", scaled(XEN, factor),
                                outcome=outcome if t == "reset" else "passed")
                         for t in ("forwarding", "isolation", "permissions", "reboot", "reset")])


def test_a_shared_boot_is_one_row_and_one_slowdown(tmp_path):
    """Five tests on one shared boot record its times five times: one boot, one row, one
    SLOWER line (not five slower scenarios), failed when one of its tests failed."""
    five_on_one_boot(tmp_path / "h" / "1" / "j.xml")
    five_on_one_boot(tmp_path / "h" / "2" / "j.xml", factor=1.5, outcome="failed")
    r = report.build_report(report.nights_in_dir(tmp_path / "h"))
    assert r.night.counts == {"passed": 4, "failed": 1}              # the tests are still five
    (row,) = r.rows
    assert row.scenario.label == "test_scenarios [v5-xl-domu]" and row.tests == 5 and row.outcome == "failed"
    assert len(r.regressions) == 1
    text = report.format_text(r)
    assert "SLOWER: 1 scenario(s)" in text and "test_scenarios (5 tests)" in text
    assert "test_scenarios [v5-xl-domu] (5 tests) (failed)" in report.render_svg(r)


def test_shared_boots_without_boot_dirs_are_told_by_their_times(tmp_path):
    """Files written before boot_dir_<boot>: the tests of one module recording the same times
    for one boot name ran on one boot; a boot of the same name with other times is another."""
    plain = [case(f"test_{t}[v5-x]", {"v5-x": XEN}, module="test_scenarios") for t in "abc"]
    rebooted = case("test_d[v5-x]", {"v5-x": scaled(XEN, 1.1)}, module="test_scenarios")
    r = report.build_report([report.load_night([junit(tmp_path / "j.xml", *plain, rebooted)])])
    assert sorted((x.scenario.short_test, x.tests) for x in r.rows) == [
        ("test_scenarios", 3), ("test_scenarios::test_d[v5-x]", 1)]


def test_per_test_boots_stay_apart_and_a_shared_boot_of_one_test_keeps_its_name(tmp_path):
    per_test = [case(f"test_{t}", {"b": XEN}).replace(
        "<properties>", f'<properties><property name="boot_dir_b" value="artifacts/test_first_boot/test_{t}/b"/>')
        for t in "xy"]
    one = shared("test_reset[v5-xl-domu]", "v5-xl-domu", XEN)          # -k chose one test of the scenario
    r = report.build_report([report.load_night([junit(tmp_path / "j.xml", *per_test, one)])])
    assert sorted(x.scenario.label for x in r.rows) == [
        "test_first_boot::test_x [b]", "test_first_boot::test_y [b]", "test_scenarios [v5-xl-domu]"]


def test_xfail_is_its_own_outcome(tmp_path):
    xfail = case("test_permission_is_gone_after_destroy[v5-x]", {"v5-x": XEN}).replace(
        "</properties>", '</properties><skipped type="pytest.xfail" message="v5 never revokes"/>')
    night = report.load_night([junit(tmp_path / "j.xml", xfail, case("test_s", outcome="skipped"))])
    assert night.counts == {"xfailed": 1, "skipped": 1}
    r = report.build_report([night])
    assert r.rows[0].outcome == "xfailed"
    assert "0 passed, 0 failed, 0 errors, 1 skipped, 1 xfailed (2 tests)" in report.format_text(r)
    assert " xfailed " in next(line for line in report.format_text(r).splitlines() if "destroy" in line)


@pytest.mark.parametrize("top, last, step", [(5.9, 6, 1), (0.3, 0.3, 0.05), (47, 50, 10), (120, 120, 20),
                                             (0.0, 0.001, 0.001)])
def test_axis_ticks_are_round_seconds_reaching_the_longest_bar(top, last, step):
    t = report.ticks(top)
    assert t[0] == 0 and t[-1] >= top and t[-1] == pytest.approx(last) and len(t) <= 9
    assert t[1] - t[0] == pytest.approx(step)


def svg_texts(svg):
    return [(t.get("text-anchor"), "".join(t.itertext())) for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]


def test_the_bars_have_a_seconds_axis_and_the_panels_one_scale(tmp_path):
    junit(tmp_path / "h" / "1" / "j.xml", case("test_a", {"a": XEN}), case("test_b", {"b": scaled(XEN, 6)}))
    junit(tmp_path / "h" / "2" / "j.xml", case("test_a", {"a": XEN}), case("test_b", {"b": scaled(XEN, 7)}))
    r = report.build_report(report.nights_in_dir(tmp_path / "h"))
    texts = svg_texts(report.render_svg(r))
    bar_axis = [s for anchor, s in texts if anchor == "middle" and s.endswith(" s")]
    assert bar_axis[0] == "0 s" and float(bar_axis[-1][:-2]) >= 7 * 5.9      # reaches the longest total
    panel_axis = [s for anchor, s in texts if anchor == "end" and s.endswith(" s")]
    assert panel_axis.count("0 s") == 2                                     # two panels (test_a, test_b)
    assert len(panel_axis) % 2 == 0 and panel_axis[:len(panel_axis) // 2] == panel_axis[len(panel_axis) // 2:]
    assert float(panel_axis[len(panel_axis) // 2 - 1][:-2]) >= 7 * 5.9      # test_a's panel: test_b's scale
