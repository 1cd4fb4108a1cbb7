"""Binding profiles as one object and named systems under test: each profile composes
its own binding (the seed documents' examples), an unknown name is one clear error,
and a user's SUT file is read, checked and written by `harness sut add`."""
import pytest

from harness.images import sut as suts
from harness.errors import HarnessError
from harness.data.profiles import CAPABILITIES, PROFILES, profile
from harness.plan.xl import xl_config

from test_dt import base_dtb  # noqa: F401  (QEMU's own DTB, dumped once)


def test_every_profile_is_complete():
    for p in PROFILES.values():
        assert p.kconfig.startswith("CONFIG_") and set(p.capabilities) <= set(CAPABILITIES)
        if p.multiagent:
            assert p.config_node and p.sci_type and p.dom0less_agent_property and p.reset_flags is not None
            assert p.xl_bad_agent_id.format(id=p.agent_ids.stop) and p.source_markers
            assert bool(p.dom0_agent_option) != bool(p.dom0_agent_property), "dom0's agent is named one way"


def test_agent_id_ranges_and_their_refusals():
    v5, v10 = profile("v5"), profile("v10")
    assert (v5.agent_ids.start, v5.agent_ids.stop - 1) == (1, 255)
    assert (v10.agent_ids.start, v10.agent_ids.stop - 1) == (0, 254)
    assert v5.bad_agent_ids() == [0, 256] and v10.bad_agent_ids() == [255, 256]
    # seed 002 (v10 xl_parse.c): "An invalid ARM_SCI agent_id specified (%lu). Valid range [0..254]"
    assert v10.xl_bad_agent_id.format(id=255) == "An invalid ARM_SCI agent_id specified (255). Valid range [0..254]"
    assert (v5.reset_flags, v10.reset_flags) == (0, 1)
    assert profile("v9") is v10


def test_unknown_profile_and_capability_are_errors():
    with pytest.raises(HarnessError, match="unknown binding profile 'v7'.*v5, v10"):
        profile("v7")
    with pytest.raises(HarnessError, match="unknown capability"):
        profile("v5").can("teleport")


def test_xl_config_per_profile_matches_the_docs():
    from harness.data.board import load_board
    b = load_board("qemu-virt")
    g = b.guests[0]
    # seed 002 / 000: arm_sci = "type=scmi_smc_multiagent,agent_id=2"
    assert f'arm_sci = "type=scmi_smc_multiagent,agent_id={g.id}"' in xl_config("d", g, profile="v10")
    assert f'arm_sci = "type=scmi_smc_multiagent,agent_id={g.id}"' in xl_config("d", g, profile="v5")
    # single-agent passthrough (4.21 xl.cfg.5): arm_sci = "type=scmi_smc", no agent id
    assert 'arm_sci = "type=scmi_smc"\n' in xl_config("d", g, profile="scmi-smc-passthrough")
    with pytest.raises(HarnessError, match="gives no domU SCMI"):
        xl_config("d", g, profile="single")


def test_shipped_suts(tmp_path, monkeypatch):
    """What ships (the user's own SUT file is not read: this is about the shipped data): the
    current revision and release run by default, the older ones when named; the tarballs
    from ../shared/sut carry their sha256; each SUT's record is its profile's."""
    monkeypatch.setenv("HARNESS_SUTS", str(tmp_path / "none.toml"))
    s = suts.load_suts()
    assert list(s) == ["v11", "upstream-4.22", "v10", "v5", "upstream-4.20"]
    assert all(x.shipped for x in s.values())
    assert [n for n, x in s.items() if x.default] == ["v11"]
    assert s["v5"].profile.name == "v5" and s["v5"].series and s["v5"].variant == "multiagent"
    assert s["upstream-4.20"].series is None and s["upstream-4.20"].variant == "upstream"
    for name, prof, record in (("v11", "v11", "v11"), ("v10", "v10", "v10"),
                               ("upstream-4.22", "scmi-smc-passthrough", "upstream-4.22")):
        assert s[name].profile.name == prof and s[name].record == record
        assert s[name].source.endswith(".tar.xz") and len(s[name].sha256) == 64
    assert s["upstream-4.22"].profile.xen_options == ("scmi-smc-passthrough",)   # upstream's spelling
    if all(x.missing is None for x in s.values()):
        assert suts.default_names() == ["v11"]


