"""The SCMI server built natively and driven over a pipe (host unit tests).

``build_host_server(board, outdir)`` compiles the same protocol/policy/SMT
sources as the TF-A build, plus host/host_main.c, with -Wall -Werror and
ASan/UBSan. ``HostServer`` speaks host_main.c's line protocol and returns
parsed replies and trace lines, so tests read like an agent talking to the
firmware.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ...data.board import Board
from ...errors import HarnessError
from .tables import render_tables
from .tfa import SERVER_DIR, portable_sources

CFLAGS = ["-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
          "-Wno-type-limits",  # "id >= N" is always true when a board has N = 0: intended
          "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
          "-fno-omit-frame-pointer", "-DSCMI_SERVER_HOST"]


def build_host_server(board: Board, outdir: Path, cc: str = "gcc") -> Path:
    """Compile the host driver for this board into outdir; return the binary."""
    if shutil.which(cc) is None:
        raise HarnessError(f"C compiler {cc!r} not found", where="PATH", fix="apt-get install gcc")
    outdir.mkdir(parents=True, exist_ok=True)
    for name, text in render_tables(board).items():
        (outdir / name).write_text(text)
    binary = outdir / "scmi-host-server"
    sources = [str(SERVER_DIR / s) for s in portable_sources()]
    sources += [str(outdir / "scmi_board.c"), str(SERVER_DIR / "host" / "host_main.c")]
    cmd = [cc, *CFLAGS, f"-I{SERVER_DIR}", f"-I{outdir}", "-o", str(binary), *sources]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise HarnessError(f"host build of the SCMI server failed:\n{run.stderr}",
                           where=" ".join(cmd), fix="fix the compiler errors above")
    return binary


def header(protocol: int, message: int, token: int = 0, msg_type: int = 0) -> int:
    """SCMI message header: [7:0] message, [9:8] type, [17:10] protocol, [27:18] token."""
    return (message & 0xff) | (msg_type & 3) << 8 | (protocol & 0xff) << 10 | (token & 0x3ff) << 18


@dataclass
class Reply:
    ret: int                 # SMC return value: 0, or -1 (SMC_UNK)
    channel_status: int = 0  # SMT status word after the call (1 = free, 2 = error)
    length: int = 0
    header: int = 0
    payload: bytes = b""
    trace: list[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        """The SCMI status (first payload word, signed)."""
        return struct.unpack_from("<i", self.payload)[0]

    def words(self) -> list[int]:
        """Payload after the status, as little-endian 32-bit words."""
        body = self.payload[4:]
        body += b"\0" * (-len(body) % 4)
        return list(struct.unpack(f"<{len(body) // 4}I", body))

    def name(self, offset: int) -> str:
        """A NUL-terminated 16-byte name at a byte offset after the status."""
        raw = self.payload[4 + offset:4 + offset + 16]
        return raw.split(b"\0", 1)[0].decode("ascii")


class HostServer:
    """One server process: boot with the board's tables, then send messages."""

    def __init__(self, binary: Path, board: Board, timeout: float = 10.0, faults: bytes = b""):
        """faults: a fault table (harness.plan.plan.fault_table) the server reads at init."""
        self.board, self.timeout = board, timeout
        self.proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        if faults:
            self._command(f"faults {faults.hex()}")
        self.boot_trace = self._command("init")[0]

    def _command(self, line: str) -> tuple[list[str], list[str]]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        trace, other = [], []
        while True:
            out = self.proc.stdout.readline()
            if not out:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"host SCMI server died on {line!r}:\n{err}")
            out = out.rstrip("\n")
            if out == ".":
                return trace, other
            if out.startswith("T "):
                trace.append(out[2:])
            else:
                other.append(out)

    def smc(self, func_id: int, *, hdr: int, payload: bytes = b"", length: int | None = None,
            channel_status: int = 0) -> Reply:
        """Post a raw message on func_id's channel and ring its doorbell."""
        if length is None:
            length = 4 + len(payload)
        hexdata = payload.hex() or "-"
        trace, other = self._command(f"smc {func_id:x} {channel_status:x} {length:x} {hdr:x} {hexdata}")
        (result,) = [o for o in other if o.startswith("R ")]
        fields = dict(kv.split("=", 1) for kv in result[2:].split())
        reply = Reply(ret=int(fields["ret"]), trace=trace)
        if "status" in fields:
            reply.channel_status = int(fields["status"], 16)
            reply.length = int(fields["length"], 16)
            reply.header = int(fields["header"], 16)
            reply.payload = bytes.fromhex(fields["payload"])
        return reply

    def call(self, agent_id: int, protocol: int, message: int, *words: int, token: int = 0) -> Reply:
        """Send a well-formed message as agent agent_id (board id)."""
        agent = next(a for a in self.board.agents if a.id == agent_id)
        payload = struct.pack(f"<{len(words)}I", *[w & 0xFFFFFFFF for w in words])
        return self.smc(agent.func_id, hdr=header(protocol, message, token), payload=payload)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read() if self.proc.stderr else ""
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream and not stream.closed:
                stream.close()
        if self.proc.returncode != 0 or "runtime error" in err or "AddressSanitizer" in err:
            raise RuntimeError(f"host SCMI server exited {self.proc.returncode}:\n{err}")

    def __enter__(self) -> "HostServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
