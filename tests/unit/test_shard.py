"""--shard I/N (harness/shard.py), and the CI pipelines that use it (ci/)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.shard import parse_shard, select

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "ci"


def test_parse_shard():
    assert parse_shard("2/4") == (2, 4) and parse_shard(" 1 / 1 ") == (1, 1)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "", "-1/2"):
        with pytest.raises(pytest.UsageError, match="expected I/N"):
            parse_shard(bad)


def test_shards_are_disjoint_complete_and_deterministic():
    ids = [f"tests/boot/test_{m}.py::test_{t}[{p}]" for m in "ab" for t in range(5) for p in ("x", "y")]
    shards = [select(ids, i, 3) for i in (1, 2, 3)]
    assert set().union(*shards) == set(ids)
    assert sum(len(s) for s in shards) == len(ids)
    assert sorted(len(s) for s in shards) == [6, 7, 7]
    assert select(list(reversed(ids)), 2, 3) == shards[1]            # collection order does not matter
    assert select(ids, 1, 1) == set(ids)
    first = sorted(ids)
    assert first[0] in shards[0] and first[1] in shards[1] and first[3] in shards[0]


TESTS = '''
import pytest

@pytest.mark.parametrize("i", range(7))
def test_unit(i):
    pass

@pytest.mark.boot
@pytest.mark.parametrize("i", range(5))
def test_boot(i):
    pass
'''


def collect(tmp_path, *args):
    """Node ids pytest (with the harness plugin, as installed) collects in a synthetic project."""
    (tmp_path / "test_synthetic.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                        "-o", "markers=boot", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    return p.returncode, [line for line in p.stdout.splitlines() if "::" in line], p.stdout + p.stderr


def test_the_plugin_shards_what_is_left_after_marker_selection(tmp_path):
    rc, everything, out = collect(tmp_path, "-m", "not boot")
    assert rc == 0 and len(everything) == 7, out
    shards = []
    for i in (1, 2, 3):
        rc, ids, out = collect(tmp_path, "-m", "not boot", "--shard", f"{i}/3")
        assert rc == 0, out
        assert f"{len(ids)}/12 tests collected ({12 - len(ids)} deselected)" in out
        shards.append(ids)
    assert sorted(len(s) for s in shards) == [2, 2, 3]                 # 7 unit tests, not 12 tests, are dealt
    assert sorted(sum(shards, [])) == sorted(everything)


def test_a_bad_shard_is_a_usage_error(tmp_path):
    rc, _, out = collect(tmp_path, "--shard", "3/2")
    assert rc == 4 and "--shard '3/2': expected I/N with 1 <= I <= N" in out


# ---------------------------------------------------------------------------- the pipelines

PIPELINES = ["gitlab-ci.yml", "github-actions.yml"]


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_is_plain_block_yaml(name):
    """A minimal check that needs no YAML library (test_pipelines_with_a_yaml_parser does the
    real one where PyYAML is installed): spaces only, even indentation, and every quoted or
    flow-style value closed on its line."""
    text = (CI / name).read_text(encoding="utf-8")
    block = None                                     # indentation of a `key: |` block scalar
    for n, line in enumerate(text.splitlines(), 1):
        assert "\t" not in line, f"{name}:{n}: a tab"
        indent = len(line) - len(line.lstrip(" "))
        if block is not None and (not line.strip() or indent > block):
            continue
        block = None
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert indent % 2 == 0, f"{name}:{n}: indentation {indent} is not a multiple of 2"
        m = re.match(r"^\s*(?:- )?(?:[\w.$-]+:(?: |$))?(.*)$", line)
        value = m[1].strip()
        if value[:1] in ("'", '"'):
            q = value[0]
            closed = re.match(rf"^{q}(?:[^{q}\\]|\\.)*{q}(?:\s+#.*)?$", value)
            assert closed, f"{name}:{n}: unclosed {q}-quoted value: {line!r}"
        elif value[:1] in ("[", "{"):
            flow = re.sub(r"'[^']*'|\"[^\"]*\"", "", value.split(" #")[0])
            for o, c in ("[]", "{}"):
                assert flow.count(o) == flow.count(c), f"{name}:{n}: unbalanced {o}{c}: {line!r}"
        elif re.match(r"^[|>][-+]?(\s+#.*)?$", value):
            block = indent


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_runs_setup_shards_and_reports(name):
    text = (CI / name).read_text()
    for needed in ("debian:bookworm", "scripts/setup", "ci/boot-shard.sh", "ci/nightly-report.sh",
                   "SUT_SERIES", ".harness-cache", "junit/", "artifacts/"):
        assert needed in text, f"ci/{name} does not mention {needed}"
    shards = int(re.search(r'^\s*SHARDS: "(\d+)"', text, re.M)[1])
    lists = re.findall(r"^\s*(?:SHARD|shard): \[([^\]]*)\]", text, re.M)
    assert lists, f"ci/{name}: no shard axis in the boot matrix"
    for values in lists:
        assert [int(v.strip(' "')) for v in values.split(",")] == list(range(1, shards + 1)), \
            f"ci/{name}: the shard axis [{values}] does not match SHARDS={shards}"
    boards = set(re.findall(r"board: ([\w-]+)", text)) | {
        b.strip() for lst in re.findall(r"BOARD: \[([^\]]*)\]", text) for b in lst.split(",")} | \
        set(re.findall(r"BOARD: ([\w-]+)$", text, re.M))
    assert boards and all((REPO / "boards" / f"{b}.toml").is_file() for b in boards), boards


def test_pipelines_with_a_yaml_parser():
    yaml = pytest.importorskip("yaml")
    gl = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    assert gl["stages"] == ["build", "boot", "report"]
    assert any("schedule" in r["if"] for r in gl["workflow"]["rules"])
    build_cells = {(b, c["XEN_SRC"], c["XEN_SERIES"]) for c in gl["build"]["parallel"]["matrix"]
                   for b in (c["BOARD"] if isinstance(c["BOARD"], list) else [c["BOARD"]])}
    for c in gl["boot"]["parallel"]["matrix"]:
        assert len(c["SHARD"]) == int(gl["variables"]["SHARDS"])
        for b in c["BOARD"] if isinstance(c["BOARD"], list) else [c["BOARD"]]:
            assert (b, c["XEN_SRC"], c["XEN_SERIES"]) in build_cells, "a boot cell without its build"
    assert gl["boot"]["artifacts"]["reports"]["junit"] == "junit/*.xml"
    assert gl["report"]["when"] == "always" and gl["report"]["allow_failure"]["exit_codes"] == [3]

    gh = yaml.safe_load((CI / "github-actions.yml").read_text())
    on = gh.get("on", gh.get(True))                 # YAML 1.1 reads a bare `on` as true
    assert on["schedule"][0]["cron"]
    jobs = gh["jobs"]
    assert jobs["boot"]["needs"] == "build" and jobs["report"]["needs"] == "boot"
    assert len(jobs["boot"]["strategy"]["matrix"]["shard"]) == int(gh["env"]["SHARDS"])
    built = {(c["board"], c["xen_src"], c["series"]) for c in jobs["build"]["strategy"]["matrix"]["cell"]}
    for c in jobs["boot"]["strategy"]["matrix"]["cell"]:
        assert (c["board"], c["xen_src"], c["series"]) in built, "a boot cell without its build"
    for job in jobs.values():
        assert job["container"] == "debian:bookworm"
        for step in job["steps"]:
            assert "uses" in step or "run" in step


@pytest.mark.parametrize("script", ["cell-env.sh", "boot-shard.sh", "nightly-report.sh"])
def test_ci_scripts_parse(script):
    subprocess.run(["bash", "-n", str(CI / script)], check=True)


def test_cell_env(tmp_path):
    """ci/cell-env.sh maps a matrix cell onto the harness's variables (no build, no network)."""
    series = tmp_path / "series"
    series.mkdir()
    (series / "0001-x.patch").write_text("Subject: [PATCH] x\n")

    def run(**env):
        script = ". ci/cell-env.sh >/dev/null && echo \"$CELL|$PROFILE_MARKS|${HARNESS_XEN_PATCHES-}|$CACHE_KEY\""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "GITHUB_"))}
        return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO, capture_output=True, text=True,
                              env={**clean, **env}, timeout=60)

    p = run(BOARD="qemu-virt", XEN_SERIES="sut", PROFILE="v5", SUT_SERIES=str(series))
    cell, marks, patches, key = p.stdout.strip().split("|")
    assert (cell, marks, patches) == ("qemu-virt.lock.sut.v5", "boot and multiagent", str(series))
    assert re.fullmatch(r"harness-qemu-virt-lock-sut-[0-9a-f]{16}", key)
    (series / "0002-y.patch").write_text("Subject: [PATCH] y\n")
    assert run(XEN_SERIES="sut", PROFILE="v5", SUT_SERIES=str(series)).stdout.strip().split("|")[3] != key
    assert run(XEN_SERIES="none", PROFILE="single").stdout.strip().split("|")[:3] == \
        ["qemu-virt.lock.none.single", "boot and not multiagent", "none"]
    bad = run(XEN_SERIES="sut", SUT_SERIES=str(tmp_path / "missing"))
    assert bad.returncode != 0 and "not found" in bad.stderr and "SUT_SERIES" in bad.stderr
    assert "expected single, v5 or all" in run(PROFILE="v9").stderr
