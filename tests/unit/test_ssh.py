"""SSH into dom0 without QEMU: key generation, the boot-time archive, the initrd that
carries it, the QEMU network arguments, and the client against a local paramiko server
that runs commands with the host's sh (a real SSH server, not a mock of the client)."""
import contextlib
import hashlib
import io
import logging
import os
import socket
import stat
import subprocess
import threading
import time
import types

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.machine import qemu, ssh
from harness.data.board import Qemu, load_board
from harness.errors import HarnessError
from harness.machine.qemu import QemuMachine, free_tcp_port
from harness.plan.plan import Initrd, load_parts, place_modules
from harness.machine.system import BootSpec, System

NET = ssh.net_conf(qemu.GUEST_IP, qemu.USER_NET_PREFIX, qemu.GATEWAY_IP)


# -- keys --------------------------------------------------------------------------------
def test_keys_are_made_once_per_cache_private_and_loadable(tmp_path):
    k = ssh.keys(tmp_path)
    d = tmp_path / "ssh"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for f in (k.client_key, k.host_key):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert k.client_public.startswith("ssh-ed25519 ") and k.client_public.endswith(" xen-scmi-harness")
    assert (d / "id_ed25519.pub").read_text() == k.client_public + "\n"
    paramiko.Ed25519Key.from_private_key_file(str(k.client_key))   # OpenSSH format, no passphrase
    assert k.known_hosts.read_text() == f"{ssh.HOST_ALIAS} ssh-ed25519 {k.host_public.get_base64()}\n"
    again = ssh.keys(tmp_path)
    assert (again.client_public, again.host_public) == (k.client_public, k.host_public)
    assert ssh.keys(tmp_path / "other").client_public != k.client_public


def test_host_key_is_in_dropbears_format(tmp_path):
    k = ssh.keys(tmp_path)
    data = k.host_key.read_bytes()
    # string "ssh-ed25519", string(seed 32 | public 32): what dropbear's buf_get_ed25519_priv_key reads
    assert data[:15] == b"\x00\x00\x00\x0bssh-ed25519" and data[15:19] == b"\x00\x00\x00\x40"
    assert len(data) == 83
    pub = Ed25519PrivateKey.from_private_bytes(data[19:51]).public_key().public_bytes(
        ser.Encoding.Raw, ser.PublicFormat.Raw)
    assert pub == data[51:] and k.host_public.asbytes().endswith(pub)


def test_concurrent_harnesses_agree_on_one_key(tmp_path):
    results, errors = [], []

    def make():
        try:
            results.append(ssh.keys(tmp_path).client_public)
        except Exception as e:      # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=make) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert not [p for p in (tmp_path / "ssh").iterdir() if p.name.startswith(".")]


def test_bad_keys_are_one_clear_error(tmp_path):
    k = ssh.keys(tmp_path)
    k.host_key.write_bytes(b"garbage")
    with pytest.raises(HarnessError, match=r"dropbear_ed25519_host_key: SSH key: is not a dropbear ed25519 "
                                           r"host key \(fix: delete .*ssh"):
        ssh.keys(tmp_path)
    k.host_key.unlink()
    k.client_key.chmod(0o644)
    with pytest.raises(HarnessError, match=r"id_ed25519: SSH key: is readable by others.*chmod 600"):
        ssh.keys(tmp_path)
    k.client_key.chmod(0o600)
    k.client_key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n")
    with pytest.raises(HarnessError, match=r"id_ed25519: SSH key: is not an unencrypted OpenSSH"):
        ssh.keys(tmp_path)


# -- what dom0 gets at boot --------------------------------------------------------------
def read_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, data) of a newc archive (the kernel's view of it)."""
    out, pos = {}, 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, data[pos:pos + size])
        pos = (pos + size + 3) & ~3


def test_boot_archive_carries_keys_and_network(tmp_path):
    k = ssh.keys(tmp_path)
    path = ssh.boot_archive(k, NET)
    assert path.parent == k.dir and path.stat().st_size % 4 == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    files = read_newc(path.read_bytes())
    assert files["root/.ssh"][0] == stat.S_IFDIR | 0o700
    assert files["root/.ssh/authorized_keys"] == (stat.S_IFREG | 0o600, (k.client_public + "\n").encode())
    assert files["etc/dropbear/dropbear_ed25519_host_key"] == (stat.S_IFREG | 0o600, k.host_key.read_bytes())
    conf = files["etc/harness/net.conf"][1].decode()
    assert "NET_ADDR=10.0.2.15/24" in conf and "NET_GW=10.0.2.2" in conf and "SSH_PORT=22" in conf
    mtime = path.stat().st_mtime_ns
    assert ssh.boot_archive(k, NET) == path and path.stat().st_mtime_ns == mtime   # unchanged: not rewritten


