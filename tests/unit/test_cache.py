"""The content-addressed cache: keys cover every input, entries appear atomically."""
import os

import pytest

from harness.cache import MANIFEST, Cache, digest


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
    dead = tmp_path / "tmp" / "thing-abc.999999999"
    live = tmp_path / "tmp" / f"thing-abc.{os.getpid()}"
    dead.mkdir()
    live.mkdir()
    cache.clean_tmp()
    assert not dead.exists() and live.exists()


def test_manifest_is_written_last(tmp_path):
    cache = Cache(tmp_path)
    seen = {}

    def build(out, log):
        seen["manifest_during_build"] = (out / MANIFEST).exists()
    cache.build("thing", {}, build)
    assert seen == {"manifest_during_build": False}
