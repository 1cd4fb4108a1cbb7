"""Scenario files, the guests' DTs and command lines derived from them, and the
trace arithmetic the reset check relies on: fast, no QEMU."""
import fdt
import pytest

from harness.checks import checks
from harness.data.board import load_board
from harness.plan.dt import guest_partial_dt
from harness.errors import HarnessError
from harness.plan.scenario import SCENARIOS_DIR, load_scenario, names
from harness.plan.plan import guest_bootargs
from harness.data.spec import Guest


@pytest.mark.parametrize("name", names())
def test_every_scenario_loads_against_its_boards(name):
    sc = load_scenario(name)
    assert sc.description and sc.families
    for board in sc.boards:
        load_scenario(name, load_board(board))


def test_family_and_board_selection():
    assert "dom0less-driver-domain" in names("permissions", board="qemu-virt")
    assert "rcar-isp-driver-domain" not in names(board="qemu-virt")
    assert names("bad-config") == ["bad-dangling-shmem-phandle", "bad-duplicate-agent-id", "bad-mgmt-dangling-shmem",
                                   "bad-mgmt-shmem-size", "bad-no-secondary-agents",
                                   "bad-no-smc-id", "bad-secondary-agents-cells", "bad-secondary-agents-short",
                                   "bad-shmem-no-reg", "bad-shmem-size"]
    assert names("fault") == ["fault-discover-duplicate", "fault-discover-fails", "fault-dom0-grant-denied",
                              "fault-mgmt-attributes-fails", "fault-mgmt-busy",
                              "fault-reset-fails", "fault-reset-smc-invalid", "fault-reset-smc-unsupported",
                              "fault-setperm-denied"]


def write(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, field", [
    ('families = ["speed"]', "families"),
    ('[boot]\nxen_version = "4.20"', "boot.xen_version"),
    ('[[xl]]\nname = "a"\nagent = "guest9"', r"xl\[0\].agent"),
    ('[[dom0less]]\nname = "a"\nuses = ["gpu"]', r"dom0less\[0\].uses"),
    ('[[dom0less]]\nname = "a"\nimage = "uboot"', r"dom0less\[0\].image"),
    ('[[xl]]\nname = "a"\n[[dom0less]]\nname = "a"', "name"),
    ('boards = ["rpi5-like"]', "boards"),
    ('description = 5', "description"),
    ('families = "reset"', "families"),
    ('[expect]\nxen_log = "refused"', "expect.xen_log"),
    ('[boot]\nxen_args = ["loglvl=all", 1]', "boot.xen_args"),
    ('[boot]\nnetwork = 1', "boot.network"),
    ('[boot]\nshmem_size = true', "boot.shmem_size"),
    ('[boot]\naccess_controller = ["/firmware/scmi"]', "boot.access_controller"),
    ('[xl]\nname = "a"', "xl"),
    ('[[xl]]\nname = "a"\nagent = 2', r"xl\[0\].agent"),
    ('[[dom0less]]\nname = "a"\nops = "version"', r"dom0less\[0\].ops"),
    ('[[xl]]\nname = "a"\nmemory_mib = 1.5', r"xl\[0\].memory_mib"),
    ('[boot]\nsecondary_ids = ["guest3"]', "boot.secondary_ids"),
    ('[boot]\nsecondary_ids = ["guest3=dom9"]', "boot.secondary_ids"),
    ('[boot]\nsecondary_ids = ["xen=dom0"]', "boot.secondary_ids"),
    ('[boot]\nsecondary_ids = ["guest3=dom0"]\nsecondary_cells = 2', "boot.secondary_ids"),
    ('[expect]\nmisconfig = "two-dom0s"', "expect.misconfig"),
    ('[expect]\nmisconfig = ["duplicate-agent-id"]', "expect.misconfig"),
    ('[[faults]]\nkind = "smc"\nvalue = 0', r"faults\[0\].value"),
    ('[[faults]]\ntarget = "guest3"\nmessage = "PROTOCOL_VERSION"', r"faults\[0\].target"),
    ('[[faults]]\ntarget = "guest9"\nmessage = "SET_DEVICE_PERMISSIONS"', r"faults\[0\].target"),
])
def test_bad_scenarios_name_the_field(tmp_path, text, field):
    with pytest.raises(HarnessError, match=rf"s.toml: {field}"):
        load_scenario(write(tmp_path, text), load_board("qemu-virt"))