def test_initrd_is_the_rootfs_then_the_archive_back_to_back(tmp_path):
    board = load_board("qemu-virt")
    kernel, rootfs, extra = tmp_path / "Image", tmp_path / "rootfs.cpio", tmp_path / "ssh.cpio"
    for f, size in ((kernel, 37 << 20), (rootfs, 76 << 20), (extra, 512)):
        with open(f, "wb") as fh:
            fh.truncate(size)
    k, initrd = place_modules(board, [kernel, (rootfs, extra)])
    assert isinstance(initrd, Initrd) and initrd.size == (76 << 20) + 512
    assert load_parts(initrd) == [(rootfs, initrd.addr), (extra, initrd.addr + (76 << 20))]
    assert load_parts(k) == [(kernel, k.addr)]
    with open(rootfs, "ab") as fh:
        fh.write(b"x")                # 76 MiB + 1: the next archive would start unaligned
    with pytest.raises(HarnessError, match="rootfs.cpio: newc archive size is not a multiple of 4"):
        place_modules(board, [(rootfs, extra)])


def test_the_rootfs_init_reads_what_the_archive_sets():
    from harness.images.build import IMAGES
    init = (IMAGES / "rootfs" / "dom0" / "init").read_text()
    for var in ("NET_IF", "NET_ADDR", "NET_GW", "SSH_PORT"):
        assert f"{var}=" in NET and f"${var}" in init
    assert "/etc/harness/net.conf" in init and ssh.GUEST_HOST_KEY in init
    assert "dropbear" in init and " -s " in init       # no password logins at all


def test_ssh_without_network_is_one_clear_error(tmp_path):
    board = load_board("qemu-virt")
    s = System(QemuMachine(board, tmp_path, bios=None), BootSpec("plain", network=False))
    with pytest.raises(HarnessError, match=r"BootSpec.network: boot 'plain' has no network.*network=True"):
        s.ssh()


# -- QEMU network arguments --------------------------------------------------------------
BOARD = types.SimpleNamespace(qemu=Qemu("virt,secure=on,virtualization=on,gic-version=3",
                                        "max,pauth-impdef=on", 2048, 2))


def test_free_port_is_bindable_on_loopback():
    port = free_tcp_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_network_args_forward_from_loopback_only(tmp_path):
    plain = QemuMachine(BOARD, tmp_path, bios=None)
    assert "-netdev" not in plain.command() and plain.ssh_port is None
    m = QemuMachine(BOARD, tmp_path, bios=None, network=True)
    cmd = m.command()
    netdev = cmd[cmd.index("-netdev") + 1]
    assert netdev.startswith("user,id=net0,") and "restrict=on" in netdev
    assert f"hostfwd=tcp:127.0.0.1:{m.ssh_port}-10.0.2.15:22" in netdev
    assert cmd[cmd.index("-device", cmd.index("-netdev")) + 1] == "virtio-net-device,netdev=net0"
    # the NIC does not change the DT QEMU dumps: it is not a machine argument
    assert m.machine_args() == plain.machine_args() and "-netdev" not in m.machine_args()
    assert m.command() == cmd       # the port is picked once


needs_qemu = pytest.mark.skipif(not subprocess.run(["sh", "-c", "command -v qemu-system-aarch64"],
                                                   capture_output=True).stdout,
                                reason="qemu-system-aarch64 not installed (scripts/setup)")
TINY = types.SimpleNamespace(qemu=Qemu("virt,secure=on", "cortex-a57", 128, 1))
WFI = bytes.fromhex("7f2003d5ffffff17")      # wfi; b . : a firmware that only sleeps


def listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) listening on port."""
    out = []
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(f).read().splitlines()[1:]:
            local, st = line.split()[1], line.split()[3]
            if st == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                out.append(local.rsplit(":", 1)[0])
    return out


@needs_qemu
def test_taken_port_is_retried_and_forward_listens_on_loopback_only(tmp_path, monkeypatch):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(WFI)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    ports = iter([taken])
    monkeypatch.setattr(qemu, "free_tcp_port", lambda: next(ports, None) or free_tcp_port())
    try:
        with QemuMachine(TINY, tmp_path / "run", bios=fw, network=True) as m:
            assert m.is_running() and m.ssh_port not in (None, taken)
            assert listening(m.ssh_port) == ["0100007F"]          # 127.0.0.1, nothing else
            # QEMU accepts, but nothing in the guest answers: a clear error after the timeout
            client = ssh.SshClient("127.0.0.1", m.ssh_port, ssh.keys(tmp_path))
            with pytest.raises(HarnessError, match=r"no SSH server answered on 127.0.0.1:\d+ within 1 s"):
                client.connect(timeout=1)
    finally:
        squatter.close()


# -- the client, against a local SSH server -----------------------------------------------
class ShellServer(paramiko.ServerInterface):
    """Accepts one public key; runs exec requests with the host's sh."""

    def __init__(self, allowed: paramiko.PKey):
        self.allowed = allowed

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL if username == "root" and key == self.allowed else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "publickey"

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=self._run, args=(channel, command.decode()), daemon=True).start()
        return True

    @staticmethod
    def _run(chan, command):
        p = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)

        def feed():
            with contextlib.suppress(BrokenPipeError):    # the command exited before reading it all
                while data := chan.recv(65536):
                    p.stdin.write(data)
                p.stdin.close()

        def pump(src, send):
            while data := src.read1(65536):
                send(data)
        threads = [threading.Thread(target=feed, daemon=True),
                   threading.Thread(target=pump, args=(p.stderr, chan.sendall_stderr), daemon=True)]
        for t in threads:
            t.start()
        pump(p.stdout, chan.sendall)
        rc = p.wait()
        threads[1].join()
        chan.send_exit_status(rc)
        chan.shutdown_write()
        chan.close()


