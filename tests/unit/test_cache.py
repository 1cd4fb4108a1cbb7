"""The content-addressed cache: keys cover every input, entries appear atomically."""
import os

import pytest

from harness.images.cache import MANIFEST, Cache, digest


def test_key_changes_with_every_input_and_ignores_dict_order():
    base = {"source": "sha256:1", "patches": "p", "fragments": {"a": "X=y"}, "toolchain": "gcc 12"}
    assert digest(base) == digest(dict(reversed(list(base.items()))))
    for k in base:
        changed = dict(base, **{k: "other"})
        assert digest(changed) != digest(base), k


def test_build_once_then_hit(tmp_path):
    cache = Cache(tmp_path)
    calls = []

    def build(out, log):
        calls.append(1)
        (out / "artifact").write_text("x")
        return {"note": "hi"}
    e1, built1 = cache.build("thing", {"v": 1}, build)
    e2, built2 = cache.build("thing", {"v": 1}, build)
    assert (built1, built2) == (True, False) and len(calls) == 1
    assert e1.path == e2.path and (e1 / "artifact").read_text() == "x"
    assert e1.manifest["note"] == "hi" and e1.manifest["inputs"] == {"v": 1}
    e3, built3 = cache.build("thing", {"v": 2}, build)
    assert built3 and e3.path != e1.path


def test_failed_build_leaves_no_entry_and_no_staging(tmp_path):
    cache = Cache(tmp_path)

    def build(out, log):
        (out / "half-written").write_text("x")
        raise RuntimeError("compiler crashed")
    with pytest.raises(RuntimeError):
        cache.build("thing", {"v": 1}, build)
    assert cache.lookup("thing", digest({"recipe": "thing", "v": 1})) is None
    assert not list((tmp_path / "tmp").iterdir())
    assert not (tmp_path / "store" / "thing").exists() or not list((tmp_path / "store" / "thing").iterdir())


def test_interrupted_build_is_not_an_entry(tmp_path):
    """A directory without its manifest (a kill -9 between writes) is never used."""
    cache = Cache(tmp_path)
    key = digest({"recipe": "thing", "v": 1})
    half = cache.entry_path("thing", key)
    half.mkdir(parents=True)
    (half / "artifact").write_text("partial")
    assert cache.lookup("thing", key) is None


def test_clean_tmp_removes_dead_builds_only(tmp_path):
    cache = Cache(tmp_path)
    dead = tmp_path / "tmp" / f"thing-{'ab' * 12}.999999999"
    live = tmp_path / "tmp" / f"thing-{'ab' * 12}.{os.getpid()}"
    theirs = [tmp_path / "tmp" / n for n in ("report.2024", "backup.20231203", "thing-abc.999999999")]
    dead.mkdir()
    live.mkdir()
    for p in theirs:
        p.mkdir()
    cache.clean_tmp()
    assert not dead.exists() and live.exists()
    assert all(p.exists() for p in theirs), "only names the harness writes are removed"


def test_manifest_is_written_last(tmp_path):
    cache = Cache(tmp_path)
    seen = {}

    def build(out, log):
        seen["manifest_during_build"] = (out / MANIFEST).exists()
    cache.build("thing", {}, build)
    assert seen == {"manifest_during_build": False}


# --- entries are checked against the sizes and sha256 their manifest records -----------

import json
import stat

from harness.images import cache as cache_mod
from harness.images.cache import forget_checks
from harness.errors import HarnessError


def _xen(out, log):
    (out / "xen").write_bytes(b"X" * 100)
    (out / "sub").mkdir()
    (out / "sub" / "config").write_text("CONFIG_A=y\n")
    os.symlink("xen", out / "xen.link")


def _fresh(tmp_path):
    lines = []
    cache = Cache(tmp_path, notify=lines.append)
    entry, _ = cache.build("xen", {"v": 1}, _xen)
    forget_checks()                       # as the next process would
    return cache, entry, lines


def test_manifest_records_size_sha256_and_links(tmp_path):
    _, entry, _ = _fresh(tmp_path)
    files = entry.manifest["files"]
    assert files["xen"] == {"size": 100, "sha256": __import__("hashlib").sha256(b"X" * 100).hexdigest()}
    assert files["xen.link"] == {"symlink": "xen"} and "sub/config" in files and MANIFEST not in files


