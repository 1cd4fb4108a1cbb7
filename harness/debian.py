"""Debian archive access: the host's mirror, suite indexes and verified pool downloads.

The mirror is never written in the repo: it comes from $HARNESS_DEBIAN_MIRROR or
from the host's own apt configuration.
"""
from __future__ import annotations

import hashlib
import lzma
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from .errors import HarnessError

APT_SOURCES = [Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")]
MIRROR_ENV = "HARNESS_DEBIAN_MIRROR"
TIMEOUT_S = 60


def mirror() -> str:
    """The Debian mirror URI: $HARNESS_DEBIAN_MIRROR, else the host's apt configuration."""
    env = os.environ.get(MIRROR_ENV)
    if env:
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


def read_index(suite: str, kind: str, arch: str = "arm64", cache_dir: Path | None = None) -> list[dict]:
    """Fetch and parse a suite's Sources (kind='source') or Packages (kind='binary') index."""
    rel = "main/source/Sources.xz" if kind == "source" else f"main/binary-{arch}/Packages.xz"
    url = f"{mirror()}/dists/{suite}/{rel}"
    dest = (cache_dir or Path(".")) / f"{suite}-{rel.replace('/', '_')}"
    fetch(url, dest, what=f"Debian {suite} index")
    return parse_index(lzma.decompress(dest.read_bytes()).decode("utf-8", "replace"))


def source_files(record: dict) -> dict[str, tuple[str, int]]:
    """name -> (sha256, size) of a Sources record's files."""
    out = {}
    for line in record.get("Checksums-Sha256", "").splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[2]] = (parts[0], int(parts[1]))
    return out
