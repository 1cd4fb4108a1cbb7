"""The CI pipelines (ci/): a matrix cell is a board x a system under test (SUT). ci/cell-env.sh
is sourced in bash with an explicit environment (no build, no network); the YAML files are
read with PyYAML where it is installed, else with a minimal line check."""
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness import sut as suts

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "ci"
PIPELINES = ["gitlab-ci.yml", "github-actions.yml"]
SHIPPED = list(tomllib.loads(suts.SHIPPED.read_text(encoding="utf-8")))
OUT = ("CELL", "HARNESS_BOARD", "HARNESS_SUT", "HARNESS_SUTS", "HARNESS_CACHE", "CACHE_KEY", "CACHE_KEY_PREFIX",
       "PYTEST_MARKS")


@pytest.fixture
def cell(tmp_path):
    """cell(**env) -> (returncode, {variable: value} after sourcing, stderr)."""
    def run(*, strict=True, **env):
        base = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LC_ALL": "C",
                "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
                "HARNESS_CACHE": str(tmp_path / "cache")}
        script = ". ci/cell-env.sh >/dev/null || exit $?\n" \
                 f"for v in {' '.join(OUT)}; do printf '%s=%s\\n' \"$v\" \"${{!v-}}\"; done"
        args = ["bash", "-euo", "pipefail", "-c", script] if strict else ["bash", "-c", script]
        p = subprocess.run(args, cwd=REPO, env={**base, **env}, capture_output=True, text=True, timeout=60)
        out = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
        return p.returncode, out, p.stderr
    return run


@pytest.fixture
def shipped_here(monkeypatch, tmp_path):
    """The shipped SUTs as the harness sees them with no user file."""
    monkeypatch.setenv("HARNESS_SUTS", str(tmp_path / "no-such-suts.toml"))
    return suts.load_suts()


def _buildable(shipped_here, name):
    if shipped_here[name].missing:
        pytest.skip(f"SUT {name} cannot be built here: {shipped_here[name].missing}")


@pytest.fixture
def own_suts(tmp_path):
    """A user SUT file with a small fake series beside it (relative paths: to the file)."""
    d = tmp_path / "own"
    (d / "series").mkdir(parents=True)
    (d / "series" / "0001-x.patch").write_text("Subject: [PATCH 1/1] x\n\n---\n")
    f = d / "suts.toml"
    f.write_text('[mine]\nsource = "lock"\nseries = "series"\nprofile = "v5"\n\n'
                 '[mine2]\nsource = "lock"\nseries = "series"\nprofile = "v5"\n\n'
                 '[gone]\nsource = "lock"\nseries = "no-such-series"\nprofile = "v5"\n')
    return f


# ---------------------------------------------------------------------------- ci/cell-env.sh

def test_the_default_cell(cell, shipped_here, tmp_path):
    _buildable(shipped_here, "v5")
    rc, out, err = cell()
    assert rc == 0, err
    assert (out["CELL"], out["HARNESS_BOARD"], out["HARNESS_SUT"], out["PYTEST_MARKS"]) == \
        ("qemu-virt.v5", "qemu-virt", "v5", "boot")
    assert out["HARNESS_CACHE"] == str(tmp_path / "cache") and out["HARNESS_SUTS"] == ""
    assert out["CACHE_KEY_PREFIX"] == "harness-qemu-virt-v5-"
    assert re.fullmatch(r"harness-qemu-virt-v5-[0-9a-f]{16}", out["CACHE_KEY"])


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_sut(cell, shipped_here, name, tmp_path):
    _buildable(shipped_here, name)
    gh = tmp_path / "github_env"
    rc, out, err = cell(SUT=name, BOARD="rpi5-like", GITHUB_ENV=str(gh))
    assert rc == 0, err
    assert (out["CELL"], out["HARNESS_SUT"], out["HARNESS_BOARD"]) == (f"rpi5-like.{name}", name, "rpi5-like")
    assert re.fullmatch(rf"harness-rpi5-like-{re.escape(name)}-[0-9a-f]{{16}}", out["CACHE_KEY"])
    written = dict(line.split("=", 1) for line in gh.read_text().splitlines())
    assert written == {k: v for k, v in out.items() if v}       # GitHub: the same, every later step
    assert "HARNESS_XEN_SRC" not in written and "HARNESS_XEN_PATCHES" not in written


