"""Issue 11: a developer's own tree - git's view of it, the warm mirror, honest keys,
the profile read from the tree, pruning, progress. Fast: no compiler, no QEMU."""
from __future__ import annotations

import os
import subprocess
import time
import types
from pathlib import Path

import pytest

from harness.run import cli
from harness.images import sources
from harness.images.build import BuildOptions, Builder, OWN_TREE, resolve_sut
from harness.images.build.xen import HYPERVISOR_ONLY, detect_profile, user_paths
from harness.images.cache import Cache, digest, forget_checks
from harness.errors import HarnessError
from harness.images.patches import load_series
from harness.images.shell import StepFailed


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)


def write(root: Path, rel: str, text: str = "x") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "xen"
    write(root, ".gitignore", "*.o\n.config\n")
    write(root, "xen/arch/arm/setup.c", "int a;\n")
    write(root, "tools/xl/xl.c", "int main;\n")
    write(root, "gone.c")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def test_git_view_is_tracked_plus_new_sources_never_build_output(repo):
    write(repo, "xen/arch/arm/setup.c", "int b;\n")          # uncommitted edit
    write(repo, "xen/arch/arm/new.c")                          # new, not yet added
    write(repo, "xen/arch/arm/setup.o")                        # in-place build output (ignored)
    write(repo, "xen/.config")
    (repo / "gone.c").unlink()                                 # deleted, not committed
    assert sources.tree_view(repo) == [".gitignore", "tools/xl/xl.c", "xen/arch/arm/new.c",
                                       "xen/arch/arm/setup.c"]


def test_plain_directory_view_is_every_file_but_vcs(tmp_path):
    write(tmp_path / "t", "a.c")
    write(tmp_path / "t", ".hg/x")
    assert sources.tree_view(tmp_path / "t") == ["a.c"]


def test_sync_copies_only_what_changed_and_keeps_mtimes(repo, tmp_path):
    mirror = tmp_path / "ws" / "tree"
    files = sources.tree_view(repo)
    assert sources.sync_tree(repo, files, mirror) == len(files)
    assert sources.sync_tree(repo, files, mirror) == 0
    p = write(repo, "xen/arch/arm/setup.c", "int changed;\n")
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert sources.sync_tree(repo, files, mirror) == 1
    assert (mirror / "xen/arch/arm/setup.c").stat().st_mtime_ns == p.stat().st_mtime_ns
    git(repo, "rm", "-q", "tools/xl/xl.c")
    assert sources.sync_tree(repo, sources.tree_view(repo), mirror) == 0
    assert not (mirror / "tools/xl/xl.c").exists()


def test_digest_follows_content_with_or_without_the_stat_cache(repo, tmp_path):
    files = sources.tree_view(repo)
    stats = tmp_path / "stat.json"
    d1 = sources.view_digest(repo, files, stats)
    assert sources.view_digest(repo, files, stats) == d1 == sources.view_digest(repo, files, None)
    p = write(repo, "xen/arch/arm/setup.c", "int B;\n")        # same size, same second
    assert sources.view_digest(repo, files, stats) != d1
    assert sources.view_digest(repo, files, None) == sources.view_digest(repo, files, stats)
    assert p.exists()


def test_hypervisor_only_paths_leave_the_toolstack_alone():
    for f in ("xen/arch/arm/setup.c", "xen/arch/arm/firmware/scmi-smc-multiagent.c", "xen/common/sched/core.c",
              "xen/drivers/char/pl011.c", "xen/Kconfig"):
        assert HYPERVISOR_ONLY.match(f), f
    for f in ("tools/xl/xl_parse.c", "xen/include/public/domctl.h", "xen/common/libelf/libelf-loader.c",
              "xen/lib/x86/cpuid.c", "xen/arch/x86/include/asm/msr-index.h", "xen/Makefile", "Config.mk",
              "xen/drivers/vpci/vpci.c"):
        assert not HYPERVISOR_ONLY.match(f), f


def fake_tree(root: Path, kconfig: str = "", c: str = "") -> Path:
    write(root, "xen/Makefile", "")
    write(root, "xen/arch/arm/firmware/Kconfig", kconfig)
    write(root, "xen/arch/arm/firmware/scmi.c", c)
    return root


@pytest.mark.parametrize("kconfig, c, expected", [
    ("config SCMI_SMC\nconfig SCMI_SMC_MA\n", 'x("xen,dom0-sci-agent-id"); y("xen,sci"); "dom0_scmi_agent_id"', "v10"),
    ("config SCMI_SMC_MA\n", 'x("dom0_scmi_agent_id"); y("/chosen/xen,config");', "v5"),
    ("config SCMI_SMC\n", 'boolean_param("scmi-smc-passthrough", x)', "scmi-smc-passthrough"),
    ("config SCMI_SMC\n", 'opt("scmi_smc_passthrough")', "single"),     # v5's RFC spelling: no release knows it
    ("config SCMI_SMC\n", "", "single"),
    ("config OTHER\n", "", None),
])
def test_profile_comes_from_the_tree(tmp_path, kconfig, c, expected):
    p = detect_profile(fake_tree(tmp_path / "t", kconfig, c))
    assert (p.name if p else None) == expected


def test_a_series_on_top_counts_in_the_detection(tmp_path):
    tree = fake_tree(tmp_path / "t", "config SCMI_SMC\n")
    patch = write(tmp_path, "s/0001-ma.patch",
                  "From 1 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] ma\n\n---\n"
                  "diff --git a/xen/arch/arm/firmware/Kconfig b/xen/arch/arm/firmware/Kconfig\n"
                  "--- a/xen/arch/arm/firmware/Kconfig\n+++ b/xen/arch/arm/firmware/Kconfig\n@@ -1 +1,3 @@\n"
                  " config SCMI_SMC\n+config SCMI_SMC_MA\n+ x(\"dom0_scmi_agent_id\"); y(\"/chosen/xen,config\");\n")
    assert detect_profile(tree).name == "single"
    assert detect_profile(tree, load_series(patch.parent)).name == "v5"


