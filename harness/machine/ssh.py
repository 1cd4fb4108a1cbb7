"""SSH into dom0: the keys, the archive that carries them into dom0, and a small client.

Keys. One client key pair and one dropbear host key per cache directory, made on first
use under `<cache>/ssh/` (mode 0600, never in the repo, never a password):

  id_ed25519, id_ed25519.pub    the harness's (and a developer's) login key, OpenSSH format
  dropbear_ed25519_host_key     dom0's host key, in dropbear's own format
  known_hosts                   that host key under the alias HOST_ALIAS, for ssh(1)
  dom0-ssh.cpio                 what a boot with network=True appends to dom0's initramfs

The cached dom0 rootfs holds no key: `system.prepare()` loads dom0-ssh.cpio right after
it, as part of the same initrd module (Linux unpacks concatenated newc archives in turn),
with root's authorized_keys, the host key and /etc/harness/net.conf, which tells dom0's
init to bring up eth0 and start dropbear (key login only). So every cache shares the
same rootfs entries, and a new key never means a new rootfs.

Host key checking. The harness made dom0's host key itself, so the client knows the one
key dom0 may present and rejects any other: stricter than "accept and remember", and it
needs no known_hosts of the user's (the forwarded port changes with every boot, so a
host:port entry would be stale at once). The known_hosts file above, with
`-o HostKeyAlias=` (see `SshKeys.command`), gives ssh(1) the same check.

Files are copied over the exec channel (`cat > file`, `cat file`): dropbear has no
built-in SFTP and the rootfs carries no sftp-server.
"""
from __future__ import annotations

import contextlib
import logging
import os
import select
import shlex
import socket
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import paramiko
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..images.cpio import CpioWriter
from ..errors import HarnessError

log = logging.getLogger(__name__)

SSH_DIR = "ssh"
CLIENT_KEY = "id_ed25519"
HOST_KEY = "dropbear_ed25519_host_key"
KNOWN_HOSTS = "known_hosts"
BOOT_ARCHIVE = "dom0-ssh.cpio"
HOST_ALIAS = "xen-scmi-harness-dom0"
KEY_COMMENT = "xen-scmi-harness"
GUEST_HOST_KEY = "/etc/dropbear/" + HOST_KEY       # where dom0's init tells dropbear to look
CHUNK = 1 << 16


# -- keys -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SshKeys:
    dir: Path
    client_key: Path          # OpenSSH private key (paramiko and ssh(1) read it)
    client_public: str        # "ssh-ed25519 AAAA... xen-scmi-harness"
    host_key: Path            # dropbear-format private host key
    host_public: paramiko.PKey

    @property
    def known_hosts(self) -> Path:
        return self.dir / KNOWN_HOSTS

    def command(self, port: int, user: str = "root") -> list[str]:
        """An ssh(1) command line that logs in to dom0 with these keys, host key checked."""
        return ["ssh", "-i", str(self.client_key), "-p", str(port), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", f"HostKeyAlias={HOST_ALIAS}",
                "-o", "StrictHostKeyChecking=yes", f"{user}@127.0.0.1"]


def keys(cache_root: Path) -> SshKeys:
    """The cache's SSH keys, made on first use (safe against concurrent harnesses)."""
    d = Path(cache_root) / SSH_DIR
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise HarnessError(f"cannot create the SSH key directory: {e}", where=str(d),
                           fix="check the cache directory's permissions (or --cache/HARNESS_CACHE)") from None
    client_path = _once(d / CLIENT_KEY, _new_client_key)
    host_path = _once(d / HOST_KEY, _new_host_key)
    client = _load_client_key(client_path)
    client_public = f"{client.get_name()} {client.get_base64()} {KEY_COMMENT}"
    host_public = _load_host_key(host_path)
    _derived(d / (CLIENT_KEY + ".pub"), client_public + "\n", 0o644)
    _derived(d / KNOWN_HOSTS, f"{HOST_ALIAS} {host_public.get_name()} {host_public.get_base64()}\n", 0o644)
    return SshKeys(d, client_path, client_public, host_path, host_public)