def test_an_unknown_sut_fails_at_once_naming_the_valid_ones(cell):
    rc, out, err = cell(SUT="no-such-sut")
    assert rc != 0 and "CELL" not in out
    assert "SUT=no-such-sut" in err and all(n in err for n in SHIPPED), err
    assert "SUTS_FILE" in err


def test_sourced_without_set_e_it_returns_and_the_shell_goes_on(cell):
    rc, out, err = cell(strict=False, SUT="no-such-sut")
    assert rc != 0 and "no-such-sut" in err and out == {}


@pytest.mark.parametrize("bad", ["v5,upstream-4.20", "-v5", "v5 x", "../v5", "$(id)"])
def test_one_plain_sut_name_per_cell(cell, bad):
    rc, _, err = cell(SUT=bad)
    assert rc != 0 and "not one SUT name" in err


@pytest.mark.parametrize("bad", ["no-such-board", "../boards/qemu-virt", "-x"])
def test_an_unknown_board(cell, bad):
    rc, _, err = cell(BOARD=bad, SUT="upstream-4.20")
    assert rc != 0 and f"BOARD={bad}" in err and "qemu-virt" in err and "rpi5-like" in err


@pytest.mark.parametrize("old", ["XEN_SRC=git", "XEN_SERIES=none", "PROFILE=single", "XEN_GIT_SRC=u#r",
                                 "SUT_SERIES=x", "HARNESS_XEN_SRC=lock", "HARNESS_XEN_PATCHES=none"])
def test_the_former_matrix_variables_are_refused(cell, old):
    k, v = old.split("=")
    rc, _, err = cell(SUT="upstream-4.20", **{k: v})
    assert rc != 0 and k in err and "SUTS_FILE" in err


def test_a_suts_file_adds_suts(cell, own_suts, tmp_path):
    rel = os.path.relpath(own_suts, REPO)                       # relative to the checkout
    rc, out, err = cell(SUT="mine", SUTS_FILE=rel)
    assert rc == 0, err
    assert out["HARNESS_SUTS"] == str(own_suts) and out["CELL"] == "qemu-virt.mine"
    assert out["CACHE_KEY_PREFIX"] == "harness-qemu-virt-mine-"
    rc, _, err = cell(SUT="nope", SUTS_FILE=str(own_suts))
    assert rc != 0 and "mine, mine2, gone" in err and "upstream-4.20" in err
    rc, _, err = cell(SUT="gone", SUTS_FILE=str(own_suts))
    assert rc != 0 and "cannot be built here" in err and "no-such-series" in err
    rc, _, err = cell(SUT="mine", SUTS_FILE=str(tmp_path / "missing.toml"))
    assert rc != 0 and "SUTS_FILE" in err and "missing.toml" in err


def test_a_bad_suts_file_is_one_message(cell, tmp_path):
    f = tmp_path / "suts.toml"
    f.write_text('[x]\nsource = "lock"\nprofile = "v99"\n')
    rc, _, err = cell(SUT="x", SUTS_FILE=str(f))
    assert rc != 0 and "v99" in err and "Traceback" not in err


def test_the_cache_key_follows_the_sut_and_its_series(cell, own_suts, tmp_path):
    def key(**env):
        rc, out, err = cell(SUTS_FILE=str(own_suts), **env)
        assert rc == 0, err
        return out["CACHE_KEY"].rsplit("-", 1)[1]

    mine = key(SUT="mine")
    assert key(SUT="mine") == mine                                # deterministic
    assert key(SUT="mine2") != mine                               # same tree, another SUT
    assert key(SUT="mine", BOARD="rcar-gen4-like") != mine
    elsewhere = tmp_path / "elsewhere"                            # the same files anywhere: the same key
    elsewhere.mkdir()
    (elsewhere / "series").mkdir()
    (elsewhere / "series" / "0001-x.patch").write_bytes((own_suts.parent / "series" / "0001-x.patch").read_bytes())
    (elsewhere / "suts.toml").write_bytes(own_suts.read_bytes())
    rc, out, _ = cell(SUT="mine", SUTS_FILE=str(elsewhere / "suts.toml"))
    assert out["CACHE_KEY"].rsplit("-", 1)[1] == mine
    patch = own_suts.parent / "series" / "0001-x.patch"
    patch.write_text(patch.read_text() + "changed\n")             # a series file changes
    changed = key(SUT="mine")
    assert changed != mine
    (own_suts.parent / "series" / "0002-y.patch").write_text("Subject: [PATCH] y\n")   # one is added
    assert key(SUT="mine") not in (mine, changed)


