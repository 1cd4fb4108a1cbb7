"""The sources lock: parsing, validation messages, round trip and verified downloads."""
import hashlib

import pytest

from harness import debian
from harness.cache import Cache
from harness.errors import HarnessError
from harness.lock import LOCK_PATH, _header, dump_lock, load_lock

GOOD = '''# header
[xen]
kind = "source"
suite = "trixie"
package = "xen"
version = "1.0-1"
path = "pool/main/x/xen/xen_1.0.orig.tar.xz"
sha256 = "{sha}"
size = {size}

[libs."libbz2-1.0"]
kind = "deb"
suite = "bookworm"
package = "libbz2-1.0"
version = "1.0.8-5"
path = "pool/main/b/bzip2/libbz2-1.0_1.0.8-5_arm64.deb"
sha256 = "{sha}"
size = {size}
arch = "arm64"
'''


def write(tmp_path, text):
    p = tmp_path / "sources.lock.toml"
    p.write_text(text)
    return p


def test_repo_lock_is_valid_and_round_trips():
    lock = load_lock()
    assert {"xen", "tf-a", "kernel", "busybox"} <= set(lock.entries)
    assert lock.group("libs"), "the rootfs needs arm64 runtime libraries"
    assert dump_lock(lock, _header(LOCK_PATH)) == LOCK_PATH.read_text()


def test_groups_and_dotted_names(tmp_path):
    lock = load_lock(write(tmp_path, GOOD.format(sha="a" * 64, size=1)))
    assert lock["libs.libbz2-1.0"].arch == "arm64"
    assert [e.name for e in lock.group("libs")] == ["libs.libbz2-1.0"]
    assert lock["xen"].filename == "xen_1.0.orig.tar.xz"


@pytest.mark.parametrize("old,new,field,hint", [
    ('sha256 = "' + "a" * 64 + '"', 'sha256 = "xyz"', "xen.sha256", "64 lower-case hex"),
    ('kind = "source"', 'kind = "rpm"', "xen.kind", "source"),
    ('size = 1', 'size = "1"', "xen.size", "int"),
    ('version = "1.0-1"\n', '', "xen.version", "missing"),
    ('path = "pool/main/x', 'path = "dists/x', "xen.path", "pool"),
    ('arch = "arm64"', 'arch = ""', "libs.libbz2-1.0.arch", "arm64"),
])
def test_bad_fields_name_file_and_field(tmp_path, old, new, field, hint):
    text = GOOD.format(sha="a" * 64, size=1).replace(old, new, 1)
    with pytest.raises(HarnessError) as e:
        load_lock(write(tmp_path, text))
    assert e.value.field == field
    assert str(tmp_path) in str(e.value) and hint in str(e.value)


def test_unknown_entry_names_the_fix(tmp_path):
    lock = load_lock(write(tmp_path, GOOD.format(sha="a" * 64, size=1)))
    with pytest.raises(HarnessError, match=r"no entry 'kernel'.*add a \[kernel\] table"):
        lock["kernel"]


def test_download_is_verified_and_cached(tmp_path, monkeypatch):
    payload = b"pristine upstream bytes"
    pool = tmp_path / "mirror" / "pool/main/x/xen"
    pool.mkdir(parents=True)
    (pool / "xen_1.0.orig.tar.xz").write_bytes(payload)
    monkeypatch.setenv(debian.MIRROR_ENV, (tmp_path / "mirror").as_uri())
    sha = hashlib.sha256(payload).hexdigest()
    lock = load_lock(write(tmp_path, GOOD.format(sha=sha, size=len(payload))))
    cache = Cache(tmp_path / "cache")
    got = cache.download(lock["xen"])
    assert got.read_bytes() == payload
    (pool / "xen_1.0.orig.tar.xz").unlink()      # a second call must not fetch again
    assert cache.download(lock["xen"]) == got


def test_download_with_wrong_hash_leaves_nothing(tmp_path, monkeypatch):
    pool = tmp_path / "mirror" / "pool/main/x/xen"
    pool.mkdir(parents=True)
    (pool / "xen_1.0.orig.tar.xz").write_bytes(b"tampered")
    monkeypatch.setenv(debian.MIRROR_ENV, (tmp_path / "mirror").as_uri())
    lock = load_lock(write(tmp_path, GOOD.format(sha="b" * 64, size=8)))
    cache = Cache(tmp_path / "cache")
    with pytest.raises(HarnessError, match="sha256 mismatch.*harness lock update"):
        cache.download(lock["xen"])
    assert not list((cache.root / "downloads").rglob("xen_1.0*"))


def test_version_gone_from_mirror_says_how_to_repin(tmp_path, monkeypatch):
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv(debian.MIRROR_ENV, (tmp_path / "mirror").as_uri())
    lock = load_lock(write(tmp_path, GOOD.format(sha="a" * 64, size=1)))
    with pytest.raises(HarnessError, match=r"\[xen\].*harness lock update"):
        Cache(tmp_path / "cache").download(lock["xen"])


def test_mirror_comes_from_apt_configuration(tmp_path, monkeypatch):
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text("Types: deb\nURIs: http://mirror.example/debian-security\n\n"
                                      "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n")
    monkeypatch.setattr(debian, "APT_SOURCES", [tmp_path / "nonexistent.list", d])
    assert debian.mirror() == "http://mirror.example/debian"
    monkeypatch.setattr(debian, "APT_SOURCES", [tmp_path / "nonexistent.list"])
    with pytest.raises(HarnessError, match=debian.MIRROR_ENV):
        debian.mirror()


def test_parse_index_keeps_multiline_fields():
    recs = debian.parse_index("Package: xen\nVersion: 1\nChecksums-Sha256:\n " + "c" * 64 +
                              " 10 xen_1.orig.tar.xz\n\nPackage: other\n")
    assert debian.source_files(recs[0]) == {"xen_1.orig.tar.xz": ("c" * 64, 10)}
    assert recs[1]["Package"] == "other"