def test_passthrough_and_consumer_nodes_in_the_partial_dt():
    b = load_board("qemu-virt")
    t = fdt.parse_dtb(guest_partial_dt(b, b.agent_named("guest3"), dom0less_host_shmem=True,
                                       passthrough=["periph"], uses=["guest_dev"]))
    pd = t.get_property("phandle", "/passthrough/firmware/scmi/protocol@11").value
    periph = "/passthrough/periph@a000000"
    assert t.get_property("xen,path", periph).value == "/virtio_mmio@a000000"
    assert list(t.get_property("xen,reg", periph).data) == [0, 0xa000000, 0, 0x1000, 0, 0xa000000]
    assert list(t.get_property("power-domains", periph).data) == [pd, b.device("periph").power_domains[0]]
    guest_dev = "/passthrough/guest-dev@a001000"
    assert not t.exist_property("xen,path", guest_dev), "a device only used is not passed through"
    assert list(t.get_property("power-domains", guest_dev).data) == [pd, b.device("guest_dev").power_domains[0]]


def test_probe_bootargs_resolve_board_names():
    b = load_board("qemu-virt")
    own = Guest("p", agent="guest4", image="scmi-probe", ops=("setperm:{guest4}:{periph}:1", "reset:{guest2}"))
    assert guest_bootargs(b, own) == "smc=0x82000006 shmem=0x22001000 op=setperm:4:2:1 op=reset:2 end=wfi"
    foreign = Guest("n", dt_agent="guest2", image="scmi-probe", ops=("version",))
    assert guest_bootargs(b, foreign) == "smc=0x82000004 op=version end=wfi"
    with pytest.raises(HarnessError, match="neither an agent nor a device"):
        guest_bootargs(b, Guest("x", agent="guest4", image="scmi-probe", ops=("reset:{gpu}",)))
    assert own.memory == 16 and Guest("l").memory == 256


def test_changed_by_finds_what_an_agent_left_away_from_the_default():
    b = load_board("qemu-virt")
    text = "\n".join([
        "SCMI-STATE: power=0 on=1 by agent=3",            # pd_periph: default off, left on -> changed
        "SCMI-STATE: clock=3 enabled=0 by agent=3",       # guest_clk: default on ...
        "SCMI-STATE: clock=3 enabled=1 by agent=3",       # ... and back on -> not changed
        "SCMI-STATE: reset=1 asserted=1 by agent=2",      # another agent's change
    ])
    assert checks.changed_by(b, text, 3) == {("power", 0): ("on", 1)}
    assert checks.changed_by(b, text, 2) == {("reset", 1): ("asserted", 1)}


def test_scenarios_dir_holds_only_scenarios():
    assert all(p.suffix == ".toml" for p in SCENARIOS_DIR.iterdir())


def test_every_field_type_is_checked():
    """Each BootSpec and Guest field of a scenario rejects a value of the wrong TOML type
    with a HarnessError (a new field of a type the checker does not know fails here)."""
    import typing
    from pathlib import Path

    from harness.plan.scenario import _typed
    from harness.data.spec import BootSpec, Fault
    for cls in (BootSpec, Guest, Fault):
        for name, hint in typing.get_type_hints(cls).items():
            if name in ("dom0less", "xl", "faults"):   # arrays of tables, checked as guests and faults
                continue
            with pytest.raises(HarnessError, match=rf"s.toml: {name}: is a table, expected .* \(fix: write {name}"):
                _typed(Path("s.toml"), name, {"a": 1}, hint)


@pytest.mark.parametrize("name,ok", [
    ("domu", True), ("domu-again", True), ("a.b_c9", True), ("d" * 31, True),
    ("d" * 32, False), ("12", False), ("-n", False), ("my domu", False), ("a;reboot", False),
    ("a/b", False), ("$(id)", False), ("dömu", False), ("", False),
])
def test_guest_names(tmp_path, name, ok):
    text = f'[[xl]]\nname = "{name}"'
    if ok:
        assert load_scenario(write(tmp_path, text)).spec.xl[0].name == name
    else:
        with pytest.raises(HarnessError, match=r"s.toml: xl\[0\].name: .* is not a domain name"):
            load_scenario(write(tmp_path, text))
