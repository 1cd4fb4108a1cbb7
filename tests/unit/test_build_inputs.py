"""Build inputs: source specs, Xen variants and fragments, module lists, cpio archives."""
import subprocess

import pytest

from harness.images.build import BuildOptions, Builder, resolve_series
from harness.images.build.linux import _depends, module_sets
from harness.images.build.xen import parse_config, variants
from harness.images.cpio import CpioWriter
from harness.errors import HarnessError
from harness.images.sources import fingerprint, parse_source


def test_source_specs(tmp_path):
    assert parse_source("xen", None, "--xen-src").kind == "lock"
    git = parse_source("xen", "https://example.org/xen.git#stable-4.20", "--xen-src")
    assert (git.kind, git.value, git.ref) == ("git", "https://example.org/xen.git", "stable-4.20")
    d = parse_source("xen", str(tmp_path), "--xen-src")
    assert d.kind == "dir"
    with pytest.raises(HarnessError, match="no ref"):
        parse_source("xen", "https://example.org/xen.git", "--xen-src")
    with pytest.raises(HarnessError, match="--xen-src"):
        parse_source("xen", str(tmp_path / "nope"), "--xen-src")


def _tarball(tmp_path, top="xen-4.99.0"):
    src = tmp_path / "src" / top
    (src / "xen").mkdir(parents=True)
    (src / "xen" / "Makefile").write_text("all:\n")
    tar = tmp_path / f"{top}.tar.xz"
    subprocess.run(["tar", "-cJf", str(tar), "-C", str(tmp_path / "src"), top], check=True)
    return tar


def test_tarball_source_is_verified_cached_and_extracted(tmp_path):
    from harness.images.cache import Cache
    from harness.images.sources import extract, file_sha256
    tar = _tarball(tmp_path)
    digest = file_sha256(tar)
    spec = parse_source("xen", str(tar), "--xen-src", digest)
    assert (spec.kind, spec.sha256) == ("tarball", digest)
    cache = Cache(tmp_path / "cache")
    assert fingerprint(spec, None, cache) == "sha256:" + digest
    assert list((tmp_path / "cache" / "downloads").rglob("xen-4.99.0.tar.xz")), "copied into the cache"
    extract(spec, None, cache, tmp_path / "tree")
    assert (tmp_path / "tree" / "xen" / "Makefile").is_file(), "the top directory is stripped"
    wrong = parse_source("xen", str(tar), "--xen-src", "0" * 64)
    with pytest.raises(HarnessError, match="not the 0000"):
        fingerprint(wrong, None, Cache(tmp_path / "cache2"))
    with pytest.raises(HarnessError, match="not a sha256"):
        parse_source("xen", str(tar), "--xen-src", "abc")
    with pytest.raises(HarnessError, match="does not exist"):
        parse_source("xen", str(tmp_path / "nope.tar.xz"), "--xen-src")


def test_relative_tarball_and_series_paths_are_made_absolute(tmp_path, monkeypatch):
    tar = _tarball(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert parse_source("xen", tar.name, "--xen-src").value == str(tar)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "0001-a.patch").write_text("Subject: [PATCH] a\n\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n")
    assert resolve_series("s").path == tmp_path / "s"


@pytest.mark.parametrize("text", ["--upload-pack=touch /x#main", "https://h/xen.git#--upload-pack=x",
                                  "ext::sh -c touch% /x#main", "-oProxyCommand=x@h:p#main"])
def test_no_user_string_becomes_a_git_option(text):
    with pytest.raises(HarnessError):
        parse_source("xen", text, "--xen-src")


def test_local_tree_fingerprint_follows_content(tmp_path):
    (tmp_path / "f").write_text("a")
    spec = parse_source("xen", str(tmp_path), "--xen-src")
    one = fingerprint(spec, None)
    assert fingerprint(spec, None) == one
    (tmp_path / "f").write_text("b")
    assert fingerprint(spec, None) != one


def test_variants_and_fragments():
    v = variants()
    assert {"upstream", "multiagent", "multiagent-debug"} <= set(v)
    assert all(f.endswith(".config") for x in v.values() for f in x["fragments"])
    cfg = parse_config("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"s\"\n")
    assert cfg == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": "s"}


def test_modules_list_and_dependencies():
    sets = module_sets()
    assert "xen-privcmd" in sets["dom0"] and "xenfs" in sets["dom0"]
    assert _depends(b"\0license=GPL\0depends=xen-privcmd,foo\0name=xenfs\0") == ["xen-privcmd", "foo"]
    assert _depends(b"\0depends=\0") == []


def test_explicit_none_series_and_bad_series(tmp_path):
    assert resolve_series("none") is None
    with pytest.raises(HarnessError, match="not found"):
        resolve_series(str(tmp_path / "missing"))


def test_unknown_target_lists_the_known_ones(tmp_path):
    b = Builder(BuildOptions(cache_dir=tmp_path, sut="upstream-4.20"))
    with pytest.raises(HarnessError, match="xen-multiagent"):
        b.build(["xen-bogus"])


def test_cpio_archive_is_readable_by_cpio(tmp_path):
    (tmp_path / "tree" / "etc").mkdir(parents=True)
    (tmp_path / "tree" / "etc" / "motd").write_text("hello\n")
    (tmp_path / "tree" / "link").symlink_to("etc/motd")
    out = tmp_path / "a.cpio"
    w = CpioWriter(out)
    w.tree(tmp_path / "tree")
    w.file("bin/tool", b"#!/bin/sh\n", 0o755)
    w.chardev("dev/console", 5, 1)
    w.close()
    listing = subprocess.run(["cpio", "-itv"], stdin=open(out, "rb"), capture_output=True, text=True,
                             check=True).stdout
    assert "etc/motd" in listing and "link -> etc/motd" in listing
    assert "crw-------" in listing and "dev/console" in listing
    assert "-rwxr-xr-x" in listing and "bin/tool" in listing
