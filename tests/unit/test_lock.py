"""The sources lock: parsing, validation messages, round trip and verified downloads."""
import hashlib

import pytest

from harness.images import debian
from harness.images.cache import Cache
from harness.errors import HarnessError
from harness.images.lock import LOCK_PATH, _header, dump_lock, load_lock

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


# --- sha256, not only sizes; unknown names; suite indexes against the signed Release -----

import lzma
import shutil

from harness.run import cli
from harness.images.cache import forget_checks


def _mirror(tmp_path, monkeypatch, payload=b"pristine upstream bytes"):
    pool = tmp_path / "mirror" / "pool/main/x/xen"
    pool.mkdir(parents=True)
    (pool / "xen_1.0.orig.tar.xz").write_bytes(payload)
    monkeypatch.setenv(debian.MIRROR_ENV, (tmp_path / "mirror").as_uri())
    lock_path = write(tmp_path, GOOD.format(sha=hashlib.sha256(payload).hexdigest(), size=len(payload)))
    return lock_path, load_lock(lock_path)


def test_same_size_corrupted_download_is_fetched_again(tmp_path, monkeypatch):
    _, lock = _mirror(tmp_path, monkeypatch)
    lines = []
    cache = Cache(tmp_path / "cache", notify=lines.append)
    got = cache.download(lock["xen"])
    got.write_bytes(b"X" * got.stat().st_size)
    forget_checks()
    assert cache.download(lock["xen"]).read_bytes() == b"pristine upstream bytes"
    assert len(lines) == 1 and "[xen]" in lines[0] and "sha256" in lines[0] and "again" in lines[0]


def test_lock_verify_fails_on_a_same_size_corrupted_file_and_names_it(tmp_path, monkeypatch, capsys):
    lock_path, lock = _mirror(tmp_path, monkeypatch)
    args = ["lock", "verify", "xen", "--lock", str(lock_path), "--cache", str(tmp_path / "cache")]
    assert cli.main(args) == 0
    got = Cache(tmp_path / "cache").download_path(lock["xen"])
    got.write_bytes(b"X" * got.stat().st_size)
    forget_checks()
    capsys.readouterr()
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    assert "DAMAGED" in out and str(got) in out and "failed verification: xen" in err
    forget_checks()
    assert cli.main(args) == 0 and got.read_bytes() == b"pristine upstream bytes"   # repaired


def test_lock_verify_fails_when_the_mirror_serves_other_bytes(tmp_path, monkeypatch, capsys):
    lock_path, lock = _mirror(tmp_path, monkeypatch)
    (tmp_path / "mirror" / lock["xen"].path).write_bytes(b"tampered bytes of same length!!"[:23])
    assert cli.main(["lock", "verify", "--lock", str(lock_path), "--cache", str(tmp_path / "c")]) == 1
    out, err = capsys.readouterr()
    assert "FAILED" in out and "sha256 mismatch" in out and "xen" in err


