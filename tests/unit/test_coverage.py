"""harness/coverage.py without QEMU: Xen's xencov file split into .gcda files, and the
figures read from gcovr's JSON."""
import struct

import pytest

from harness import coverage
from harness.errors import HarnessError


def xcov(records):
    body = b"".join(name.encode() + b"\0" + struct.pack("<I", len(data)) + data for name, data in records)
    return struct.pack("<I", coverage.XCOV_MAGIC) + body


def test_split_puts_each_gcda_at_its_object_path(tmp_path):
    build = tmp_path / "ws" / "build"
    dat = xcov([(f"{build}/arch/arm/firmware/sci.gcda", b"gcda-1"),
                (f"{build}/common/domctl.gcda", b"gcda-22")])
    out = coverage.split(dat, build, tmp_path / "gcov")
    assert [p.relative_to(tmp_path / "gcov").as_posix() for p in out] == ["arch/arm/firmware/sci.gcda",
                                                                          "common/domctl.gcda"]
    assert (tmp_path / "gcov" / "common" / "domctl.gcda").read_bytes() == b"gcda-22"


def test_split_refuses_what_is_not_xencov(tmp_path):
    with pytest.raises(HarnessError, match="not a xencov file"):
        coverage.split(b"gcda", tmp_path, tmp_path)


def test_file_lines_and_percent():
    report = {"files": [{"file": "arch/arm/firmware/scmi-smc-multiagent.c",
                         "lines": [{"line_number": 10, "count": 3}, {"line_number": 11, "count": 0},
                                   {"line_number": 10, "count": 1}]}]}
    lines = coverage.file_lines(report, coverage.DRIVER)
    assert lines == {10: 4, 11: 0} and coverage.percent(lines) == 50.0


def test_never_executed_lines_become_blocks_and_known_ones_are_explained():
    src = ["int f(void)", "{", "    if ( !config_node )", "    {",
           '        printk("scmi: /chosen/xen,config node not found, no agents to collect.");',
           "        return -ENOENT;", "    }", "    x = 1;", "    if ( y )", "        return -EINVAL;", "}"]
    lines = {3: 5, 5: 0, 6: 0, 8: 5, 9: 5, 10: 0}
    functions = {n: "collect_agents" for n in lines}
    blocks = coverage.never_blocks(lines, functions)
    assert blocks == [("collect_agents", [5, 6]), ("collect_agents", [10])]
    assert "probed through a node" in coverage.why_unreachable(*blocks[0], src)
    assert coverage.why_unreachable(*blocks[1], src) is None, "an unexplained error path stays a gap"


def test_coverage_narrows_the_rule_of_xen_4_20_and_of_4_22():
    """4.20's Rules.mk adds $(COV_FLAGS) to every non-init object; 4.22-dev (v10, v11) adds
    $(cov-cflags-y): both are narrowed to the variant's objects, anything else is refused."""
    from harness.build.xen import NARROWED, narrow_coverage
    old = "x\n$(non-init-objects): _c_flags += $(COV_FLAGS)\n"
    new = "$(nocov-y) $(filter %.init.o, $(obj-y)): \\\n    cov-cflags-y :=\n\n" \
          "$(non-init-objects): _c_flags += $(cov-cflags-y)\n"
    assert narrow_coverage(old) == f"x\n{NARROWED} _c_flags += $(COV_FLAGS)\n"
    assert narrow_coverage(new).endswith(f"{NARROWED} _c_flags += $(cov-cflags-y)\n")
    assert narrow_coverage("$(objs): _c_flags += -pg\n") is None