def _new_client_key() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH,
                                                      ser.NoEncryption())


def _ssh_string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _new_host_key() -> bytes:
    """dropbear's ed25519 key file: string "ssh-ed25519", then a 64-byte string holding the
    32-byte private seed and the 32-byte public key (dropbear's buf_put_ed25519_priv_key)."""
    k = Ed25519PrivateKey.generate()
    seed = k.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    pub = k.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return _ssh_string(b"ssh-ed25519") + _ssh_string(seed + pub)


def _bad_key(path: Path, problem: str) -> HarnessError:
    return HarnessError(problem, where=str(path), field="SSH key",
                        fix=f"delete {path.parent} (a new key pair is made on the next boot; "
                            "no cached image depends on it)")


def _load_client_key(path: Path) -> paramiko.Ed25519Key:
    try:
        return paramiko.Ed25519Key.from_private_key_file(str(path))
    except (paramiko.SSHException, OSError, ValueError) as e:
        raise _bad_key(path, f"is not an unencrypted OpenSSH ed25519 private key ({e})") from None


def _load_host_key(path: Path) -> paramiko.PKey:
    data = path.read_bytes()
    prefix = _ssh_string(b"ssh-ed25519") + struct.pack(">I", 64)
    if len(data) != len(prefix) + 64 or not data.startswith(prefix):
        raise _bad_key(path, "is not a dropbear ed25519 host key")
    seed, pub = data[len(prefix):len(prefix) + 32], data[len(prefix) + 32:]
    derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        ser.Encoding.Raw, ser.PublicFormat.Raw)
    if derived != pub:
        raise _bad_key(path, "holds a public key that does not match its private key")
    return paramiko.Ed25519Key(data=_ssh_string(b"ssh-ed25519") + _ssh_string(pub))


def _once(path: Path, make) -> Path:
    """path, created with make() (mode 0600) unless it exists; the first writer wins."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise HarnessError(f"is readable by others (mode {mode:03o})", where=str(path), field="SSH key",
                               fix=f"chmod 600 {path}")
        return path
    fd, tmp = _tmp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(make())
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):    # another harness made it first: use theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("made %s", path)
    return path


def _derived(path: Path, text: str, mode: int) -> None:
    """A file computed from the keys: (re)written atomically when missing or different."""
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return
    fd, tmp = _tmp(path)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


def _tmp(path: Path) -> tuple[int, Path]:
    """A new private (0600) file next to path, for an atomic rename or link onto it."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    return fd, Path(name)


# -- what dom0 gets at boot ----------------------------------------------------------
def net_conf(guest_ip: str, prefix: int, gateway: str, interface: str = "eth0", port: int = 22) -> str:
    """/etc/harness/net.conf, sourced by dom0's init (images/rootfs/dom0/init)."""
    return (f"NET_IF={interface}\nNET_ADDR={guest_ip}/{prefix}\nNET_GW={gateway}\n"
            f"SSH_PORT={port}\n")


def boot_archive(k: SshKeys, net: str) -> Path:
    """The newc archive appended to dom0's initramfs: net.conf, authorized_keys, host key.
    Kept in the cache's ssh directory (it holds the host key: not in per-test artifacts)."""
    path = k.dir / BOOT_ARCHIVE
    fd, tmp = _tmp(path)
    os.close(fd)
    cpio = CpioWriter(tmp)
    try:
        cpio.file("etc/harness/net.conf", net.encode())
        cpio.dir("root/.ssh", 0o700)       # dropbear refuses keys in group/world-writable dirs
        cpio.file("root/.ssh/authorized_keys", (k.client_public + "\n").encode(), 0o600)
        cpio.dir("etc/dropbear", 0o700)
        cpio.file(GUEST_HOST_KEY.lstrip("/"), k.host_key.read_bytes(), 0o600)
    finally:
        cpio.close()
    tmp.chmod(0o600)
    if path.exists() and path.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        os.replace(tmp, path)
    if path.stat().st_size % 4:
        raise HarnessError("newc archive size is not a multiple of 4", where=str(path),
                           fix="report a bug in harness/images/cpio.py")
    return path