def test_a_missing_input_says_where_it_goes(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_SUTS", str(tmp_path / "none.toml"))
    v11 = suts.load_suts()["v11"]
    import dataclasses
    gone = dataclasses.replace(v11, source=str(tmp_path / "xen.tar.xz"), series=None)
    assert "is not here" in gone.missing and "../shared/sut" in gone.missing and v11.sha256 in gone.missing


def test_user_suts_add_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_SUTS", str(tmp_path / "suts.toml"))
    tree = tmp_path / "xen"
    (tree / "xen/arch/arm").mkdir(parents=True)
    (tree / "xen/Makefile").write_text("")
    suts.add("mytree", str(tree), "v10", description="my v10 branch")
    s = suts.get("mytree")
    assert (s.source, s.profile.name, s.variant, s.shipped, s.series) == (str(tree), "v10", "multiagent", False, None)
    with pytest.raises(HarnessError, match="already defined"):
        suts.add("mytree", str(tree), "v10")
    with pytest.raises(HarnessError, match="no system under test named 'nope'.*harness sut add"):
        suts.get("nope")
    with pytest.raises(HarnessError, match="unknown binding profile"):
        suts.add("other", str(tree), "v99")
    (tmp_path / "suts.toml").write_text('[bad]\nsource = "lock"\nprofil = "v5"\n')
    with pytest.raises(HarnessError, match=r"unknown key 'profil'") as e:
        suts.load_suts()
    assert "suts.toml" in str(e.value)
    (tmp_path / "suts.toml").write_text('[bad]\nsource = "lock"\nprofile = "v5"\nvariant = "turbo"\n')
    with pytest.raises(HarnessError, match="unknown hypervisor variant 'turbo'"):
        suts.load_suts()


def test_sut_relative_paths_resolve_against_their_file(tmp_path, monkeypatch):
    f = tmp_path / "conf" / "suts.toml"
    f.parent.mkdir()
    (tmp_path / "series").mkdir()
    f.write_text('[t]\nsource = "../xen-4.22.tar.xz"\nseries = "../series"\nprofile = "v10"\n')
    monkeypatch.setenv("HARNESS_SUTS", str(f))
    t = suts.get("t")
    assert t.source == str(tmp_path / "xen-4.22.tar.xz") and t.series == str(tmp_path / "series")
    assert "source" in t.missing


def test_scenarios_take_profile_from_the_sut(tmp_path):
    from harness.plan.scenario import load_scenario
    sc = load_scenario("xl-domu")
    assert sc.needs == ("multiagent",)
    v10 = suts.Sut("v10", "", "lock", None, None, profile("v10"), "multiagent", tmp_path, False)
    spec = sc.spec_for(v10)
    assert (spec.name, spec.profile, spec.xen) == ("v10-xl-domu", "v10", "multiagent")
    up = suts.get("upstream-4.20")
    assert "lacks multiagent" in sc.unmet(up) and sc.unmet(v10) is None
    bad = tmp_path / "s.toml"
    bad.write_text('families = ["forwarding"]\n[boot]\nprofile = "v5"\n')
    with pytest.raises(HarnessError, match="the system under test does"):
        load_scenario(bad)
    bad.write_text('families = ["forwarding"]\nneeds = ["warp"]\n')
    with pytest.raises(HarnessError, match="needs must be a list of"):
        load_scenario(bad)


def test_v10_dom0less_and_access_controllers_as_seed_000(base_dtb, tmp_path):
    """Seed 000: dom0less `xen,sci_type = "scmi_smc_multiagent"; xen,sci-agent-id = <2>;`,
    dom0's agent as xen,dom0-sci-agent-id (no command-line option); v10's docs point
    access-controllers at /firmware/scmi, which the composer can do on request."""
    import re
    from harness.data.board import load_board
    from harness.plan.dt import DomU, HostDT, Module, xen_cmdline_scmi
    from test_dt import seed_text
    text = seed_text("000")
    want_type = re.search(r'xen,sci_type\s*=\s*"(\w+)"', text).group(1)
    want_prop = re.search(r"(xen,sci[-_]agent[-_]id)\s*=\s*<\d+>", text).group(1)
    b = load_board("qemu-virt")
    k = tmp_path / "Image"
    k.write_bytes(b"k" * 100)
    dt = HostDT(base_dtb, b)
    dt.add_dom0less(DomU("domU1", Module(k, 0x50000000), agent=b.guests[0]), profile("v10"))
    assert dt.tree.get_property("xen,sci_type", "/chosen/domU1").value == want_type
    assert dt.tree.get_property(want_prop, "/chosen/domU1").value == b.guests[0].id
    assert not dt.tree.exist_property("xen,sci_agent_id", "/chosen/domU1")
    assert xen_cmdline_scmi("v10", b.agent("dom0")) == []
    assert xen_cmdline_scmi("scmi-smc-passthrough", None) == ["scmi-smc-passthrough"]
    dt.add_firmware_scmi(b.agent("dom0"))
    dt.add_sci_config("v10", dom0_agent=None, access_controller="/firmware/scmi")
    fw = dt.phandle("/firmware/scmi")
    dev = b.devices[0]
    assert list(dt.tree.get_property("access-controllers", dev.node).data) == [fw, dev.id]
    assert not dt.tree.exist_property("xen,dom0-sci-agent-id", "/chosen/xen/xen_scmi_config")


def test_single_profile_has_no_config_node(base_dtb):
    from harness.data.board import load_board
    from harness.plan.dt import HostDT
    with pytest.raises(HarnessError, match="no multi-agent configuration"):
        HostDT(base_dtb, load_board("qemu-virt")).add_sci_config("single", dom0_agent=None)


def test_xl_config_quotes_what_libxlu_dequotes():
    """A guest's bootargs with quotes and backslashes reach the guest as written
    (libxlu's xlu__cfgl_dequote reads \\" and \\\\)."""
    from harness.plan.xl import xl_string
    assert xl_string('a "b" c\\d') == '"a \\"b\\" c\\\\d"'
    cfg = xl_config("domu", None, extra='console=hvc0 init="/bin/sh"')
    assert 'extra = "console=hvc0 init=\\"/bin/sh\\""' in cfg
    with pytest.raises(HarnessError, match="newline"):
        xl_string("a\nb")


def test_a_new_revision_gets_its_own_record_on_a_known_binding(tmp_path, monkeypatch):
    """`harness sut add v12 --profile v11 --record v12`: v11's binding, records/v12.toml; a
    record name that cannot be a file name is refused before anything is written."""
    monkeypatch.setenv("HARNESS_SUTS", str(tmp_path / "suts.toml"))
    tree = tmp_path / "xen"
    (tree / "xen/arch/arm").mkdir(parents=True)
    (tree / "xen/Makefile").write_text("")
    suts.add("v12", str(tree), "v11", record="v12")
    s = suts.get("v12")
    assert (s.profile.name, s.record) == ("v11", "v12")
    before = (tmp_path / "suts.toml").read_text()
    with pytest.raises(HarnessError, match="not a usable record name"):
        suts.add("v13", str(tree), "v11", record="../v13")
    assert (tmp_path / "suts.toml").read_text() == before
    assert suts.get("v12").record == "v12" and "v13" not in suts.load_suts()