@pytest.mark.parametrize("damage,why", [
    (lambda e: (e / "xen").write_bytes(b"X" * 10), "xen is 10 bytes, recorded 100"),
    (lambda e: (e / "xen").write_bytes(b"Y" * 100), "xen has other bytes than recorded"),
    (lambda e: (e / "sub" / "config").unlink(), "sub/config is missing"),
    (lambda e: (e / "stray.o").write_text("x"), "stray.o is not in the manifest"),
    (lambda e: ((e / "xen.link").unlink(), os.symlink("sub", e / "xen.link")), "no longer a link to xen"),
    (lambda e: (e / MANIFEST).write_text("{not json"), "manifest.json is unreadable"),
])
def test_damaged_entry_is_rebuilt_with_one_line(tmp_path, damage, why):
    cache, entry, lines = _fresh(tmp_path)
    damage(entry.path)
    again, built = cache.build("xen", {"v": 1}, _xen)
    assert built and (again / "xen").read_bytes() == b"X" * 100
    assert len(lines) == 1 and why in lines[0] and "rebuilding" in lines[0] and "store/xen/" in lines[0]
    forget_checks()
    assert cache.build("xen", {"v": 1}, _xen)[1] is False and len(lines) == 1
    assert not list((tmp_path / "tmp").iterdir())


def test_entry_without_manifest_is_replaced_not_an_oserror(tmp_path):
    cache, entry, lines = _fresh(tmp_path)
    (entry / MANIFEST).unlink()
    again, built = cache.build("xen", {"v": 1}, _xen)
    assert built and again.manifest["files"] and "has no manifest.json" in lines[0]
    assert "has no manifest.json" in (tmp_path / "logs" / "cache-repairs.log").read_text()


def test_entry_is_hashed_once_per_process(tmp_path, monkeypatch):
    cache, entry, _ = _fresh(tmp_path)
    calls = []
    real = cache_mod.file_digest
    monkeypatch.setattr(cache_mod, "file_digest", lambda p: calls.append(p) or real(p))
    cache.build("xen", {"v": 1}, _xen)
    n = len(calls)
    assert n == 2                       # xen and sub/config; links are not hashed
    cache.build("xen", {"v": 1}, _xen)
    assert len(calls) == n


def test_entry_whose_manifest_records_no_files_is_damaged(tmp_path):
    """Nothing says what it held, so nothing can prove it intact: rebuilt, not adopted."""
    cache, entry, lines = _fresh(tmp_path)
    m = entry.manifest
    del m["files"]
    (entry / MANIFEST).write_text(json.dumps(m))
    assert cache.build("xen", {"v": 1}, _xen)[1] is True
    assert any("records no files" in line for line in lines) and "files" in entry.manifest


def test_a_directory_that_is_not_a_cache_is_refused(tmp_path):
    """The harness deletes in its cache: it only works in a directory it made or adopted."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    (home / "tmp" / "report.2024").write_text("mine")
    (home / "notes.txt").write_text("mine")
    with pytest.raises(HarnessError, match=r"is not a harness cache: it holds notes.txt .*fix: give an empty"):
        Cache(home)
    assert (home / "tmp" / "report.2024").read_text() == "mine"
    with pytest.raises(HarnessError, match="empty path"):
        Cache("")
    old = tmp_path / "old-cache"            # a cache from before the mark: adopted
    (old / "store").mkdir(parents=True)
    Cache(old)
    assert (old / ".xen-scmi-harness-cache").is_file()


def test_stale_staging_and_partial_downloads_of_dead_pids_go_at_start(tmp_path):
    Cache(tmp_path)
    dead = tmp_path / "tmp" / f"xen-{'ab' * 12}.999999999"
    (dead / "obj").mkdir(parents=True)
    part = tmp_path / "downloads" / "abc" / "xen.tar.xz.part999999999"
    part.parent.mkdir()
    part.write_text("half")
    mine = tmp_path / "tmp" / f"xen-{'ab' * 12}.{os.getpid()}"
    mine.mkdir()
    Cache(tmp_path)
    assert not dead.exists() and not part.exists() and mine.exists()


def test_cache_path_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(HarnessError, match=r"file.*is a file, not a directory.*fix: give a writable directory"):
        Cache(tmp_path / "file")
    with pytest.raises(HarnessError, match="HARNESS_CACHE"):
        Cache(tmp_path / "file" / "below")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_cache_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(HarnessError, match="Permission denied|not writable"):
            Cache(ro / "cache")
    finally:
        ro.chmod(0o700)
