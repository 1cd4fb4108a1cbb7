"""First boots: firmware with our SCMI server, Xen (upstream single-agent and the
multi-agent SUT), dom0 probing SCMI; the server's trace attributes every message."""
import hashlib
import json
import os
import re
import time

import paramiko
import pytest

from harness.images.scmi import trace
from harness.machine.system import BootSpec
from harness.plan.xl import GUEST_KERNEL

pytestmark = [pytest.mark.boot, pytest.mark.timeout(600)]

SCMI_PROBED = r"SCMI Protocol v2\.0 'XenHarness:{board}'"


def dom0_probed_scmi(system, board):
    out, _ = system.shell("dmesg | grep 'arm-scmi'")
    assert re.search(SCMI_PROBED.format(board=board.name), out), f"Linux did not probe SCMI:\n{out}"
    return out


@pytest.mark.any_sut
def test_native_linux_probes_the_server(boot, harness_builder):
    """Baseline without Xen: Linux as BL33 talks to the server on dom0's agent."""
    board = harness_builder.board
    s = boot(BootSpec("native", xen=None, profile="single"))
    dom0_probed_scmi(s, board)
    msgs = trace.messages(s.trace.text)
    dom0 = board.agent("dom0").id
    assert msgs, "no SCMI message reached the server"
    assert {m.agent for m in msgs} == {dom0}
    assert trace.messages(msgs, message="PROTOCOL_VERSION", status="SUCCESS")


@pytest.mark.needs("dom0-scmi", lacks=("multiagent",))   # a single-agent dom0 forwarder: upstream-4.20
def test_upstream_xen_forwards_dom0s_smc(boot, harness_builder, xen_build):
    """Single-agent Xen (CONFIG_SCMI_SMC, SUTs such as upstream-4.20): dom0's SMCs reach
    the server on dom0's agent."""
    xen_build("upstream", needs=("CONFIG_SCMI_SMC",))
    board = harness_builder.board
    dom0 = board.agent("dom0")
    s = boot(BootSpec("upstream-single", xen="upstream", profile="single"))
    s.console.expect(rf"\(XEN\) Using SCMI with SMC ID: {dom0.func_id:#x}", since=0, timeout=1)
    dom0_probed_scmi(s, board)
    msgs = trace.messages(s.trace.text)
    assert msgs and {m.agent for m in msgs} == {dom0.id}, "every message must come from dom0's agent"
    # the Xen console: CTRL-a x3 to Xen, a debug key, and back to dom0's shell
    dump = s.xen_debug_key("q", expect=r"General information for domain 0")
    assert "'q' pressed -> dumping domain info" in dump
    assert s.shell("echo back in dom0")[0] == "back in dom0"


@pytest.mark.multiagent
@pytest.mark.parametrize("cells", [2, 3], ids=["agent-ids-discovered", "agent-ids-in-dt"])
@pytest.mark.needs("multiagent", "dom0-scmi")
def test_multiagent_management_probe_and_dom0_agent(shared_boot, harness_builder, xen_build, cells):
    """The SUT: Xen's management agent probes the server, dom0 uses its own agent (v5:
    dom0_scmi_agent_id=, v10: xen,dom0-sci-agent-id), and every message is attributed
    to the right agent. (cells=3 last: test_ssh_into_dom0 shares its boot.)"""
    sut = harness_builder.sut
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    board = harness_builder.board
    mgmt, dom0 = board.management, board.agent("dom0")
    s = shared_boot(BootSpec(f"{sut.name}-cells{cells}", xen=sut.variant, profile=sut.profile.name,
                             secondary_cells=cells))
    dom0_probed_scmi(s, board)
    log = trace.parse_log(s.trace.text)
    msgs = trace.messages(log)

    # Xen asks "who am I" on its management channel, then the agent count
    first = msgs[0]
    assert (first.agent, first.name, first.params.get("query")) == (mgmt.id, "DISCOVER_AGENT", 0xFFFFFFFF)
    attrs = trace.messages(msgs, agent=mgmt.id, message="PROTOCOL_ATTRIBUTES")
    assert attrs and attrs[0].results["agents"] == len(board.agents)
    s.console.expect(rf"scmi: Got agent count {len(board.agents)}", since=0, timeout=1)
    for a in board.agents:
        if a.role != "management":
            s.console.expect(rf"scmi: Agent {a.id} SMC {a.func_id:X} addr {a.shmem:x}", since=0, timeout=1)

    # with 2 cells Xen discovers each secondary agent's id on that agent's own channel
    discovered = {m.agent for m in trace.messages(msgs, message="DISCOVER_AGENT")
                  if m.params.get("query") == 0xFFFFFFFF and m.agent != mgmt.id}
    expected = {a.id for a in board.agents if a.role != "management"} if cells == 2 else set()
    assert discovered == expected

    # dom0's Linux used dom0's agent, and nobody else's; only Xen used the management agent
    linux = [m for m in msgs if m.name == "PROTOCOL_VERSION"]
    assert linux and {m.agent for m in linux} == {dom0.id}
    senders = {m.agent for m in msgs}
    assert senders <= {dom0.id, mgmt.id} | expected, f"unexpected agents in the trace: {senders}"
    assert not trace.messages(msgs, agent=dom0.id, message="SET_DEVICE_PERMISSIONS")

    # every device with access-controllers stays with dom0, so Xen grants it to dom0's
    # agent; all but the UART Xen keeps for its own console (/chosen/stdout-path)
    import fdt
    host = fdt.parse_dtb((s.machine.workdir / "host.dtb").read_bytes())
    xen_console = host.get_property("stdout-path", "/chosen").value.split(":")[0]
    grants = trace.messages(msgs, agent=mgmt.id, message="SET_DEVICE_PERMISSIONS", status="SUCCESS")
    assert {(m.params["target"], m.params["device"], m.params["flags"]) for m in grants} == \
        {(dom0.id, d.id, 1) for d in board.devices if d.node != xen_console}


