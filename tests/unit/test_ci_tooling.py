"""The CI templates under real runner tooling: actionlint on the GitHub workflows laid out as
adopted, gitlab-ci-local on a host project that includes ci/gitlab-ci.yml beside its own
`stages` and `unit` job, and ci/series.py in a checkout without ../shared. No job is run.
scripts/setup installs both tools (actionlint from the test extras, gitlab-ci-local into
.venv/gitlab-ci-local); a test whose tool is absent skips saying so."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# the shipped SUTs that read ../shared (a series or a source there): opt-in cells on a hosted runner
SERIES_SUTS = {n for n, e in tomllib.loads((REPO / "images/xen/suts.toml").read_text()).items()
               if e.get("series") or "shared/sut" in e.get("source", "")}


def _tool(name, *extra):
    for p in (Path(sys.executable).parent / name, *extra):
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (scripts/setup installs it)")
    return found


# ---------------------------------------------------------------------------- GitHub: actionlint

@pytest.fixture
def gh_project(tmp_path):
    """A repository that adopted the workflows as ci/README.md says."""
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (tmp_path / ".git").mkdir()                      # actionlint's project root
    shutil.copy(REPO / "ci/github-actions.yml", wf / "harness.yml")
    shutil.copy(REPO / "ci/github-cell.yml", wf / "harness-cell.yml")
    return tmp_path


def _actionlint(project):
    return subprocess.run([_tool("actionlint"), "-no-color", ".github/workflows/harness.yml",
                           ".github/workflows/harness-cell.yml"], cwd=project, capture_output=True,
                          text=True, timeout=120)


def test_actionlint_passes_the_workflows(gh_project):
    p = _actionlint(gh_project)
    assert p.returncode == 0, p.stdout + p.stderr


def test_actionlint_checks_the_call_of_the_cell_workflow(gh_project):
    """It reads harness-cell.yml through `uses:`: a wrong input name is an error."""
    f = gh_project / ".github/workflows/harness.yml"
    f.write_text(f.read_text().replace("      sut: ${{ matrix.cell.sut }}", "      sutt: ${{ matrix.cell.sut }}"))
    p = _actionlint(gh_project)
    assert p.returncode != 0 and 'input "sutt" is not defined' in p.stdout, p.stdout


# ---------------------------------------------------------------------------- GitLab: gitlab-ci-local

HOST_CI = """include:
  - local: ci/gitlab-ci.yml
