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


def read_text_file(path, what: str) -> str:
    """The text of a UTF-8 file (a board, a scenario, ...), or one HarnessError naming
    the file, the byte at fault and the fix: never a UnicodeDecodeError traceback."""
    from pathlib import Path
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise HarnessError(f"cannot read the {what}: {e.strerror or e}", where=str(path),
                           fix="check the path and its permissions") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise HarnessError(f"the {what} is not UTF-8 text (byte 0x{data[e.start]:02x} at line {line}, "
                           f"offset {e.start})", where=str(path),
                           fix="save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