def test_the_cache_key_of_a_shipped_sut_differs_from_another(cell, shipped_here):
    keys = {}
    for name in SHIPPED:
        if shipped_here[name].missing is None:
            rc, out, err = cell(SUT=name)
            assert rc == 0, err
            keys[name] = out["CACHE_KEY"].rsplit("-", 1)[1]
    assert len(set(keys.values())) == len(keys)


@pytest.mark.parametrize("script", ["cell-env.sh", "boot-shard.sh", "nightly-report.sh"])
def test_ci_scripts_parse(script):
    subprocess.run(["bash", "-n", str(CI / script)], check=True)


def test_boot_shard_runs_the_cells_sut_and_marks():
    text = (CI / "boot-shard.sh").read_text()
    assert '-m "$PYTEST_MARKS"' in text and '--sut="$HARNESS_SUT"' in text
    assert '-o junit_suite_name="$CELL"' in text


@pytest.mark.parametrize("name", sorted(p.name for p in CI.iterdir() if p.is_file()))
def test_nothing_machine_specific_and_no_git_on_user_strings(name):
    text = (CI / name).read_text(encoding="utf-8")
    # machine paths and host names of any registry or mirror (the mirror comes from apt's
    # configuration or an environment variable; images are named without a registry)
    for pattern in (r"(?<![\w.$-])/(?:tmp|home|root|work)\b", r"~/",
                    r"\b(?:[a-z0-9-]+\.)+(?:org|io|com|net|dev)\b"):
        found = re.search(pattern, text)
        assert not found, f"ci/{name} mentions {found[0]!r}"
    for bad in ("HARNESS_PROFILE", "v9", "XEN_SERIES:", "xen_src:", "PROFILE_MARKS"):
        assert bad not in text, f"ci/{name} mentions {bad!r}"
    if name.endswith(".sh"):
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        assert not re.search(r"(^|[;&|(`]|\$\()\s*git\s", code, re.M), f"ci/{name} runs git"


# ---------------------------------------------------------------------------- the pipelines

def _sut_cells(name):
    """(board, sut) of the build and the boot matrix of a pipeline, without a YAML library."""
    text = (CI / name).read_text(encoding="utf-8")
    if name == "github-actions.yml":
        cells = re.findall(r'^\s*- \{ board: ([\w.-]+), sut: "([^"]+)" \}', text, re.M)
        return cells
    cells = []
    for board, sut in re.findall(r"^\s*- BOARD: (.+)\n\s+SUT: (.+)$", text, re.M):
        def values(v):
            v = v.strip()
            return [x.strip(' "') for x in v.strip("[]").split(",")] if v.startswith("[") else [v.strip('"')]
        cells += [(b, s) for b in values(board) for s in values(sut)]
    return cells


