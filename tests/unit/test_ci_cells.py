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

from harness.images import sut as suts

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "ci"
PIPELINES = ["gitlab-ci.yml", "github-actions.yml", "github-cell.yml"]
SHIPPED = list(tomllib.loads(suts.SHIPPED.read_text(encoding="utf-8")))
OUT = ("CELL", "HARNESS_BOARD", "HARNESS_SUT", "HARNESS_SUTS", "HARNESS_CACHE", "CACHE_KEY", "CACHE_KEY_PREFIX",
       "PYTEST_MARKS", "WORKERS")


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


def gate_of(s) -> str:
    """Which opt-in a shipped SUT's cells need: the v5 series (V5_SERIES), the shared sut/
    directory (SHARED_SUT: v10, v11, Xen 4.22.0), or nothing (Debian's Xen)."""
    if s.series and "rfc-v5" in s.series:
        return "v5"
    if "/shared/sut/" in s.source + (s.series or ""):
        return "shared"
    return "nightly"


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


def test_workers_is_a_number_auto_or_0(cell, shipped_here):
    _buildable(shipped_here, "v5")
    assert cell()[1]["WORKERS"] == "auto" and cell(WORKERS="4")[1]["WORKERS"] == "4"
    rc, out, err = cell(WORKERS="four")
    assert rc != 0 and "WORKERS=four" in err and "pytest -n" in err and "CELL" not in out


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
    assert '-m "$PYTEST_MARKS"' in text and '--sut="$HARNESS_SUT"' in text and '-n "$WORKERS"' in text
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
    """(board, sut) of a pipeline's cells, without a YAML library: GitLab's per-cell build and
    boot jobs (two lists), GitHub's matrix of cells (one list)."""
    text = (CI / name).read_text(encoding="utf-8")
    if name == "github-actions.yml":
        return re.findall(r'^\s*- \{ board: ([\w.-]+), sut: "([^"]+)" \}', text, re.M)
    return [re.findall(rf"^harness-{kind}:[^\n]*\n(?:  [^\n]*\n)*?  variables: \{{ BOARD: ([\w.-]+), SUT: ([\w.+-]+) \}}",
                       text, re.M) for kind in ("build", "boot")]


def test_pipelines_name_only_suts_and_boards_that_exist(shipped_here):
    built, booted = _sut_cells("gitlab-ci.yml")
    gh = _sut_cells("github-actions.yml")
    assert built and sorted(built) == sorted(booted) == sorted(gh), "the GitLab and GitHub cells differ"
    assert {s for _, s in gh} == set(SHIPPED) and all(s in shipped_here for _, s in gh)
    assert all((REPO / "boards" / f"{b}.toml").is_file() for b, _ in gh)
    assert {b for b, s in gh if s == "v5"} == {p.stem for p in (REPO / "boards").glob("*.toml")}


def test_pipelines_run_setup_shards_and_report():
    gl = (CI / "gitlab-ci.yml").read_text()
    gh = (CI / "github-actions.yml").read_text() + (CI / "github-cell.yml").read_text()
    for name, text in (("gitlab-ci.yml", gl), ("github-*.yml", gh)):
        for needed in ("debian:bookworm", "HARNESS_CI_IMAGE", "scripts/setup", "ci/cell-env.sh",
                       "ci/boot-shard.sh", "ci/nightly-report.sh", "SUTS_FILE", "V5_SERIES", "V5_SERIES_SHA256",
                       ".harness-cache", "junit/", "artifacts/", '-m "not boot and not build"'):
            assert needed in text, f"ci/{name} does not mention {needed}"
        for old in ("SUT_SERIES", "XEN_GIT_SRC", "PROFILE"):
            assert old not in text, f"ci/{name} still mentions {old}"
        shards = int(re.search(r'^\s*SHARDS: "(\d+)"', text, re.M)[1])
        lists = re.findall(r"^\s*-? ?(?:SHARD|shard): \[([^\]]*)\]", text, re.M)
        assert lists, f"ci/{name}: no shard axis"
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


