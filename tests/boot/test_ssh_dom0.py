"""SSH into dom0 (BootSpec(network=True)) for what a serial console does badly: whole
large outputs, and files in and out, checked byte for byte."""
import hashlib
import json
import os
import time

import paramiko
import pytest

from harness.system import BootSpec

pytestmark = [pytest.mark.boot, pytest.mark.timeout(300)]

XL_CFG = """name = "ssh-dryrun"
kernel = "/guests/Image.gz"
ramdisk = "/guests/domu.cpio"
memory = 128
vcpus = 1
extra = "console=hvc0"
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.multiagent
@pytest.mark.any_sut
def test_ssh_into_dom0_large_output_and_files_both_ways(boot, harness_builder, xen_build, artifacts,
                                                      record_property):
    sut = harness_builder.sut
    xen_build(sut.variant, needs=(sut.profile.kconfig,))
    board = harness_builder.board
    s = boot(BootSpec(f"{sut.name}-ssh", xen=sut.variant, profile=sut.profile.name, network=True))
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
    for name, lines, expect in (("dmesg", 150, ("Booting Linux on physical CPU",
                                                f"SCMI Protocol v2.0 'XenHarness:{board.name}'")),
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

    # files out: the device tree Xen built for dom0, with dom0's own SCMI agent in it
    import fdt
    dtb = c.get("/sys/firmware/fdt", artifacts / "dom0.dtb")
    tree = fdt.parse_dtb(dtb.read_bytes())
    assert tree.get_property("arm,smc-id", "/firmware/scmi").value == board.agent("dom0").func_id

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
