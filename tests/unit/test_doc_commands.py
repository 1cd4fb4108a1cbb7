"""Every command shown in README.md and docs/*.md (the lines of their ```sh / ```bash
blocks) is exercised here, so the docs cannot rot (issue 28). Each command is one test:

  .venv/bin/harness ...  parsed by the real command line (harness.run.cli.parser()): a subcommand,
                         option or choice that no longer exists fails; the read-only ones of
                         RUN are also run and must succeed.
  .venv/bin/pytest ...   run as `pytest --collect-only -q` with the same options over
                         tests/boot: an option pytest or the harness no longer has, an unknown
                         SUT or board fails (a SUT the same page adds with `harness sut add` is
                         given to it in a scratch SUT file).
  ssh ...                must be the line harness.machine.ssh.SshKeys.command() makes for the default cache.
  anything else          must be in ELSEWHERE, which names what runs it (and that is checked);
                         a command nobody exercises fails, saying so.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from harness.run import cli

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL = {"sh", "bash"}
FENCE = re.compile(r"^```(\S*)\s*$")

# Commands another part of the repository runs as written: command -> (file, the line in it).
ELSEWHERE = {
    "scripts/setup": (".ci/run", "scripts/setup"),
    ".venv/bin/pytest": (".ci/run", ".venv/bin/pytest -v --junitxml=artifacts/junit.xml"),
}
# harness commands that are read-only and fast: run as well as parsed (they must succeed).
RUN = {"sut list", "record check", "record status", "lock show"}


def blocks(path: Path):
    """(language, first line number, lines) of each fenced block."""
    lang, start, body = None, 0, []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = FENCE.match(line)
        if m and lang is None:
            lang, start, body = m[1], n + 1, []
        elif line.strip() == "```" and lang is not None:
            yield lang, start, body
            lang = None
        elif lang is not None:
            body.append(line)


def commands() -> list[tuple[str, str]]:
    """(where, command) of every command in the docs' shell blocks: continuation lines
    joined, comments cut, `a && b` split."""
    out = []
    for path in DOCS:
        for lang, start, body in blocks(path):
            if lang not in SHELL:
                continue
            logical, first = "", start
            for n, line in enumerate(body, start):
                if not logical:
                    first = n
                if line.rstrip().endswith("\\"):
                    logical += line.rstrip()[:-1] + " "
                    continue
                logical += line
                words = shlex.split(logical, comments=True)
                logical = ""
                cmd: list[str] = []
                for w in words + ["&&"]:
                    if w == "&&":
                        if cmd:
                            out.append((f"{path.relative_to(REPO)}:{first}", shlex.join(cmd)))
                        cmd = []
                    else:
                        cmd.append(w)
    return out


COMMANDS = commands()


def split_env(cmd: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(cmd)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    return env, words


def added_suts(where: str) -> dict[str, list[str]]:
    """The SUTs the same page adds with `harness sut add NAME ...`: name -> its arguments."""
    page = where.split(":")[0]
    out = {}
    for w, cmd in COMMANDS:
        _, words = split_env(cmd)
        if w.split(":")[0] == page and words[:3] == [".venv/bin/harness", "sut", "add"]:
            out[words[3]] = words[4:]
    return out


def name_known(name: str, where: str) -> bool:
    """A record name the docs may use: one in records/, or one the same page adds."""
    return (REPO / "records" / f"{name}.toml").is_file() or name in added_suts(where)


def harness_command(where: str, env: dict, args: list[str]) -> None:
    try:
        parsed = cli.parser().parse_args(args)
    except SystemExit as e:
        pytest.fail(f"{where}: `harness {shlex.join(args)}` does not parse (exit {e.code}): the docs name an option, "
                    f"subcommand or choice the harness no longer has")
    assert callable(parsed.func)
    from harness.run import bench
    from harness.images import sut as suts
    from harness.images.build import Builder
    if parsed.command == "build":        # targets are checked by the build itself, not by argparse
        targets = {"all", *Builder.targets(None)}
        assert set(parsed.targets) <= targets, f"{where}: unknown build targets {set(parsed.targets) - targets}"
    if parsed.command == "bench-boot":
        assert set(parsed.boots) <= set(bench.SPECS), f"{where}: unknown boots {set(parsed.boots) - set(bench.SPECS)}"
    if getattr(parsed, "scenario", None):
        assert (REPO / "scenarios" / f"{parsed.scenario}.toml").is_file(), f"{where}: no scenario {parsed.scenario}"
    if getattr(parsed, "board", None):
        assert (REPO / "boards" / f"{parsed.board}.toml").is_file(), f"{where}: no board {parsed.board}"
    for name in [parsed.sut] if isinstance(getattr(parsed, "sut", None), str) else getattr(parsed, "sut", None) or []:
        assert name in suts.load_suts() or name in added_suts(where), f"{where}: no SUT {name}"
    if parsed.command in ("record",) and parsed.name:
        assert name_known(parsed.name, where), f"{where}: no record or SUT {parsed.name}"
    if " ".join(args) in RUN:
        r = subprocess.run([sys.executable, "-m", "harness.run.cli", *args], cwd=REPO, capture_output=True, text=True,
                           timeout=120, env={**os.environ, **env})
        assert r.returncode == 0, f"{where}: `harness {shlex.join(args)}` failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"


def pytest_command(where: str, env: dict, args: list[str], tmp_path: Path) -> None:
    from harness.images import sut as suts
    args = [f"--junitxml={tmp_path / 'junit.xml'}" if a.startswith("--junitxml") else a for a in args]
    run_env = {k: v for k, v in os.environ.items() if k != "CI"}       # --record is refused in CI
    run_env.update(env)
    known = set(suts.load_suts())
    wanted = [a.split("=", 1)[1] if "=" in a else args[i + 1] for i, a in enumerate(args)
              if a == "--sut" or a.startswith("--sut=")]
    adds = added_suts(where)
    new = [n for n in wanted if n not in known]
    if new:
        lines = []
        for name in new:
            assert name in adds, f"{where}: SUT {name!r} is neither shipped nor added on the same page"
            a = adds[name]
            lines += [f"[{name}]", f'profile = "{a[a.index("--profile") + 1]}"']
            if "--record" in a:
                lines.append(f'record = "{a[a.index("--record") + 1]}"')
        (tmp_path / "suts.toml").write_text("\n".join(lines) + "\n")
        run_env["HARNESS_SUTS"] = str(tmp_path / "suts.toml")
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *args,
                        "tests/boot"], cwd=REPO, capture_output=True, text=True, timeout=120, env=run_env)
    assert r.returncode in (0, 5), (f"{where}: `pytest {shlex.join(args)}` is refused (exit {r.returncode}):\n"
                                    f"{r.stdout[-2000:]}{r.stderr[-2000:]}")


def ssh_command(where: str, words: list[str]) -> None:
    from harness.images import cache
    from harness.machine import ssh
    home = str(Path.home())
    root = str(cache.default_root()) if not os.environ.get("HARNESS_CACHE") else home + "/.cache/xen-scmi-harness"
    d = Path(root) / ssh.SSH_DIR
    keys = ssh.SshKeys(dir=d, client_key=d / ssh.CLIENT_KEY, client_public="", host_key=d / ssh.HOST_KEY,
                       host_public=None)
    want = [w.replace(home, "~", 1) if w.startswith(home) or "=" + home in w else w for w in keys.command("PORT")]
    want = [w.replace("=" + home, "=~") for w in want]
    assert words == want, f"{where}: the ssh line is not what harness/machine/ssh.py's SshKeys.command() makes:\n  {want}"


@pytest.mark.parametrize("where,cmd", COMMANDS, ids=[f"{w}:{c.split()[0].split('/')[-1]}" for w, c in COMMANDS])
def test_doc_command(where, cmd, tmp_path):
    env, words = split_env(cmd)
    prog, args = words[0], words[1:]
    if cmd in ELSEWHERE:
        path, line = ELSEWHERE[cmd]
        assert line in (REPO / path).read_text().splitlines(), f"{where}: `{cmd}` is said to be run by {path}; it is not"
    elif prog == ".venv/bin/harness":
        harness_command(where, env, args)
    elif prog == ".venv/bin/pytest":
        pytest_command(where, env, args, tmp_path)
    elif prog == "ssh":
        ssh_command(where, words)
    else:
        pytest.fail(f"{where}: no test exercises `{cmd}`: run it here, parse it, or name what runs it in ELSEWHERE")


def test_the_docs_have_commands_and_every_mapping_is_used():
    assert len(COMMANDS) > 30 and any(w.startswith("README.md") for w, _ in COMMANDS)
    shown = {c for _, c in COMMANDS}
    assert set(ELSEWHERE) <= shown, f"ELSEWHERE names commands no doc shows: {set(ELSEWHERE) - shown}"
    ran = {" ".join(split_env(c)[1][1:]) for c in shown if c.startswith(".venv/bin/harness")}
    assert RUN & ran, "no harness command of the docs is run, only parsed"


def test_commands_are_not_hidden_in_blocks_no_test_reads():
    """A command in an unlabelled or other-language block would escape the tests above."""
    for path in DOCS:
        for lang, start, body in blocks(path):
            if lang in SHELL:
                continue
            for n, line in enumerate(body, start):
                assert not re.match(r"\s*(\.venv/bin/|scripts/|ssh |pytest |harness )", line), \
                    f"{path.relative_to(REPO)}:{n}: a command in a ```{lang} block: label the block sh"


def test_a_removed_option_fails_the_check(tmp_path):
    """The checks can fail: an option the harness or pytest does not have is refused."""
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        harness_command("x", {}, ["build", "--no-such-option"])
    with pytest.raises(AssertionError, match="is refused"):
        pytest_command("x", {}, ["-m", "boot", "--no-such-option"], tmp_path)
    with pytest.raises(AssertionError, match="is refused"):
        pytest_command("x", {}, ["-m", "boot", "--board=no-such-board"], tmp_path)


def test_the_python_example_uses_what_exists():
    """docs/ssh.md's Python block: it compiles, and the API it calls exists."""
    from harness.data import spec
    from harness.machine import ssh, system
    code = [("\n".join(body), p) for p in DOCS for lang, _, body in blocks(p) if lang == "python"]
    assert code
    for text, p in code:
        compile(text, str(p), "exec")
    assert all(hasattr(ssh.SshClient, m) for m in ("run", "put", "get")) and hasattr(system.System, "ssh")
    assert "network" in {f.name for f in __import__("dataclasses").fields(spec.BootSpec)}
