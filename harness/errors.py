"""One error type for bad input: it names the file, the field and the fix."""
from __future__ import annotations


class HarnessError(Exception):
    """Bad input or a failed step, explained in one message for a human.

    ``where`` is the file (or command, or URL) at fault, ``field`` the key or
    option inside it, ``fix`` what the user should do about it.
    """

    def __init__(self, problem: str, *, where: str | None = None,
                 field: str | None = None, fix: str | None = None):
        self.problem, self.where, self.field, self.fix = problem, where, field, fix
        super().__init__(str(self))

    def __str__(self) -> str:
        loc = ""
        if self.where:
            loc = str(self.where)
            if self.field:
                loc += f": {self.field}"
            loc += ": "
        elif self.field:
            loc = f"{self.field}: "
        msg = loc + self.problem
        if self.fix:
            msg += f" (fix: {self.fix})"
        return msg
