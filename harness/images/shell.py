"""Run build commands with their output in a per-step log; fail with its tail.

A build command (make and everything it starts) runs in its own session under a small
supervisor: on a timeout, Ctrl-C or any error the harness kills the whole process
group, and if the harness itself dies (even by kill -9) the kernel signals the
supervisor (PR_SET_PDEATHSIG), which kills the group. No `make` outlives the harness.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import HarnessError

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


# Runs as `python -c SUPERVISOR PARENT_PID CMD...`, as the leader of its own session and
# process group: it dies with the harness (PDEATHSIG) and takes the group with it.
SUPERVISOR = r"""
import ctypes, os, signal, subprocess, sys
def kill_group(*_):
    os.killpg(0, signal.SIGKILL)
for s in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, kill_group)
signal.signal(signal.SIGINT, signal.SIG_IGN)      # the harness decides (it kills the group)
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):              # the harness died before prctl
    kill_group()
try:
    p = subprocess.Popen(sys.argv[2:], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
except OSError as e:
    print(f"[harness] cannot run {sys.argv[2]}: {e}", flush=True)
    sys.exit(127)
rc = p.wait()
sys.exit(rc if rc >= 0 else 128 - rc)
"""


def _find(cmd0: str, env: dict, cwd: Path | None) -> bool:
    if "/" in cmd0:
        p = Path(cmd0) if os.path.isabs(cmd0) else Path(cwd or os.getcwd()) / cmd0
        return os.access(p, os.X_OK) and p.is_file()
    return shutil.which(cmd0, path=env.get("PATH", os.defpath)) is not None


def kill_group(p: subprocess.Popen) -> None:
    """Kill the process group of p (its own session: make and all it started)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    p.wait()


def run(step: str, cmd: list[str], log: Path, cwd: Path | None = None, env: dict | None = None,
        timeout: float = 3600) -> None:
    """Run cmd, appending stdout+stderr to log; raise StepFailed with the log's tail on failure.
    cmd runs in its own process group, killed with the harness (see the module's doc)."""
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    if not _find(cmd[0], full_env, cwd):
        raise HarnessError(f"command not found: {cmd[0]}", field=f"step {step}",
                           fix="run scripts/setup to install the host tools")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write(f"\n$ {shlex.join(cmd)}   # step {step}, in {cwd or os.getcwd()}\n")
        out.flush()
        p = subprocess.Popen([sys.executable, "-I", "-S", "-c", SUPERVISOR, str(os.getpid()), *cmd],
                             cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p)
            out.write(f"\n[harness] step {step} timed out after {timeout} s\n")
            code = -1
        except BaseException:        # Ctrl-C, a test timeout, ...: nothing of the step survives
            kill_group(p)
            raise
        else:
            try:                     # whatever the command left running in its group
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
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