def test_own_tree_is_its_own_sut_and_takes_no_series(tmp_path):
    tree = fake_tree(tmp_path / "t", "config SCMI_SMC_MA\n", '"dom0_scmi_agent_id" "/chosen/xen,config"')
    sut = resolve_sut(BuildOptions(xen_src=str(tree)))
    assert (sut.name, sut.profile.name, sut.variant, sut.series) == (OWN_TREE, "v5", "multiagent", None)
    named = resolve_sut(BuildOptions(sut="v5", xen_src=str(tree), xen_patches="none"))
    assert named.name == "v5" and named.series is None and named.source == str(tree)


def test_own_tree_without_scmi_is_refused_clearly(tmp_path):
    with pytest.raises(HarnessError, match=r"no SCMI mediator.*fix:"):
        resolve_sut(BuildOptions(xen_src=str(fake_tree(tmp_path / "t", "config OTHER\n"))))


def test_compiler_errors_name_the_users_file(tmp_path):
    mirror, user = tmp_path / "ws/tree", tmp_path / "home/xen"
    log = write(tmp_path, "b.log", f"{mirror}/xen/arch/arm/setup.c:3:1: error: boom\n")
    e = user_paths(StepFailed("build", ["make", "-C", f"{mirror}/xen"], 2, log), log, mirror, user)
    assert f"{user}/xen/arch/arm/setup.c:3:1: error: boom" in str(e)
    assert f"make -C {mirror}/xen" in str(e)                    # what really ran stays as it ran
    assert str(mirror) not in log.read_text()


def test_prune_keeps_the_most_recently_used(tmp_path):
    c = Cache(tmp_path / "c", notify=lambda m: None)
    made = []
    for i in range(3):
        e, _ = c.build("xen", {"v": i}, lambda out, log: [(out / "xen").write_bytes(b"x" * 1000)] and None)
        os.utime(e.path, (time.time() - (3 - i) * 86400,) * 2)    # i=2 used most recently
        made.append(e.path)
    assert [e.path for e in c.prune(keep_last=1, dry_run=True)] == made[1::-1]
    assert all(p.exists() for p in made)
    assert [e.path for e in c.prune(older_than_days=2.5)] == [made[0]]
    assert not made[0].exists() and made[1].exists()
    forget_checks()
    assert c.verified("xen", digest({"recipe": "xen", "v": 1}))      # a use: now the most recent
    assert [e.path for e in c.prune(keep_last=1)] == [made[2]]


def test_a_long_step_says_it_is_alive_with_make_s_line(tmp_path, monkeypatch):
    seen = []
    b = Builder.__new__(Builder)
    b.cache, b.timings = Cache(tmp_path / "c", notify=lambda m: None), {}
    b.progress = lambda label, state, secs: seen.append(state)
    monkeypatch.setattr(Builder, "HEARTBEAT", (0.2, 0.2))

    def build(out, log):
        log.write_text("  CC      arch/arm/setup.o\n")
        time.sleep(0.7)
        (out / "f").write_text("x")
    b.step("xen hypervisor", "xen", {"v": 1}, build)
    running = [s for s in seen if s.startswith("running")]
    assert running and "CC      arch/arm/setup.o" in running[-1] and "(log " in running[-1]
    assert seen[0] == "start" and seen[-1] == "built"


def test_cached_build_progress_prints_nothing(capsys):
    show = cli._progress(out=types.SimpleNamespace(write=lambda s: print(s, end=""), flush=lambda: None))
    show.header = "SUT v5"
    for state in ("start", "cached"):
        show("tf-a", state, 0.1)
    assert capsys.readouterr().out == "" and show.cached == 1 and show.built == 0
    show("xen", "built", 3.0)
    out = capsys.readouterr().out
    assert out.startswith("SUT v5\n") and "xen: built in 3.0s" in out


def test_prune_keeps_a_workspace_a_build_is_using(tmp_path):
    """A local tree's workspace whose lock a build holds (build/xen.py locked()) is not
    removed under it: prune keeps it and says so (cache.busy); once free, it goes."""
    import fcntl
    c = Cache(tmp_path / "c", notify=lambda m: None)
    ws = c.root / "work" / "xen-0123"
    (ws / "tree").mkdir(parents=True)
    with open(ws / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        os.utime(ws / ".lock", (time.time() - 10 * 86400,) * 2)     # a long build in an old workspace
        assert c.prune(older_than_days=1) == [] and [e.path for e in c.busy] == [ws]
        assert ws.exists()
    assert [e.path for e in c.prune(older_than_days=1)] == [ws] and c.busy == []
    assert not ws.exists()


def test_v11_is_told_from_v10_by_its_libxl_header(tmp_path):
    """v11 keeps v10's hypervisor strings; its toolstack header says LIBXL_HAVE_SCMI_SMC_MULTIAGENT."""
    kconfig, c = "config SCMI_SMC_MA\n", 'x("xen,dom0-sci-agent-id"); y("xen,sci");'
    assert detect_profile(fake_tree(tmp_path / "a", kconfig, c)).name == "v10"
    tree = fake_tree(tmp_path / "b", kconfig, c)
    write(tree, "tools/include/libxl.h", "#define LIBXL_HAVE_SCMI_SMC_MULTIAGENT 1\n")
    assert detect_profile(tree).name == "v11"