@pytest.mark.parametrize("name", PIPELINES)
def test_pipelines_name_only_suts_and_boards_that_exist(name, shipped_here):
    cells = _sut_cells(name)
    assert cells, f"ci/{name}: no matrix cell found"
    assert {s for _, s in cells} == set(SHIPPED) and all(s in shipped_here for _, s in cells)
    assert all((REPO / "boards" / f"{b}.toml").is_file() for b, _ in cells)
    assert {b for b, s in cells if s == "v5"} == {p.stem for p in (REPO / "boards").glob("*.toml")}
    half = len(cells) // 2                                       # the build matrix, then the boot one
    assert sorted(cells[:half]) == sorted(cells[half:]), "the build and the boot matrix differ"


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_runs_setup_shards_and_reports(name):
    text = (CI / name).read_text()
    for needed in ("debian:bookworm", "scripts/setup", "ci/cell-env.sh", "ci/boot-shard.sh",
                   "ci/nightly-report.sh", "SUTS_FILE", ".harness-cache", "junit/", "artifacts/"):
        assert needed in text, f"ci/{name} does not mention {needed}"
    for old in ("SUT_SERIES", "XEN_GIT_SRC", "PROFILE"):
        assert old not in text, f"ci/{name} still mentions {old}"
    shards = int(re.search(r'^\s*SHARDS: "(\d+)"', text, re.M)[1])
    lists = re.findall(r"^\s*(?:SHARD|shard): \[([^\]]*)\]", text, re.M)
    assert lists, f"ci/{name}: no shard axis in the boot matrix"
    for values in lists:
        assert [int(v.strip(' "')) for v in values.split(",")] == list(range(1, shards + 1)), \
            f"ci/{name}: the shard axis [{values}] does not match SHARDS={shards}"


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_is_plain_block_yaml(name):
    """Spaces only, even indentation, and every quoted or flow-style value closed on its line."""
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


def _cells(matrix_entries, board_key, sut_key):
    def listed(v):
        return v if isinstance(v, list) else [v]
    return sorted((b, s) for c in matrix_entries for b in listed(c[board_key]) for s in listed(c[sut_key]))


def test_pipelines_with_a_yaml_parser(shipped_here):
    yaml = pytest.importorskip("yaml")
    gl = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    assert gl["stages"] == ["build", "boot", "report"]
    assert any("schedule" in r["if"] for r in gl["workflow"]["rules"])
    assert "SUTS_FILE" in gl["variables"]
    assert "$SUT" in gl[".harness-job"]["cache"]["key"]["prefix"]
    built = _cells(gl["build"]["parallel"]["matrix"], "BOARD", "SUT")
    booted = _cells(gl["boot"]["parallel"]["matrix"], "BOARD", "SUT")
    assert built == booted and {s for _, s in built} <= set(shipped_here)
    for c in gl["boot"]["parallel"]["matrix"]:
        assert set(c) == {"BOARD", "SUT", "SHARD"}
        assert c["SHARD"] == [str(i) for i in range(1, int(gl["variables"]["SHARDS"]) + 1)]
    for c in gl["build"]["parallel"]["matrix"]:
        assert set(c) == {"BOARD", "SUT"}
    assert gl["boot"]["artifacts"]["reports"]["junit"] == "junit/*.xml"
    assert gl["report"]["when"] == "always" and gl["report"]["allow_failure"]["exit_codes"] == [3]

    gh = yaml.safe_load((CI / "github-actions.yml").read_text())
    on = gh.get("on", gh.get(True))                 # YAML 1.1 reads a bare `on` as true
    assert on["schedule"][0]["cron"]
    assert "SUTS_FILE" in gh["env"]
    jobs = gh["jobs"]
    assert jobs["boot"]["needs"] == "build" and jobs["report"]["needs"] == "boot"
    assert jobs["boot"]["strategy"]["matrix"]["shard"] == list(range(1, int(gh["env"]["SHARDS"]) + 1))
    built = _cells(jobs["build"]["strategy"]["matrix"]["cell"], "board", "sut")
    booted = _cells(jobs["boot"]["strategy"]["matrix"]["cell"], "board", "sut")
    assert built == booted and {s for _, s in built} <= set(shipped_here)
    for name in ("build", "boot"):
        job = jobs[name]
        assert job["env"]["SUT"] == "${{ matrix.cell.sut }}" and job["env"]["BOARD"] == "${{ matrix.cell.board }}"
        cell_step = next(i for i, s in enumerate(job["steps"]) if s.get("run", "").startswith(". ci/cell-env.sh"))
        tools = job["steps"][0]["run"]
        assert "python3" in tools, f"{name}: ci/cell-env.sh needs python3 before scripts/setup"
        assert cell_step < next(i for i, s in enumerate(job["steps"]) if "actions/cache/restore" in s.get("uses", ""))
    for job in jobs.values():
        assert job["container"] == "debian:bookworm"
        for step in job["steps"]:
            assert "uses" in step or "run" in step