def test_gitlab_template_with_a_yaml_parser(shipped_here):
    """Includable: nothing global, harness-* names, default stages; one build job per cell and
    each boot job needing only its own; the cells of a SUT with a series only with V5_SERIES."""
    yaml = pytest.importorskip("yaml")
    gl = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    assert all(k.startswith(("harness-", ".harness-")) for k in gl), sorted(gl)
    jobs = {k: v for k, v in gl.items() if not k.startswith(".")}
    assert "V5_SERIES" in gl[".harness-job"]["variables"] and "SUTS_FILE" in gl[".harness-job"]["variables"]
    assert gl[".harness-job"]["image"] == "$HARNESS_CI_IMAGE"
    assert gl[".harness-job"]["variables"]["HARNESS_CI_IMAGE"] == "debian:bookworm"
    assert gl[".harness-boot"]["parallel"]["matrix"] == [
        {"SHARD": [str(i) for i in range(1, int(gl[".harness-job"]["variables"]["SHARDS"]) + 1)]}]
    assert "$SUT" in gl[".harness-cell"]["cache"]["key"]["prefix"]
    stage = {".harness-build": "build", ".harness-boot": "test"}
    cells = set()
    for name, job in jobs.items():
        if name in ("harness-unit", "harness-report"):
            continue
        kind, board, sut = name.split(":")
        template = ".harness-" + kind.removeprefix("harness-")
        assert job["extends"][0] == template and gl[template]["stage"] == stage[template]
        assert job["variables"] == {"BOARD": board, "SUT": sut} and sut in shipped_here
        gate = ".harness-" + gate_of(shipped_here[sut])
        assert job["extends"][1] == gate, f"{name}: rules {job['extends'][1]}, not {gate}"
        if kind == "harness-boot":
            assert job["needs"] == [f"harness-build:{board}:{sut}"], name
            cells.add((board, sut))
    assert cells and {(b, s) for b, s in cells} == {tuple(n.split(":")[1:]) for n in jobs if n.startswith("harness-build:")}
    assert "$V5_SERIES" in gl[".harness-v5"]["rules"][0]["if"]
    assert "$SHARED_SUT" in gl[".harness-shared"]["rules"][0]["if"]
    assert "V5_SERIES" not in gl[".harness-nightly"]["rules"][0]["if"]
    assert "push" in jobs["harness-unit"]["rules"][0]["if"] and "merge_request_event" in jobs["harness-unit"]["rules"][0]["if"]
    assert jobs["harness-report"]["stage"] == ".post" and jobs["harness-report"]["allow_failure"]["exit_codes"] == [3]
    assert jobs["harness-report"]["rules"][0]["when"] == "always"


def test_github_workflows_with_a_yaml_parser(shipped_here):
    yaml = pytest.importorskip("yaml")
    gh = yaml.safe_load((CI / "github-actions.yml").read_text())
    cell = yaml.safe_load((CI / "github-cell.yml").read_text())
    on = gh.get("on", gh.get(True))                 # YAML 1.1 reads a bare `on` as true
    assert on["schedule"][0]["cron"] and {"push", "pull_request", "workflow_dispatch"} <= set(on)
    jobs = gh["jobs"]
    for name, gate in (("cell", "nightly"), ("cell-v5", "v5"), ("cell-shared", "shared")):
        job = jobs[name]
        assert job["uses"] == "./.github/workflows/harness-cell.yml"
        assert job["with"] == {"board": "${{ matrix.cell.board }}", "sut": "${{ matrix.cell.sut }}",
                               "workers": "${{ vars.WORKERS || 'auto' }}"}
        assert all(gate_of(shipped_here[c["sut"]]) == gate for c in job["strategy"]["matrix"]["cell"]), name
        assert ("vars.V5_SERIES" in job["if"]) == (gate == "v5")
        assert ("vars.SHARED_SUT" in job["if"]) == (gate == "shared")
    assert "push" in jobs["unit"]["if"] and '-m "not boot and not build"' in jobs["unit"]["steps"][-1]["run"]
    assert jobs["report"]["needs"] == ["cell", "cell-v5", "cell-shared"] and "!cancelled()" in jobs["report"]["if"]
    call = cell.get("on", cell.get(True))["workflow_call"]["inputs"]
    assert set(call) == {"board", "sut", "workers"} and call["workers"]["default"] == "auto"
    assert cell["env"]["WORKERS"] == "${{ inputs.workers }}"
    assert cell["env"]["BOARD"] == "${{ inputs.board }}" and cell["env"]["SUT"] == "${{ inputs.sut }}"
    assert {"SUTS_FILE", "V5_SERIES", "V5_SERIES_SHA256", "SHARED_SUT", "SHARED_SUT_SHA256"} <= set(cell["env"])
    assert cell["jobs"]["boot"]["needs"] == "build" and "if" not in cell["jobs"]["boot"]
    assert cell["jobs"]["boot"]["strategy"]["matrix"]["shard"] == list(range(1, int(cell["env"]["SHARDS"]) + 1))
    for name, job in cell["jobs"].items():
        steps = job["steps"]
        cell_step = next(i for i, s in enumerate(steps) if s.get("run", "").startswith(". ci/cell-env.sh"))
        assert "python3" in steps[0]["run"], f"{name}: ci/cell-env.sh needs python3 before scripts/setup"
        assert cell_step < next(i for i, s in enumerate(steps) if "actions/cache/restore" in s.get("uses", ""))
    for job in [*cell["jobs"].values(), jobs["unit"], jobs["report"]]:
        assert job["container"] == "${{ vars.HARNESS_CI_IMAGE || 'debian:bookworm' }}"
        for step in job["steps"]:
            assert "uses" in step or "run" in step
