"""scmi-probe, the bare-metal SCMI test guest (images/scmi-probe/), without QEMU.

The portable C (FDT walker, bootargs grammar, SMT encoding, output) is built natively
with ASan+UBSan; its doorbell becomes a line exchange with the test, which checks the
exact words posted and answers as Xen would (refused) or by handing the message to the
host build of our SCMI server. With the cross compiler present, the real guest image is
built and its Image header and relocations are checked.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import fdt
import pytest

from harness.images.build import CROSS, Builder, BuildOptions
from harness.images.build import probe as pr
from harness.errors import HarnessError
from harness.images.scmi import trace as tr
from scmi_helpers import UNIT_BOARD, Builds

pytestmark = pytest.mark.timeout(120)

needs_cross = pytest.mark.skipif(shutil.which(CROSS + "gcc") is None,
                                 reason=f"needs {CROSS}gcc for the guest build")

BASE = 0x10
MASK64 = (1 << 64) - 1
GUEST_FID, XEN_FID = 0x82000004, 0x82000003     # unit board: agent 2 (guest2), agent 1 (xen)


def header(proto: int, msg: int, token: int) -> int:
    return msg | proto << 10 | token << 18


def make_dtb(bootargs: str | None, extra=None) -> bytes:
    """A DTB shaped like Xen's for a dom0less domU: root cells, /chosen/bootargs."""
    dt = fdt.FDT()
    dt.set_property("#address-cells", 2)
    dt.set_property("#size-cells", 2)
    if extra:
        extra(dt)
    chosen = fdt.Node("chosen")
    if bootargs is not None:
        chosen.append(fdt.PropStrings("bootargs", bootargs))
    dt.add_item(chosen, "/")
    return dt.to_dtb(version=17)