@pytest.mark.parametrize("action", ["verify", "show", "update"])
def test_lock_unknown_name_fails_listing_the_names(tmp_path, monkeypatch, capsys, action):
    lock_path, _ = _mirror(tmp_path, monkeypatch)
    assert cli.main(["lock", action, "xne", "--lock", str(lock_path), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "no entry 'xne'" in err and "use one of: xen, or a group: libs" in err
    assert cli.main(["lock", "show", "libs", "--lock", str(lock_path)]) == 0


RELEASE = """Origin: Debian
Suite: testing
Codename: trixie
Date: Sat, 21 Nov 2026 08:00:00 UTC
SHA256:
 {sha} {size} main/source/Sources.xz
 0000000000000000000000000000000000000000000000000000000000000000 12 main/binary-arm64/Packages.xz
"""


def test_index_must_match_the_release_files_sha256():
    data = b"the Sources.xz bytes"
    good = RELEASE.format(sha=hashlib.sha256(data).hexdigest(), size=len(data))
    debian.check_index(good, "main/source/Sources.xz", data, suite="trixie", what="idx")
    debian.check_index(good, "main/source/Sources.xz", data, suite="testing", what="idx")
    with pytest.raises(HarnessError, match=r"does not match trixie's signed Release file.*sha256"):
        debian.check_index(good, "main/source/Sources.xz", b"the Sources.xz byteZ", suite="trixie", what="idx")
    with pytest.raises(HarnessError, match="22 bytes"):
        debian.check_index(good, "main/source/Sources.xz", data + b"..", suite="trixie", what="idx")
    with pytest.raises(HarnessError, match="not listed in the SHA256 section"):
        debian.check_index(good, "main/binary-amd64/Packages.xz", data, suite="trixie", what="idx")
    with pytest.raises(HarnessError, match="is for 'trixie', not 'sid'"):
        debian.check_index(good, "main/source/Sources.xz", data, suite="sid", what="idx")
    expired = good.replace("SHA256:", "Valid-Until: Sat, 01 Jan 2000 00:00:00 UTC\nSHA256:")
    with pytest.raises(HarnessError, match="expired"):
        debian.check_index(expired, "main/source/Sources.xz", data, suite="trixie", what="idx")


def _suite(tmp_path, monkeypatch, sources: bytes, listed: bytes):
    d = tmp_path / "mirror" / "dists" / "trixie"
    (d / "main" / "source").mkdir(parents=True, exist_ok=True)
    (d / "main" / "source" / "Sources.xz").write_bytes(sources)
    (d / "InRelease").write_text(RELEASE.format(sha=hashlib.sha256(listed).hexdigest(), size=len(listed)))
    monkeypatch.setenv(debian.MIRROR_ENV, (tmp_path / "mirror").as_uri())
    # the signature part is gpgv's (tested below); here the "verified" text is the file's
    monkeypatch.setattr(debian, "verify_signature", lambda p, d=None, what="": p.read_text())


def test_read_index_checks_the_index_against_the_release_file(tmp_path, monkeypatch):
    xz = lzma.compress(b"Package: xen\nVersion: 1\n")
    _suite(tmp_path, monkeypatch, xz, xz)
    (tmp_path / "c").mkdir()
    assert debian.read_index("trixie", "source", cache_dir=tmp_path / "c")[0]["Package"] == "xen"
    _suite(tmp_path, monkeypatch, lzma.compress(b"Package: evil\nVersion: 1\n"), xz)
    with pytest.raises(HarnessError, match="Sources.xz does not match trixie's signed Release file"):
        debian.read_index("trixie", "source", cache_dir=tmp_path / "c")


@pytest.mark.skipif(not shutil.which("gpgv") or not debian.KEYRING.is_file(), reason="needs gpgv and the keyring")
def test_unsigned_or_forged_release_is_refused(tmp_path):
    f = tmp_path / "InRelease"
    f.write_text("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + RELEASE +
                 "-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n")
    with pytest.raises(HarnessError, match="signature of InRelease does not verify"):
        debian.verify_signature(f, what="Debian trixie Release file")
    f.write_text(RELEASE)
    with pytest.raises(HarnessError, match="does not verify"):
        debian.verify_signature(f)


def test_missing_keyring_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(debian.KEYRING_ENV, str(tmp_path / "none.gpg"))
    with pytest.raises(HarnessError, match="debian-archive-keyring"):
        debian.verify_signature(tmp_path / "InRelease")


@pytest.mark.parametrize("url", ["mirror.example/debian", "ftp//x", "http://", "http://bad host/debian"])
def test_bad_mirror_url_is_a_clear_error(monkeypatch, url):
    monkeypatch.setenv(debian.MIRROR_ENV, url)
    with pytest.raises(HarnessError, match=rf"{debian.MIRROR_ENV}.*not a mirror URL.*http://HOST/debian"):
        debian.mirror()
