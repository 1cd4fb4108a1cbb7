"""A step log per boot: every action the harness takes on a system (a boot stage it waits
for, a dom0 command, a file put into dom0, an xl create, a check), with its start, its
duration and its result, as labgrid's step reporting does. It is what one reads first
when a boot test fails on a CI runner: what the harness sent, what it waited for, how
long, and which step failed.

Written line by line to <boot workdir>/steps.log as each step ends (a killed run keeps what
was done; so a nested step is written before the step it is part of) and quoted, the steps
of the failing test in start order, in the failure report.
"""
from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass
from pathlib import Path

TAIL = 15     # steps quoted in a failure report


@dataclass(frozen=True)
class Step:
    name: str         # what kind of action: stage, shell, put, xl-create, wait-guest, check ...
    detail: str       # what exactly (the command, the pattern, the guest)
    wall: float       # time.time() at its start (matches pytest's call.start/stop)
    at: float         # seconds since the machine started
    seconds: float
    result: str       # "ok" or the exception's type and first line

    def __str__(self) -> str:
        return f"[{self.at:8.3f}] {self.seconds:6.2f}s {self.result if self.result != 'ok' else 'ok':<4} " \
               f"{self.name}: {self.detail}"


class StepLog:
    def __init__(self, path: Path | None = None, zero: float | None = None):
        self.path, self.steps = path, []
        self.zero = zero if zero is not None else time.monotonic()
        self._depth = 0

    @contextlib.contextmanager
    def step(self, name: str, detail: str = ""):
        """Run the with-block as one step; an exception is its result, and goes on."""
        wall, t0 = time.time(), time.monotonic()
        self._depth += 1
        try:
            yield
        except BaseException as e:
            first = (str(e).strip().splitlines() or [""])[0][:160]
            self._add(name, detail, wall, t0, f"{type(e).__name__}: {first}")
            raise
        else:
            self._add(name, detail, wall, t0, "ok")
        finally:
            self._depth -= 1

    def record(self, name: str, detail: str, wall: float, seconds: float, result: str = "ok") -> None:
        """A step that was timed elsewhere (the boot's preparation, before the log existed)."""
        self._write(Step(name, detail, wall, time.monotonic() - seconds - self.zero, seconds, result))

    def _add(self, name, detail, wall, t0, result) -> None:
        self._write(Step(name, ("  " * (self._depth - 1)) + " ".join(detail.split())[:200], wall, t0 - self.zero,
                         time.monotonic() - t0, result))

    def _write(self, s: Step) -> None:
        self.steps.append(s)
        if self.path is not None:
            with contextlib.suppress(OSError), open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{s}\n")

    def between(self, start: float, stop: float) -> list[Step]:
        """The steps that began in [start, stop] (wall clock: a pytest call's start and stop)."""
        return [s for s in self.steps if start <= s.wall <= stop]

    def report(self, steps: list[Step] | None = None, tail: int = TAIL) -> str:
        # in start order: the log holds a step when it ends, so a nested step comes before its parent
        steps = sorted(self.steps if steps is None else steps, key=lambda s: s.at)
        shown = steps[-tail:]
        more = f"({len(steps) - len(shown)} earlier steps in {self.path})\n" if len(steps) > len(shown) else ""
        return more + "\n".join(str(s) for s in shown)


def checked(name: str = "check"):
    """Decorator for the checks (harness/checks/checks.py): the call is one step of the system
    it is given first, named after the function, with its guest or agent as detail."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(s, *args, **kwargs):
            steps = getattr(s, "steps", None)
            if steps is None:
                return fn(s, *args, **kwargs)
            what = " ".join(str(getattr(a, "name", a)) for a in args if isinstance(a, (str, int)) or hasattr(a, "name"))
            with steps.step(name, f"{fn.__name__} {what}".strip()):
                return fn(s, *args, **kwargs)
        return inner
    return wrap
