"""Build inputs: source specs, Xen variants and fragments, module lists, cpio archives."""
import subprocess

import pytest

from harness.build import BuildOptions, Builder, resolve_series
from harness.build.linux import _depends, module_sets
from harness.build.xen import parse_config, variants
from harness.cpio import CpioWriter
from harness.errors import HarnessError
from harness.sources import fingerprint, parse_source


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
    assert v["multiagent"]["patched"] and not v["upstream"]["patched"]
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
    b = Builder(BuildOptions(cache_dir=tmp_path, xen_patches="none"))
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
