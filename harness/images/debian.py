"""Debian archive access: the host's mirror, suite indexes and verified pool downloads.

The mirror is never written in the repo: it comes from $HARNESS_DEBIAN_MIRROR or
from the host's own apt configuration.
"""
from __future__ import annotations

import hashlib
import lzma
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import HarnessError

APT_SOURCES = [Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")]
MIRROR_ENV = "HARNESS_DEBIAN_MIRROR"
KEYRING_ENV = "HARNESS_DEBIAN_KEYRING"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")   # package debian-archive-keyring
SCHEMES = ("http://", "https://", "file:")
TIMEOUT_S = 60


def mirror() -> str:
    """The Debian mirror URI: $HARNESS_DEBIAN_MIRROR, else the host's apt configuration."""
    env = os.environ.get(MIRROR_ENV, "").strip()
    if env:
        if not env.startswith(SCHEMES) or (env.startswith("http") and not env.split("://", 1)[1].strip("/")) \
                or any(c.isspace() for c in env):
            raise HarnessError(f"{env!r} is not a mirror URL", where=f"${MIRROR_ENV}", field=MIRROR_ENV,
                               fix="give a URL such as http://HOST/debian, https://HOST/debian or "
                                   "file:///PATH/TO/MIRROR (or unset it to use the host's apt configuration)")
        return env.rstrip("/")
    for uri in _apt_uris():
        # the main archive, not the security one (it has no pool of ordinary suites)
        if "security" not in uri:
            return uri.rstrip("/")
    raise HarnessError("no Debian mirror found in the host's apt configuration",
                       where="/etc/apt/sources.list{,.d/*}", field=MIRROR_ENV,
                       fix=f"set {MIRROR_ENV}=<URI of a Debian mirror>")


def _apt_uris() -> list[str]:
    files: list[Path] = []
    for p in APT_SOURCES:
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in (".list", ".sources"))
        elif p.is_file():
            files.append(p)
    uris = []
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            uris += re.findall(r"^URIs:\s*(\S+)", text, re.M)
        else:
            uris += re.findall(r"^deb(?:-src)?\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
    return [u for u in uris if u.startswith(("http://", "https://", "file:"))]


def fetch(url: str, dest: Path, sha256: str | None = None, *, what: str = "") -> Path:
    """Download url to dest (atomically), verifying sha256 when given."""
    tmp = dest.with_name(dest.name + f".part{os.getpid()}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r, open(tmp, "wb") as out:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except urllib.error.URLError as e:
        tmp.unlink(missing_ok=True)
        # HTTP 404 (or a missing file:// path): the pinned version left the mirror
        if getattr(e, "code", None) == 404 or isinstance(e.reason, FileNotFoundError):
            raise HarnessError(f"download failed: {url} is not on the mirror (gone?)", where=what or url,
                               fix="the pinned version may be gone from the mirror: run "
                                   "`harness lock update` to pin what the suite has now") from None
        raise HarnessError(f"download failed: {e} for {url}", where=what or url,
                           fix=f"check the network and the mirror (or set {MIRROR_ENV})") from None
    except (OSError, TimeoutError) as e:
        tmp.unlink(missing_ok=True)
        raise HarnessError(f"download failed: {e} for {url}", where=what or url,
                           fix=f"check the network and the mirror (or set {MIRROR_ENV})") from None
    except ValueError as e:          # a URL urllib cannot use (no scheme, bad host, ...)
        tmp.unlink(missing_ok=True)
        raise HarnessError(f"cannot download {url}: {e}", where=what or url, field=MIRROR_ENV,
                           fix=f"set {MIRROR_ENV} to a mirror URL such as http://HOST/debian") from None
    if sha256 and h.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise HarnessError(f"sha256 mismatch for {url}: got {h.hexdigest()}, expected {sha256}",
                           where=what or url, fix="the mirror serves other bytes than pinned: "
                           "check the mirror, or re-pin with `harness lock update`")
    os.replace(tmp, dest)
    return dest


def parse_index(text: str) -> list[dict[str, str]]:
    """Parse a Debian control-style index (Sources, Packages) into dicts.

    Multi-line fields keep their continuation lines joined with newlines.
    """
    records = []
    for para in text.split("\n\n"):
        rec: dict[str, str] = {}
        last = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and last:
                rec[last] += "\n" + line.strip()
            elif ":" in line:
                last, _, value = line.partition(":")
                rec[last] = value.strip()
        if rec:
            records.append(rec)
    return records


def keyring() -> Path:
    """The keyring that signs the suites' Release files ($HARNESS_DEBIAN_KEYRING or Debian's)."""
    return Path(os.environ.get(KEYRING_ENV) or KEYRING)


def verify_signature(signed: Path, detached: Path | None = None, *, what: str = "") -> str:
    """The text of a Release file whose signature gpgv accepts with keyring():
    an InRelease file (clear-signed), or a Release file with its detached Release.gpg."""
    ring = keyring()
    if not ring.is_file():
        raise HarnessError(f"the Debian archive keyring {ring} is missing", field=KEYRING_ENV,
                           fix="install debian-archive-keyring (scripts/setup does), "
                               f"or set {KEYRING_ENV} to the keyring that signs your mirror")
    out = signed.with_name(signed.name + ".verified")
    cmd = ["gpgv", "--keyring", str(ring)]
    cmd += [str(detached), str(signed)] if detached else ["--output", str(out), str(signed)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise HarnessError("gpgv not found", field="host tools", fix="install gpgv (scripts/setup does)") from None
    if r.returncode != 0:
        why = " ".join(l.removeprefix("gpgv: ") for l in r.stderr.splitlines()[-3:]) or f"exit {r.returncode}"
        raise HarnessError(f"the signature of {signed.name} does not verify with {ring}: {why}",
                           where=what or str(signed), fix="check the mirror (a proxy or a broken mirror "
                           f"serves other files than Debian signed), or set {KEYRING_ENV}")
    data = signed.read_bytes() if detached else out.read_bytes()
    out.unlink(missing_ok=True)
    return data.decode("utf-8", "replace")


def parse_release(text: str) -> tuple[dict[str, str], dict[str, tuple[str, int]]]:
    """(fields, SHA256 section: index path -> (sha256, size)) of a Release file."""
    fields = parse_index(text)[0] if text.strip() else {}
    hashes = {}
    for line in fields.get("SHA256", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            hashes[parts[2]] = (parts[0].lower(), int(parts[1]))
    return fields, hashes


def check_release_fields(fields: dict[str, str], suite: str, *, what: str) -> None:
    """The Release file is the suite's and has not expired."""
    names = {fields.get("Suite"), fields.get("Codename")}
    if suite not in names:
        raise HarnessError(f"the Release file is for {fields.get('Codename') or fields.get('Suite')!r}, "
                           f"not {suite!r}", where=what, fix="check the mirror (it serves another suite)")
    until = fields.get("Valid-Until")
    if until:
        import email.utils
        try:
            expires = email.utils.parsedate_to_datetime(until).timestamp()
        except (TypeError, ValueError):
            raise HarnessError(f"Valid-Until {until!r} is not a date", where=what, fix="check the mirror") from None
        if expires < time.time():
            raise HarnessError(f"the Release file expired on {until} (a stale or replayed mirror)",
                               where=what, fix="use an up-to-date mirror")


def check_index(release_text: str, rel: str, data: bytes, *, suite: str, what: str) -> None:
    """The bytes of index rel (e.g. main/source/Sources.xz) are the ones the suite's
    Release file lists in its SHA256 section (size and sha256)."""
    fields, hashes = parse_release(release_text)
    check_release_fields(fields, suite, what=what)
    if rel not in hashes:
        raise HarnessError(f"{rel} is not listed in the SHA256 section of {suite}'s Release file",
                           where=what, fix="check the mirror and the suite name")
    sha, size = hashes[rel]
    got = hashlib.sha256(data).hexdigest()
    if len(data) != size or got != sha:
        raise HarnessError(f"{rel} does not match {suite}'s signed Release file: {len(data)} bytes, "
                           f"sha256 {got}; the Release file says {size} bytes, sha256 {sha}", where=what,
                           fix="retry in a while (the mirror may be updating), or check the mirror")


def release(suite: str, cache_dir: Path) -> str:
    """The signed and verified Release text of a suite (InRelease, else Release + Release.gpg)."""
    base = f"{mirror()}/dists/{suite}"
    what = f"Debian {suite} Release file ({base})"
    signed = cache_dir / f"{suite}-InRelease"
    try:
        fetch(f"{base}/InRelease", signed, what=what)
        return verify_signature(signed, what=what)
    except HarnessError as e:
        if "is not on the mirror" not in e.problem:
            raise
    plain, sig = cache_dir / f"{suite}-Release", cache_dir / f"{suite}-Release.gpg"
    fetch(f"{base}/Release", plain, what=what)
    fetch(f"{base}/Release.gpg", sig, what=what)
    return verify_signature(plain, sig, what=what)


def read_index(suite: str, kind: str, arch: str = "arm64", cache_dir: Path | None = None) -> list[dict]:
    """Fetch and parse a suite's Sources (kind='source') or Packages (kind='binary') index,
    checked against the suite's signed Release file."""
    cache_dir = cache_dir or Path(".")
    rel = "main/source/Sources.xz" if kind == "source" else f"main/binary-{arch}/Packages.xz"
    signed = release(suite, cache_dir)
    url = f"{mirror()}/dists/{suite}/{rel}"
    dest = cache_dir / f"{suite}-{rel.replace('/', '_')}"
    what = f"Debian {suite} index {rel}"
    fetch(url, dest, what=what)
    data = dest.read_bytes()
    check_index(signed, rel, data, suite=suite, what=what)
    return decode_index(data, what=what)


def decode_index(data: bytes, *, what: str) -> list[dict]:
    try:
        text = lzma.decompress(data).decode("utf-8", "replace")
    except lzma.LZMAError as e:
        raise HarnessError(f"is not a valid .xz file: {e}", where=what, fix="check the mirror") from None
    return parse_index(text)


def source_files(record: dict) -> dict[str, tuple[str, int]]:
    """name -> (sha256, size) of a Sources record's files."""
    out = {}
    for line in record.get("Checksums-Sha256", "").splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[2]] = (parts[0], int(parts[1]))
    return out