@dataclass
class Smc:
    fid: int
    page: list[int]           # words 0..38: SMT header words and the payload area

    @property
    def status(self) -> int: return self.page[1]
    @property
    def flags(self) -> int: return self.page[4]
    @property
    def length(self) -> int: return self.page[5]
    @property
    def header(self) -> int: return self.page[6]

    @property
    def payload(self) -> list[int]:
        return self.page[7:7 + (self.length - 4) // 4]


@dataclass
class Run:
    console: list[str]
    smcs: list[Smc]
    halt: str
    lines: list[pr.ProbeLine] = field(default_factory=list)

    def ops(self) -> list[pr.ProbeLine]:
        return [p for p in self.lines if p.kind == "op"]

    def kinds(self) -> list[str]:
        return [p.kind for p in self.lines]


@pytest.fixture(scope="session")
def probe_host(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc for the host build")
    return pr.build_host(tmp_path_factory.mktemp("probe-host"))


def run_probe(binary: Path, tmp_path: Path, bootargs: str | None = None, *, dtb: bytes | None = None,
              respond=None) -> Run:
    """Run the host probe; respond(Smc) -> (x0, new page words or None) answers each SMC
    (default: x0 = 0 and the page untouched)."""
    path = tmp_path / "probe.dtb"
    path.write_bytes(dtb if dtb is not None else make_dtb(bootargs))
    proc = subprocess.Popen([str(binary), str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    console, smcs, halt = [], [], ""
    assert proc.stdin and proc.stdout and proc.stderr
    for line in proc.stdout:
        line = line.rstrip("\n")
        if line.startswith("SMC "):
            fid, page = line[4:].split()
            smc = Smc(int(fid[4:], 16), [int(w, 16) for w in page[5:].split(",")])
            smcs.append(smc)
            x0, words = respond(smc) if respond else (0, None)
            reply = f"{x0 & MASK64:x}" + (" " + ",".join(f"{w:x}" for w in words) if words else "")
            proc.stdin.write(reply + "\n")
            proc.stdin.flush()
        elif line.startswith("HALT "):
            halt = line[5:]
        else:
            console.append(line)
    err = proc.stderr.read()
    proc.wait(timeout=30)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        stream.close()
    assert proc.returncode == 0 and "runtime error" not in err and "Sanitizer" not in err, err
    assert all(len(c) <= 120 for c in console), "Xen's vpl011 would split a line"
    return Run(console, smcs, halt, pr.parse_output("\n".join(console)))


def refused(smc: Smc):
    """What Xen does for a function id the domain has no agent for."""
    return -1, [0xdead] * 39          # garbage in the page: the probe must not read it


# --- the bootargs grammar and messages ------------------------------------------

def test_each_op_is_encoded_as_an_smt_message(probe_host, tmp_path):
    args = pr.bootargs(GUEST_FID, [pr.op("version"), pr.op("attrs"), pr.op("msgattrs", 9),
                                   pr.op("discover"), pr.op("discover", 0), pr.op("setperm", 2, 3, 1),
                                   pr.op("protoperm", 2, 3, 0x14, 0), pr.op("reset", 3),
                                   pr.op("reset", 3, 1), pr.op("raw", 0x14, 0x6, 2)], shmem=0x22001000)
    run = run_probe(probe_host, tmp_path, args)
    expected = [(0x0, []), (0x1, []), (0x2, [9]), (0x7, [0xFFFFFFFF]), (0x7, [0]), (0x9, [2, 3, 1]),
                (0xA, [2, 3, 0x14, 0]), (0xB, [3, 0]), (0xB, [3, 1]), (0x6, [2])]
    assert len(run.smcs) == len(expected)
    for token, (smc, (msg, words)) in enumerate(zip(run.smcs, expected), 1):
        proto = 0x14 if token == 10 else BASE
        assert smc.fid == GUEST_FID
        assert smc.status == 0, "posted = channel status with FREE clear"
        assert smc.flags == 0 and smc.page[0] == 0
        assert smc.length == 4 + 4 * len(words)
        assert smc.header == header(proto, msg, token)
        assert smc.payload == words
    start = run.lines[0]
    assert (start.kind, start["smc"], start["shmem"], start["ops"]) == ("start", GUEST_FID, 0x22001000, 10)
    assert "own_shmem" not in start.fields
    assert run.kinds()[-1] == "done" and run.halt == "off"


def test_refused_smc_is_reported_without_reading_the_page(probe_host, tmp_path):
    run = run_probe(probe_host, tmp_path, "smc=0x82000005 op=attrs op=setperm:2:3:1", respond=refused)
    assert run.console[1:] == [
        "SCMI-PROBE: op=attrs proto=0x10 msg=0x1 x0=0xffffffff smc=NOT_SUPPORTED",
        "SCMI-PROBE: op=setperm proto=0x10 msg=0x9 x0=0xffffffff smc=NOT_SUPPORTED",
        "SCMI-PROBE: done"]
    (attrs, _) = run.ops()
    assert attrs["x0"] == 0xFFFFFFFF and attrs["smc"] == "NOT_SUPPORTED" and "status" not in attrs.fields


def test_without_shmem_the_probe_uses_its_own_page(probe_host, tmp_path):
    run = run_probe(probe_host, tmp_path, "smc=0x82000004 op=reset:3:0", respond=refused)
    assert run.lines[0]["own_shmem"] == 1 and run.lines[0]["shmem"] % 4096 == 0
    assert run.smcs[0].payload == [3, 0]


def test_reply_handling(probe_host, tmp_path):
    def answer(smc):
        page = list(smc.page)
        kind = smc.header & 0xFF
        if kind == 0x0:      # a normal reply
            page[1], page[5], page[7], page[8] = 1, 8 + 4, 0, 0x20000
        elif kind == 0x1:    # ERROR bit, still a status
            page[1], page[5], page[7] = 3, 8, (-7) & 0xFFFFFFFF
        elif kind == 0x2:    # the channel never came back
            page[1] = 0
        elif kind == 0x3:    # too short for a status
            page[1], page[5] = 1, 4
        elif kind == 0x4:    # header changed by the server
            page[1], page[5], page[6], page[7] = 1, 8, 0x1234, 0
        else:                # another SMCCC error
            return -2, None
        return 0, page
    run = run_probe(probe_host, tmp_path,
                    "smc=1 op=version op=attrs op=msgattrs:1 op=raw:16:3 op=raw:16:4 op=raw:16:5",
                    respond=answer)
    assert run.console[1:-1] == [
        "SCMI-PROBE: op=version proto=0x10 msg=0x0 x0=0x0 chan=0x1 status=0 SUCCESS data=0x20000",
        "SCMI-PROBE: op=attrs proto=0x10 msg=0x1 x0=0x0 chan=0x3 status=-7 COMMS_ERROR",
        "SCMI-PROBE: op=msgattrs proto=0x10 msg=0x2 x0=0x0 chan=0x0 reply=NONE",
        "SCMI-PROBE: op=raw proto=0x10 msg=0x3 x0=0x0 chan=0x1 reply=SHORT len=4",
        "SCMI-PROBE: op=raw proto=0x10 msg=0x4 x0=0x0 chan=0x1 status=0 SUCCESS hdr=0x1234",
        "SCMI-PROBE: op=raw proto=0x10 msg=0x5 x0=0xfffffffe smc=ERROR"]
    version = run.ops()[0]
    assert (version.status_name, version["status"], version.data) == ("SUCCESS", 0, [0x20000])


def test_long_replies_stay_on_one_console_line(probe_host, tmp_path):
    def answer(smc):
        page = list(smc.page)
        page[1], page[5] = 1, 4 + 4 * 32
        page[7:39] = [0] + [0xFFFFFFFF] * 31
        return 0, page
    run = run_probe(probe_host, tmp_path, "smc=1 op=protoperm:4294967295:4294967295:255:1", respond=answer)
    (line,) = run.ops()
    assert line.status_name == "SUCCESS" and 1 <= len(line.data) < 31     # cut, whole words only


def test_bad_tokens_are_reported_and_skipped(probe_host, tmp_path):
    args = ("console=hvc0 quiet smc=0x82000004 op=bogus op=setperm:2:3 op=reset:x op=raw:16 "
            "op=raw:256:1 op=discover:1:2 shmem=0x1001 end=later op=attrs end=wfi")
    run = run_probe(probe_host, tmp_path, args, respond=refused)
    errors = [(p["why"], p["token"]) for p in run.lines if p.kind == "error"]
    assert errors == [("unknown-op", "op=bogus"), ("wrong-arg-count", "op=setperm:2:3"),
                      ("bad-number", "op=reset:x"), ("raw-needs-proto-and-msg", "op=raw:16"),
                      ("bad-proto-or-msg", "op=raw:256:1"), ("wrong-arg-count", "op=discover:1:2"),
                      ("bad-address", "shmem=0x1001"), ("end-is-off-or-wfi", "end=later")]
    assert [p["ignored"] for p in run.lines if p.kind == "ignored"] == ["console=hvc0", "quiet"]
    assert [p["op"] for p in run.ops()] == ["attrs"]
    assert run.halt == "wfi"


def test_numbers_and_limits(probe_host, tmp_path):
    ops = " ".join(["op=version"] * 17)
    run = run_probe(probe_host, tmp_path, f"smc=2181038084 op=setperm:0xFFFFFFFF:0:1 "
                    f"op=reset:4294967296 {ops}", respond=refused)
    assert run.lines[0].kind == "error" and run.lines[0]["token"] == "op=reset:4294967296"
    assert [p["why"] for p in run.lines if p.kind == "error"] == ["bad-number", "too-many-ops", "too-many-ops"]
    assert run.smcs[0].fid == 0x82000004 and run.smcs[0].payload == [0xFFFFFFFF, 0, 1]
    assert len(run.smcs) == 16


@pytest.mark.parametrize("args,error", [(None, "no-bootargs"), ("op=attrs", "no-smc"), ("  ", "no-smc")])
def test_missing_configuration(probe_host, tmp_path, args, error):
    run = run_probe(probe_host, tmp_path, args)
    assert run.kinds() == ["error", "done"] and run.lines[0]["error"] == error and not run.smcs
    assert run.halt == "off"


def test_only_chosen_bootargs_count(probe_host, tmp_path):
    def decoys(dt):
        other = fdt.Node("aaa")
        other.append(fdt.PropStrings("bootargs", "smc=0x666 op=attrs"))
        dt.add_item(other, "/")
    run = run_probe(probe_host, tmp_path, dtb=make_dtb("smc=0x82000004 op=version", decoys))
    assert run.smcs[0].fid == 0x82000004
    nested = fdt.FDT()                  # bootargs only in a node below /chosen
    chosen, module = fdt.Node("chosen"), fdt.Node("module")
    module.append(fdt.PropStrings("bootargs", "smc=0x666 op=attrs"))
    chosen.append(module)
    nested.add_item(chosen, "/")
    run = run_probe(probe_host, tmp_path, dtb=nested.to_dtb(version=17))
    assert run.kinds() == ["error", "done"] and run.lines[0]["error"] == "no-bootargs"


@pytest.mark.parametrize("mangle", [
    lambda b: b"\0" * 64,                                      # no magic
    lambda b: b[:4] + struct.pack(">I", 1 << 30) + b[8:],      # absurd totalsize
    lambda b: b[:36] + struct.pack(">I", len(b)) + b[40:],     # struct block runs off the end
    lambda b: b[:-60],                                         # cut short (host buffer is zero after)
])
def test_malformed_dtb_is_reported_not_followed(probe_host, tmp_path, mangle):
    good = make_dtb("smc=1 op=attrs")
    run = run_probe(probe_host, tmp_path, dtb=mangle(good))
    assert not run.smcs and run.kinds()[-1] == "done"
    assert run.lines[0]["error"] in ("bad-dtb", "no-bootargs")


# --- end to end with the host build of our SCMI server ----------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc for the host build")
    from harness.data.board import load_board
    builds = Builds(tmp_path_factory.mktemp("probe-server"))
    srv = builds.server(load_board(UNIT_BOARD))
    yield srv
    srv.close()


def through(srv, trace: list[str]):
    """Answer the probe's SMCs with the host SCMI server, as TF-A behind Xen would."""
    def answer(smc: Smc):
        payload = struct.pack(f"<{len(smc.payload)}I", *smc.payload)
        r = srv.smc(smc.fid, hdr=smc.header, payload=payload, length=smc.length, channel_status=smc.status)
        trace.extend(r.trace)
        if r.ret != 0:
            return r.ret, None
        page = list(smc.page)
        page[1], page[5], page[6] = r.channel_status, r.length, r.header
        body = r.payload + b"\0" * (-len(r.payload) % 4)
        words = list(struct.unpack(f"<{len(body) // 4}I", body))
        page[7:7 + len(words)] = words
        return 0, page
    return answer


def test_guest_agent_is_denied_permissions_and_resets(probe_host, server, tmp_path):
    trace: list[str] = []
    args = pr.bootargs(GUEST_FID, [pr.op("discover", pr.SELF), pr.op("setperm", 2, 3, 1),
                                   pr.op("reset", 3, 0), pr.op("reset", 2, 1)])
    run = run_probe(probe_host, tmp_path, args, respond=through(server, trace))
    discover, setperm, reset3, reset2 = run.ops()
    assert (discover.status_name, discover["agent"], discover["name"]) == ("SUCCESS", 2, "guest2")
    for line in (setperm, reset3, reset2):
        assert (line["x0"], line["chan"], line["status"], line.status_name) == (0, 1, -3, "DENIED")
    assert run.console[2] == "SCMI-PROBE: op=setperm proto=0x10 msg=0x9 x0=0x0 chan=0x1 status=-3 DENIED"
    msgs = tr.messages(trace, agent=2)
    assert [(m.name, m.status) for m in msgs] == [
        ("DISCOVER_AGENT", "SUCCESS"), ("SET_DEVICE_PERMISSIONS", "DENIED"),
        ("RESET_AGENT_CONFIGURATION", "DENIED"), ("RESET_AGENT_CONFIGURATION", "DENIED")]
    assert msgs[1].params == {"target": 2, "device": 3, "flags": 1}
    assert not tr.states(trace)


def test_management_agent_is_obeyed(probe_host, server, tmp_path):
    trace: list[str] = []
    args = pr.bootargs(XEN_FID, [pr.op("setperm", 3, 3, 1), pr.op("reset", 3, 1), pr.op("attrs")])
    run = run_probe(probe_host, tmp_path, args, respond=through(server, trace))
    assert [p.status_name for p in run.ops()] == ["SUCCESS"] * 3
    assert run.ops()[2].data and run.ops()[2].data[0] & 0xFF == 4     # all four protocols
    assert tr.states(trace, device=3, agent=3, granted=1, by=1)
    assert tr.states(trace, agent_reset=3, by=1)


def test_unknown_function_id_reaches_nobody(probe_host, server, tmp_path):
    trace: list[str] = []
    run = run_probe(probe_host, tmp_path, "smc=0x82000099 op=attrs", respond=through(server, trace))
    assert run.ops()[0]["smc"] == "NOT_SUPPORTED"
    assert not tr.messages(trace)


# --- Python side: composing bootargs, parsing lines ---------------------------------

def test_bootargs_composer():
    assert pr.bootargs(0x82000004, [pr.op("attrs"), pr.op("setperm", 2, 3, 1)], shmem=0x22001000) == \
        "smc=0x82000004 shmem=0x22001000 op=attrs op=setperm:0x2:0x3:0x1"
    assert pr.bootargs(1, [pr.op("discover")], power_off=False) == "smc=0x1 op=discover end=wfi"
    assert pr.op("raw", 0x14, 6, 1, 2) == "raw:0x14:0x6:0x1:0x2"
    for bad in (lambda: pr.op("nope"), lambda: pr.op("setperm", 1), lambda: pr.op("reset", 1 << 32),
                lambda: pr.bootargs(1, [pr.op("attrs")] * 17)):
        with pytest.raises(HarnessError):
            bad()


def test_parse_lines_with_xen_console_prefixes():
    log = ("(XEN) something\n"
           "DOM1: SCMI-PROBE: start smc=0x82000004 shmem=0x22001000 ops=2\n"
           "(d1) SCMI-PROBE: op=discover proto=0x10 msg=0x7 x0=0x0 chan=0x1 status=0 SUCCESS agent=2 name=guest2\n"
           "DOM1: SCMI-PROBE: op=attrs proto=0x10 msg=0x1 x0=0xffffffff smc=NOT_SUPPORTED\n"
           "DOM1: SCMI-PROBE: done\n")
    start, disc, attrs, done = pr.parse_output(log)
    assert (start.kind, start["smc"], start["ops"]) == ("start", 0x82000004, 2)
    assert (disc["op"], disc["msg"], disc["status"], disc.status_name, disc["agent"], disc["name"]) == \
        ("discover", 7, 0, "SUCCESS", 2, "guest2")
    assert (attrs["x0"], attrs["smc"], attrs.status_name) == (0xFFFFFFFF, "NOT_SUPPORTED", None)
    assert done.kind == "done"


# --- the guest image (cross compiler) ----------------------------------------------

@needs_cross
def test_guest_image_header_and_relocations(tmp_path):
    elf, binary = pr.compile_guest(tmp_path, tmp_path / "build.log")
    data = binary.read_bytes()
    assert data[0x38:0x3C] == b"ARM\x64"
    text_offset, image_size, flags = struct.unpack_from("<QQQ", data, 8)
    assert text_offset == 0 and len(data) <= image_size < 2 << 20 and flags == 0xA
    assert struct.unpack_from("<I", data, 0)[0] >> 26 == 0b000101, "code0 is a branch"
    assert pr.load_dependent_relocations(elf) == []
    assert elf.read_bytes()[18:20] == struct.pack("<H", 183)      # EM_AARCH64


@needs_cross
def test_relocation_check_catches_a_pointer_in_data(tmp_path):
    src = tmp_path / "bad.c"
    src.write_text("const char *const greeting = \"hi\";\nvoid _start(void) { for (;;) ; }\n")
    elf = tmp_path / "bad.elf"
    subprocess.run([CROSS + "gcc", *pr.CFLAGS, *pr.LDFLAGS, "-T", str(pr.PROBE_DIR / "probe.ld"),
                    "-o", str(elf), str(src)], check=True)
    assert "R_AARCH64_ABS64" in [t for t, _ in pr.load_dependent_relocations(elf)]


@needs_cross
def test_scmi_probe_is_a_cached_build_target(tmp_path):
    b = Builder(BuildOptions(cache_dir=tmp_path, xen_patches="none"))
    assert "scmi-probe" in b.targets()
    entry = b.build(["scmi-probe"])["scmi-probe"]
    assert (entry / "scmi-probe.bin").is_file() and (entry / "scmi-probe.elf").is_file()
    inputs = entry.manifest["inputs"]
    assert inputs["recipe_version"] == pr.PROBE_RECIPE and CROSS + "gcc" in inputs["toolchain"]
    assert entry.manifest["load_address"] == "0x40000000"
    again = Builder(BuildOptions(cache_dir=tmp_path, xen_patches="none")).build(["scmi-probe"])["scmi-probe"]
    assert again.key == entry.key