XL_CFG = f"""name = "ssh-dryrun"
kernel = "{GUEST_KERNEL}"
ramdisk = "/guests/domu.cpio"
memory = 128
vcpus = 1
extra = "console=hvc0"
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.multiagent
@pytest.mark.any_sut
def test_ssh_into_dom0_large_output_and_files_both_ways(shared_boot, harness_builder, xen_build, artifacts,
                                                      record_property):
    """SSH into dom0 (BootSpec(network=True), the default) for what a serial console does
    badly: whole large outputs, and files in and out, checked byte for byte. It shares the
    boot of test_multiagent_management_probe_and_dom0_agent[agent-ids-in-dt] (one boot less)."""
    sut = harness_builder.sut
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    board = harness_builder.board
    s = shared_boot(BootSpec(f"{sut.name}-cells3", xen=sut.variant, profile=sut.profile.name, network=True))
    c = s.ssh()

    # login is by key only: dropbear offers no password method at all
    t = paramiko.Transport(("127.0.0.1", s.machine.ssh_port))
    try:
        t.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType) as e:
            t.auth_none("root")
        assert e.value.allowed_types == ["publickey"]
    finally:
        t.close()

    # large outputs, whole: dom0's kernel log and Xen's, and xl info
    c.run("dmesg > /guests/dmesg.txt; xl dmesg > /guests/xl-dmesg.txt", check=True)
    # dom0's SCMI probe line where the SUT gives dom0 SCMI (passthrough takes it away)
    scmi = (f"SCMI Protocol v2.0 'XenHarness:{board.name}'",) if sut.profile.can("dom0-scmi") else ()
    for name, lines, expect in (("dmesg", 150, ("Booting Linux on physical CPU", *scmi)),
                                ("xl-dmesg", 80, ("Xen version", "*** LOADING DOMAIN 0 ***"))):
        out = c.run(f"cat /guests/{name}.txt", check=True).stdout
        (artifacts / f"{name}.txt").write_text(out)
        assert c.run(f"sha256sum /guests/{name}.txt").stdout.split()[0] == sha256(out.encode()), \
            f"{name} came back altered"
        assert all(x in out for x in expect), f"{name} lacks one of {expect}"
        assert len(out.splitlines()) > lines, f"{name} is short: {len(out)} bytes"
    info = c.run("xl info", check=True).stdout
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in info.splitlines() if ":" in line)}
    assert fields["xen_major"] == "4" and int(fields["nr_cpus"]) == board.qemu.smp

    # a file in: an xl config, parsed by xl in dom0 (dry run: nothing is created)
    cfg = artifacts / "ssh-dryrun.cfg"
    cfg.write_text(XL_CFG)
    c.put(cfg, "/guests/ssh-dryrun.cfg")
    dry = c.run("xl create -n /guests/ssh-dryrun.cfg", check=True).stdout
    parsed = json.loads(dry[dry.index("{"):])
    assert parsed["c_info"]["name"] == "ssh-dryrun" and parsed["b_info"]["max_memkb"] == 128 * 1024
    assert "ssh-dryrun" not in c.run("xl list").stdout

    # files out: the device tree Xen built for dom0, with dom0's own SCMI agent in it (none
    # where the SUT passes SCMI through to a domU: Xen strips it from dom0)
    import fdt
    dtb = c.get("/sys/firmware/fdt", artifacts / "dom0.dtb")
    tree = fdt.parse_dtb(dtb.read_bytes())
    if sut.profile.can("dom0-scmi"):
        assert tree.get_property("arm,smc-id", "/firmware/scmi").value == board.agent("dom0").func_id
    else:
        assert not tree.exist_node("/firmware/scmi"), "Xen left /firmware/scmi in dom0's DT"

    # and a large one both ways, checked by hash on each side
    data = os.urandom(8 << 20)
    big = artifacts / "big.bin"
    big.write_bytes(data)
    t0 = time.monotonic()
    c.put(big, "/guests/big.bin")
    t1 = time.monotonic()
    assert c.run("sha256sum /guests/big.bin").stdout.split()[0] == sha256(data)
    t2 = time.monotonic()
    back = c.get("/guests/big.bin", artifacts / "big-back.bin")
    record_property("ssh_put_MiB_per_s", round(8 / (t1 - t0), 1))
    record_property("ssh_get_MiB_per_s", round(8 / (time.monotonic() - t2), 1))
    assert sha256(back.read_bytes()) == sha256(data)
    big.unlink()
    back.unlink()

    # dropbear's own log, kept with the artifacts: one key login per connection
    log = c.get("/var/log/dropbear.log", artifacts / "dropbear.log").read_text()
    assert "Pubkey auth succeeded for 'root' with ssh-ed25519 key" in log

    # the serial console still works alongside
    assert s.shell("echo console ok")[0] == "console ok"
