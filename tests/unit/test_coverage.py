"""harness/run/coverage.py without QEMU: Xen's xencov file split into .gcda files, and the
figures read from gcovr's JSON."""
import struct

import pytest

from harness.run import coverage
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
    from harness.images.build.xen import NARROWED, narrow_coverage
    old = "x\n$(non-init-objects): _c_flags += $(COV_FLAGS)\n"
    new = "$(nocov-y) $(filter %.init.o, $(obj-y)): \\\n    cov-cflags-y :=\n\n" \
          "$(non-init-objects): _c_flags += $(cov-cflags-y)\n"
    assert narrow_coverage(old) == f"x\n{NARROWED} _c_flags += $(COV_FLAGS)\n"
    assert narrow_coverage(new).endswith(f"{NARROWED} _c_flags += $(cov-cflags-y)\n")
    assert narrow_coverage("$(objs): _c_flags += -pg\n") is None


def test_v11s_unreachable_blocks_are_explained_and_its_reachable_one_is_not():
    """The v10/v11 driver's never-executed blocks as `harness coverage --sut v11` printed them:
    out-of-memory and the xen,sci lookup the probe guarantees are explained; sanitise_config's
    refusal of another SCI type is not (a scenario reaches it:
    test_xl_single_agent_type_is_refused_by_a_multiagent_xen)."""
    src = [""] * 20
    src[2:7] = ["    channel = xmalloc(struct scmi_channel);", "    if ( !channel )", "    {",
                "        spin_unlock(&scmi_data.channel_list_lock);", "        return ERR_PTR(-ENOMEM);"]
    assert "out of memory" in coverage.why_unreachable("smc_create_channel", [6, 7], src)
    src[10:13] = ['    config_node = dt_find_compatible_node(NULL, NULL, "xen,sci");', "    if ( !config_node )",
                  '        printk(XENLOG_WARNING "scmi: xen,sci node not found, no agents to collect.\\n");']
    assert "scmi_is_under_xen_sci" in coverage.why_unreachable("collect_agents", [13], src)
    src[14:18] = ["        ret = iomem_permit_access(hardware_domain, paddr_to_pfn(channel->paddr),",
                  "                                  paddr_to_pfn(channel->paddr +",
                  "                                  SCMI_SHMEM_MAPPED_SIZE - 1));", "        if ( ret )"]
    src[18] = "            goto error;"
    assert "out of memory" in coverage.why_unreachable("scmi_domain_init", [19], src)
    other = ['        dprintk(XENLOG_INFO, "scmi: Unsupported ARM_SCI type\\n");', "        return -EINVAL;"]
    assert coverage.why_unreachable("scmi_domain_sanitise_config", [1, 2], other) is None
    zero = ['        dprintk(XENLOG_INFO,', '                "scmi: A zero ARM SCMI agent_id is not supported\n");',
            "        return -EINVAL;"]
    assert "libxl refuses it" in coverage.why_unreachable("scmi_domain_sanitise_config", [3], zero)