# -- the client ----------------------------------------------------------------------
class Result(NamedTuple):
    stdout: str
    stderr: str
    rc: int


class SshClient:
    """One SSH connection to a guest: run commands, copy files. `with` closes it."""

    def __init__(self, host: str, port: int, k: SshKeys, *, user: str = "root", name: str = "dom0"):
        self.host, self.port, self.keys, self.user, self.name = host, port, k, user, name
        self.client: paramiko.SSHClient | None = None

    def connect(self, timeout: float = 60.0, attempt_timeout: float = 10.0) -> "SshClient":
        """Connect and log in, retrying until the guest's dropbear answers (at most timeout s)."""
        pkey = _load_client_key(self.keys.client_key)
        deadline = time.monotonic() + timeout
        attempts, error = 0, None
        while True:
            attempts += 1
            client = paramiko.SSHClient()
            # the one host key dom0 may have (see the module docstring); any other is refused
            client.get_host_keys().add(f"[{self.host}]:{self.port}", self.keys.host_public.get_name(),
                                       self.keys.host_public)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            left = max(1.0, min(attempt_timeout, deadline - time.monotonic()))
            try:
                self._banner(left)
                client.connect(self.host, self.port, username=self.user, pkey=pkey, look_for_keys=False,
                               allow_agent=False, timeout=left, banner_timeout=left, auth_timeout=left)
                self.client = client
                log.info("%s: ssh %s@%s:%d after %d attempt(s)", self.name, self.user, self.host,
                         self.port, attempts)
                return self
            except paramiko.BadHostKeyException as e:
                client.close()
                raise HarnessError(f"{self.name} presented host key {e.key.get_fingerprint().hex()}, "
                                   f"not the cache's ({e.expected_key.get_fingerprint().hex()})",
                                   where=str(self.keys.host_key), field="ssh host key",
                                   fix="something else answers on this port, or dom0 was booted "
                                       "from another cache: boot it again with this one") from None
            except paramiko.AuthenticationException as e:
                client.close()
                raise HarnessError(f"{self.name} refused the harness's key ({e})",
                                   where=str(self.keys.client_key), field="ssh login",
                                   fix="boot dom0 with network=True from this cache (its authorized_keys "
                                       "come from it); dom0's /var/log/dropbear.log says why") from None
            except (OSError, EOFError, paramiko.SSHException) as e:
                client.close()
                error = e
            if time.monotonic() >= deadline:
                raise HarnessError(f"no SSH server answered on {self.host}:{self.port} within {timeout:.0f} s "
                                   f"({attempts} attempts; last: {type(error).__name__}: {error})",
                                   field="ssh", fix="check the console for 'HARNESS: network up' and "
                                                    "'HARNESS: dropbear started' and read /var/log/dropbear.log")
            time.sleep(0.25)

    def _banner(self, timeout: float) -> None:
        """Return once an SSH server greets on the port, else raise OSError. QEMU accepts
        a forwarded connection before the guest listens, then drops it: probing first keeps
        paramiko from logging a traceback for every such early try."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if not sock.recv(4).startswith(b"SSH-"):
                raise ConnectionResetError("the connection closed before an SSH banner")

    @property
    def is_connected(self) -> bool:
        t = self.client.get_transport() if self.client else None
        return bool(t and t.is_active())

    def _transport(self) -> paramiko.Transport:
        if not self.is_connected:
            raise HarnessError(f"the SSH connection to {self.name} is closed", field="ssh",
                               fix="call connect() (system.ssh() reconnects)")
        return self.client.get_transport()

    def _exec(self, command: str, timeout: float, stdin=None, stdout=None) -> tuple[bytes, bytes, int]:
        """Run command; feed it stdin (a binary file) and write its output to stdout (a binary
        file), or collect it. Returns (stdout, stderr, exit status)."""
        chan = self._transport().open_session(timeout=timeout)
        try:
            chan.settimeout(timeout)
            chan.exec_command(command)
            deadline = time.monotonic() + timeout
            if stdin is not None:
                try:
                    while chunk := stdin.read(CHUNK):
                        chan.sendall(chunk)
                        self._check_deadline(deadline, command, timeout)
                except socket.timeout:
                    raise
                except OSError:
                    if not chan.closed:
                        raise
                    # the command ended before reading all its input: its status says why
            if not chan.closed:
                chan.shutdown_write()
            out, err = bytearray(), bytearray()
            while True:
                busy = False
                if chan.recv_ready():
                    data = chan.recv(CHUNK)
                    if stdout is not None:
                        stdout.write(data)
                    else:
                        out += data
                    busy = True
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(CHUNK)
                    busy = True
                if busy:
                    continue
                if chan.exit_status_ready() and (chan.eof_received or chan.closed) \
                        and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                self._check_deadline(deadline, command, timeout)
                # wakes on stdout data or close; stderr alone is picked up at the next tick
                select.select([chan], [], [], 0.05)
            return bytes(out), bytes(err), chan.recv_exit_status()
        except socket.timeout:
            raise self._timeout(command, timeout) from None
        finally:
            chan.close()

    def _check_deadline(self, deadline: float, command: str, timeout: float) -> None:
        if time.monotonic() > deadline:
            raise self._timeout(command, timeout)

    def _timeout(self, command: str, timeout: float) -> HarnessError:
        return HarnessError(f"`{command}` did not finish within {timeout} s on {self.name}", field="ssh",
                            fix="give it a longer timeout=")

    def run(self, command: str, timeout: float = 60, check: bool = False) -> Result:
        """Run a shell command; (stdout, stderr, rc), text decoded as UTF-8."""
        out, err, rc = self._exec(command, timeout)
        res = Result(out.decode(errors="replace"), err.decode(errors="replace"), rc)
        if check and rc != 0:
            raise HarnessError(f"`{command}` exited {rc} on {self.name}:\n{res.stderr or res.stdout}",
                               field="ssh")
        return res

    def put(self, local: Path | str, remote: str, mode: int | None = None, timeout: float = 120) -> None:
        """Copy a local file to the guest (mode: the local file's, unless given)."""
        local = Path(local)
        if not local.is_file():
            raise HarnessError("no such file to copy", where=str(local), field="ssh put",
                               fix="give the path of an existing file")
        mode = local.stat().st_mode & 0o777 if mode is None else mode
        q = shlex.quote(remote)
        with open(local, "rb") as f:
            _, err, rc = self._exec(f"cat > {q} && chmod {mode:o} {q}", timeout, stdin=f)
        if rc != 0:
            raise HarnessError(f"copying to {self.name}:{remote} failed (exit {rc}): {err.decode(errors='replace').strip()}",
                               where=str(local), field="ssh put", fix="check that the remote directory exists")

    def get(self, remote: str, local: Path | str, timeout: float = 120) -> Path:
        """Copy a file from the guest to local (written atomically)."""
        local = Path(local)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.part")
        try:
            with open(tmp, "wb") as f:
                _, err, rc = self._exec(f"cat {shlex.quote(remote)}", timeout, stdout=f)
            if rc != 0:
                raise HarnessError(f"copying {self.name}:{remote} failed (exit {rc}): "
                                   f"{err.decode(errors='replace').strip()}", field="ssh get",
                                   fix="check the remote path")
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
        return local

    def close(self) -> None:
        if self.client:
            self.client.close()
            self.client = None

    def __enter__(self) -> "SshClient":
        return self if self.is_connected else self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