def server_host_key(k: ssh.SshKeys) -> paramiko.Ed25519Key:
    """The cache's dropbear host key as a paramiko server key."""
    seed = k.host_key.read_bytes()[19:51]
    pem = Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))


logging.getLogger("tests.ssh-server").setLevel(logging.CRITICAL)


@pytest.fixture
def server(tmp_path):
    """A local SSH server with the cache's host key, started 0.6 s late (connect must retry)."""
    k = ssh.keys(tmp_path / "cache")
    allowed = paramiko.Ed25519Key.from_private_key_file(str(k.client_key))
    port = free_tcp_port()
    state = types.SimpleNamespace(port=port, keys=k, host_key=server_host_key(k), transports=[])
    stop = threading.Event()

    def serve():
        time.sleep(0.6)
        with socket.socket() as ls:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind(("127.0.0.1", port))
            ls.listen()
            ls.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = ls.accept()
                except socket.timeout:
                    continue
                t = paramiko.Transport(conn)
                t.set_log_channel("tests.ssh-server")     # quiet about the client's banner probes
                state.transports.append(t)
                t.add_server_key(state.host_key)
                try:
                    t.start_server(server=ShellServer(allowed))
                except (paramiko.SSHException, EOFError, OSError):
                    pass        # the client's banner probe (connects, reads, hangs up), or a
                                # client that refused the host key and reset the connection
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state
    stop.set()
    thread.join(5)
    for t in state.transports:
        t.close()


def test_client_retries_runs_and_copies_both_ways(server, tmp_path):
    t0 = time.monotonic()
    with ssh.SshClient("127.0.0.1", server.port, server.keys).connect(timeout=20) as c:
        assert time.monotonic() - t0 >= 0.5           # it waited for the late server
        assert c.run("echo out; echo err >&2; exit 3") == ("out\n", "err\n", 3)
        big = c.run("head -c 3000000 /dev/zero | tr '\\0' 'x'; echo")
        assert big.rc == 0 and len(big.stdout) == 3000001
        with pytest.raises(HarnessError, match=r"`false` exited 1 on dom0"):
            c.run("false", check=True)
        with pytest.raises(HarnessError, match=r"`sleep 5` did not finish within 0.5 s on dom0"):
            c.run("sleep 5", timeout=0.5)
        assert c.run("echo still usable").stdout == "still usable\n"

        data = os.urandom(3 << 20)
        src, back = tmp_path / "src.bin", tmp_path / "back.bin"
        src.write_bytes(data)
        src.chmod(0o640)
        remote = tmp_path / "remote dir"
        remote.mkdir()
        c.put(src, f"{remote}/copy.bin")
        assert stat.S_IMODE((remote / "copy.bin").stat().st_mode) == 0o640
        assert c.get(f"{remote}/copy.bin", back) == back
        assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(data).digest()
        with pytest.raises(HarnessError, match=r"copying dom0:/nonexistent/x failed \(exit 1\)"):
            c.get("/nonexistent/x", tmp_path / "x")
        assert not (tmp_path / "x").exists()
        with pytest.raises(HarnessError, match=r"src.bin: ssh put: copying to dom0:/nonexistent/y failed"):
            c.put(src, "/nonexistent/y")
        with pytest.raises(HarnessError, match=r"nope: ssh put: no such file to copy"):
            c.put(tmp_path / "nope", "/guests/nope")
    assert not c.is_connected


def test_client_refuses_another_host_key(server, tmp_path):
    server.host_key = server_host_key(ssh.keys(tmp_path / "another-cache"))
    with pytest.raises(HarnessError, match=r"dropbear_ed25519_host_key: ssh host key: dom0 presented host key"):
        ssh.SshClient("127.0.0.1", server.port, server.keys).connect(timeout=20)


def test_client_with_a_key_the_server_does_not_know_is_refused(server, tmp_path):
    stranger = ssh.keys(tmp_path / "stranger")
    k = ssh.SshKeys(stranger.dir, stranger.client_key, stranger.client_public, server.keys.host_key,
                    server.keys.host_public)
    with pytest.raises(HarnessError, match=r"id_ed25519: ssh login: dom0 refused the harness's key"):
        ssh.SshClient("127.0.0.1", server.port, k).connect(timeout=20)