stages: [build, test, deploy]
unit:
  stage: test
  script: [echo the host project's own unit job]
"""


@pytest.fixture
def gl_project(tmp_path):
    """A host project with its own stages and `unit` job that includes the template; no
    ../shared beside it (as on a hosted runner)."""
    if not shutil.which("git"):
        pytest.skip("git is not installed (gitlab-ci-local reads the project's git data)")
    gcl = _tool("gitlab-ci-local", REPO / ".venv/gitlab-ci-local/node_modules/.bin/gitlab-ci-local")
    if not shutil.which("node"):
        pytest.skip("node is not installed (gitlab-ci-local runs on it)")
    d = tmp_path / "host"
    (d / "ci").mkdir(parents=True)
    shutil.copy(REPO / "ci/gitlab-ci.yml", d / "ci/gitlab-ci.yml")
    (d / ".gitlab-ci.yml").write_text(HOST_CI)
    env = {**os.environ, "HOME": str(tmp_path), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "host"]):
        subprocess.run(["git", *cmd], cwd=d, env=env, check=True, capture_output=True)

    def run(*args, **variables):
        var = [a for k, v in variables.items() for a in ("--variable", f"{k}={v}")]
        p = subprocess.run([gcl, *args, *var, "--ignore-predefined-vars", ",".join(variables) or "none"],
                           cwd=d, env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout
    return run


def _jobs(run, **variables):
    """{job name: its --list-json entry} of the jobs that run (not when: never)."""
    out = run("--list-json", **variables)
    return {j["name"]: j for j in json.loads(out[out.index("["):]) if j["when"] != "never"}


def test_including_keeps_the_host_pipeline(gl_project):
    """Item 3: the host's stages and jobs stay; push and MR pipelines still run, with harness-unit."""
    for source in ("push", "merge_request_event"):
        jobs = _jobs(gl_project, CI_PIPELINE_SOURCE=source)
        assert set(jobs) == {"unit", "harness-unit"}, jobs
        assert jobs["unit"]["stage"] == jobs["harness-unit"]["stage"] == "test"
    yaml = pytest.importorskip("yaml")
    merged = yaml.safe_load(gl_project("--preview"))
    assert merged["stages"] == [".pre", "build", "test", "deploy", ".post"]
    assert "workflow" not in merged
    assert merged["unit"]["script"] == ["echo the host project's own unit job"]


def _cells(jobs):
    builds = {n.split(":", 1)[1] for n in jobs if n.startswith("harness-build:")}
    boots = {}
    for n, j in jobs.items():
        if n.startswith("harness-boot:"):
            cell = n.split(":", 1)[1].rsplit(": [", 1)[0]          # "qemu-virt:v5: [1]" -> "qemu-virt:v5"
            boots.setdefault(cell, []).append([x["job"] for x in j["needs"]])
    return builds, boots


def test_each_boot_cell_needs_only_its_own_build(gl_project):
    """Item 1: a failed build job stops only the boot shards of its own cell."""
    jobs = _jobs(gl_project, CI_PIPELINE_SOURCE="schedule", V5_SERIES="series", SHARED_SUT="shared")
    builds, boots = _cells(jobs)
    assert len(builds) == 7 and set(boots) == builds
    for cell, needs in boots.items():
        assert needs == [[f"harness-build:{cell}"]] * 2, (cell, needs)      # two shards
    assert jobs["harness-report"]["stage"] == ".post" and jobs["harness-report"]["when"] == "always"


def test_without_the_series_only_the_cells_that_need_none_run(gl_project):
    """Item 2: no V5_SERIES nor SHARED_SUT (a hosted runner, no ../shared): no job of a SUT
    that reads what is not there."""
    jobs = _jobs(gl_project, CI_PIPELINE_SOURCE="schedule")
    builds, boots = _cells(jobs)
    assert builds == set(boots) == {"qemu-virt:upstream-4.20"}
    assert {n for n in jobs if not n.startswith(("harness-build:", "harness-boot:"))} == {"unit", "harness-report"}
    yaml = pytest.importorskip("yaml")
    merged = yaml.safe_load(gl_project("--preview", CI_PIPELINE_SOURCE="schedule"))
    for name in jobs:
        job = merged[name.split(": [")[0]]
        assert "shared/sut" not in json.dumps(job), name
        assert job.get("variables", {}).get("SUT") not in SERIES_SUTS, name


def test_nightly_jobs_not_on_push(gl_project):
    jobs = _jobs(gl_project, CI_PIPELINE_SOURCE="push", V5_SERIES="series")
    assert not [n for n in jobs if n.startswith(("harness-build", "harness-boot", "harness-report"))]


# ---------------------------------------------------------------------------- ci/series.py

@pytest.fixture
def checkout(tmp_path):
    """A checkout with only what ci/series.py reads, and no ../shared beside it."""
    c = tmp_path / "runner" / "project"
    (c / "ci").mkdir(parents=True)
    (c / "images/xen").mkdir(parents=True)
    shutil.copy(REPO / "ci/series.py", c / "ci/series.py")
    shutil.copy(REPO / "images/xen/suts.toml", c / "images/xen/suts.toml")
    series = tomllib.loads((c / "images/xen/suts.toml").read_text())["v5"]["series"]
    return c, (c / "images/xen" / series).resolve()


def _series(checkout, *args):
    return subprocess.run([sys.executable, str(checkout / "ci/series.py"), *args], capture_output=True,
                          text=True, timeout=60)


def test_a_fetched_series_is_checked_and_linked_where_the_suts_look(checkout, tmp_path):
    c, where = checkout
    src = tmp_path / "pub" / "xen-scmi-ma-rfc-v5"
    src.mkdir(parents=True)
    (src / "0001-x.patch").write_text("Subject: [PATCH 1/1] x\n\n---\n")
    tgz = tmp_path / "pub" / "v5.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(src, arcname="xen-scmi-ma-rfc-v5")
    sha = hashlib.sha256(tgz.read_bytes()).hexdigest()
    url = tgz.as_uri()
    assert "is a URL: set V5_SERIES_SHA256" in _series(c, url).stderr
    bad = _series(c, url, "0" * 64)
    assert bad.returncode == 1 and f"has sha256 {sha}" in bad.stderr and not where.exists()
    ok = _series(c, url, sha)
    assert ok.returncode == 0, ok.stderr
    assert where.is_symlink() and (where / "0001-x.patch").read_text().startswith("Subject:")
    assert (c / ".ci-series").is_dir()
    again = _series(c, url, sha)                                    # a later job: already fetched
    assert again.returncode == 0 and where.is_symlink()


def test_a_series_path_and_bad_specs(checkout, tmp_path):
    c, where = checkout
    mbox = tmp_path / "v5.mbox"
    mbox.write_text("From x\nSubject: [PATCH 1/1] x\n\n")
    assert _series(c, str(mbox)).returncode == 0 and where.resolve() == mbox
    assert "only https:// and file://" in _series(c, "ftp://x/y").stderr
    assert "no such directory or mbox" in _series(c, "no-such-dir").stderr
    where.unlink()
    where.mkdir()                                                   # a runner's own copy: not ours
    assert "is already there" in _series(c, str(mbox)).stderr


def test_shared_sut_links_a_copy_of_the_shared_directory_where_the_suts_look(checkout, tmp_path):
    """SHARED_SUT: a copy of the shared sut/ directory (a path, or a checked tarball URL) is
    linked at ../shared/sut beside the checkout, where images/xen/suts.toml reads v10, v11
    and Xen 4.22.0; something else is refused with one line."""
    c, _ = checkout
    copy = tmp_path / "mnt" / "sut"
    (copy / "xen").mkdir(parents=True)
    (copy / "xen" / "xen-4.22.0.tar.xz").write_bytes(b"x")
    r = _series(c, "--shared", str(copy))
    assert r.returncode == 0, r.stderr
    link = c.parent / "shared" / "sut"
    assert link.is_symlink() and link.resolve() == copy.resolve()
    assert _series(c, "--shared", str(copy)).returncode == 0          # again: pointed anew
    tgz = tmp_path / "sut.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(copy, arcname="sut")
    bad = _series(c, "--shared", tgz.as_uri(), "0" * 64)
    assert bad.returncode == 1 and "SHARED_SUT_SHA256" in bad.stderr
    good = _series(c, "--shared", tgz.as_uri(), hashlib.sha256(tgz.read_bytes()).hexdigest())
    assert good.returncode == 0, good.stderr
    assert (link / "xen" / "xen-4.22.0.tar.xz").is_file()
    (tmp_path / "empty").mkdir()
    r = _series(c, "--shared", str(tmp_path / "empty"))
    assert r.returncode == 1 and "no xen/ directory" in r.stderr
