"""Run build commands with their output in a per-step log; fail with its tail."""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from .errors import HarnessError

TAIL_LINES = 25


class StepFailed(HarnessError):
    """A build command failed: carries the log path and its last lines."""

    def __init__(self, step: str, cmd: list[str], code: int, log: Path):
        self.log, self.code = log, code
        tail = tail_of(log)
        super().__init__(f"step '{step}' failed (exit {code}): {shlex.join(cmd)}\n"
                         f"--- last {TAIL_LINES} lines of {log} ---\n{tail}",
                         fix=f"read the whole log: {log}")


def tail_of(log: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def run(step: str, cmd: list[str], log: Path, cwd: Path | None = None, env: dict | None = None,
        timeout: float = 3600) -> None:
    """Run cmd, appending stdout+stderr to log; raise StepFailed with the log's tail on failure."""
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write(f"\n$ {shlex.join(cmd)}   # step {step}, in {cwd or os.getcwd()}\n")
        out.flush()
        try:
            code = subprocess.run(cmd, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\n[harness] step {step} timed out after {timeout} s\n")
            code = -1
        except FileNotFoundError:
            raise HarnessError(f"command not found: {cmd[0]}", field=f"step {step}",
                               fix="run scripts/setup to install the host tools") from None
    if code != 0:
        raise StepFailed(step, cmd, code, log)


def output(cmd: list[str], cwd: Path | None = None) -> str:
    """Run a quick query command and return its stdout (errors explain themselves)."""
    try:
        return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True,
                              timeout=120).stdout
    except FileNotFoundError:
        raise HarnessError(f"command not found: {cmd[0]}", fix="run scripts/setup to install the host tools") from None
    except subprocess.CalledProcessError as e:
        raise HarnessError(f"{shlex.join(cmd)} failed: {e.stderr.strip()[-500:]}") from None
