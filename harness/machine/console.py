"""Console engine: one reader thread per serial port, one expect loop for all of them.

Built on plain sockets and threads rather than pexpect: pexpect reads only while
someone is inside expect(), so a quiet test would let QEMU's socket fill up and
stall the guest, and it cannot wait on one console while watching the others for
a panic. Here every console drains continuously into memory and a log file, and
all consoles of a machine share one condition variable, so a wait on any of them
wakes (and fails at once) when a failure line shows up on another.
"""
from __future__ import annotations

import bisect
import codecs
import contextlib
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT = 30.0
TAIL_LINES = 30          # lines of the console quoted on a timeout
CONTEXT_BEFORE = 15      # lines quoted before a failure line
CONTEXT_AFTER = 25       # lines quoted after it, as many as arrive within the grace period
FAILURE_GRACE = 2.0      # seconds to let the rest of an oops/panic arrive
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}   # handled by the main thread (qemu.py)


@dataclass(frozen=True)
class FailurePattern:
    source: str          # who prints it: xen, linux, tf-a
    regex: re.Pattern
    what: str            # human description for the report


def _fp(source: str, regex: str, what: str) -> FailurePattern:
    return FailurePattern(source, re.compile(regex), what)


# Checked against every complete line of every console during every wait.
# Tests may append to (or filter) this table; it is read at each line.
FAILURE_PATTERNS: list[FailurePattern] = [
    _fp("xen", r"Panic on CPU \d+", "Xen panic"),
    _fp("xen", r"Assertion '.*' failed", "Xen assertion"),
    _fp("xen", r"Xen BUG at", "Xen BUG"),
    _fp("xen", r"FATAL TRAP", "Xen fatal trap"),
    _fp("linux", r"Kernel panic - not syncing", "Linux kernel panic"),
    _fp("linux", r"Internal error: Oops", "Linux oops"),
    _fp("linux", r"Unable to handle kernel", "Linux bad kernel access"),
    _fp("linux", r"kernel BUG at", "Linux BUG"),
    _fp("linux", r"(?<![A-Za-z])BUG: ", "Linux BUG"),
    _fp("tf-a", r"^ERROR:\s+", "TF-A error"),
    _fp("tf-a", r"Unhandled Exception", "TF-A unhandled exception"),
    _fp("tf-a", r"BL31: Unhandled", "TF-A BL31 unhandled exception"),
    _fp("tf-a", r"\bPANIC\b", "TF-A panic"),
]

# Terminal control sequences: CSI (busybox sends ESC[6n), OSC, charset selection,
# and two-byte escapes. '[' and ']' are left out of the last class so that an
# incomplete CSI/OSC at the end of a read is recognised and held back.
_ESC = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
                  r"|\x1b[()*+][ -~]|\x1b[ -Z\\^-~]")
_ESC_PREFIX = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[()*+])?\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")   # all C0 controls but \t and \n
_PIECES = re.compile(r"[^\n]*\n|[^\n]+")                 # lines, keeping their newline


class ConsoleError(Exception):
    """Base of the console engine's errors."""


class ConsoleTimeout(ConsoleError):
    """A pattern did not appear in time; the message quotes the console's last lines."""


class ConsoleClosed(ConsoleError):
    """The console reached end of file (QEMU exited) before the pattern appeared."""


class ConsoleFailure(ConsoleError):
    """A failure line (panic, oops, firmware crash) appeared on some console."""

    def __init__(self, message: str, failure: "Failure"):
        super().__init__(message)
        self.failure = failure


@dataclass
class Failure:
    console: "Console"
    line: int            # 0-based line index in that console
    text: str
    pattern: FailurePattern
    time: float
    allowed: bool = False
    reported: bool = False

    def __str__(self) -> str:
        return f"{self.console.name} line {self.line + 1}: {self.pattern.what}: {self.text.strip()}"


@dataclass(frozen=True)
class Match:
    """Result of expect(): which pattern matched, the re.Match, and when."""
    console: str
    index: int           # index into the pattern list given to expect()
    pattern: re.Pattern
    match: re.Match
    before: str          # text between the cursor and the match
    time: float          # monotonic time of the line the match starts on

    @property
    def text(self) -> str:
        return self.match.group(0)

    def group(self, *args):
        return self.match.group(*args)


def _compile(patterns) -> list[re.Pattern]:
    if isinstance(patterns, (str, re.Pattern)):
        patterns = [patterns]
    return [p if isinstance(p, re.Pattern) else re.compile(p, re.MULTILINE) for p in patterns]


def _describe(pats: list[re.Pattern]) -> str:
    return " | ".join(repr(p.pattern) for p in pats)


class Consoles:
    """The consoles of one machine: one lock, one failure list, waits watch them all."""

    def __init__(self):
        self.cond = threading.Condition()
        self.failures: list[Failure] = []
        self.t0 = time.monotonic()           # zero of the timestamps in the console logs
        self._by_name: dict[str, Console] = {}
        self._allow = 0

    def add(self, console: "Console") -> None:
        with self.cond:
            if console.name in self._by_name:
                raise ValueError(f"duplicate console name {console.name}")
            self._by_name[console.name] = console

    def __getitem__(self, name: str) -> "Console":
        return self._by_name[name]

    def __iter__(self):
        return iter(list(self._by_name.values()))

    @contextlib.contextmanager
    def allowing_failures(self):
        """Failure lines seen inside this block are expected: they are recorded, not raised."""
        with self.cond:
            self._allow += 1
        try:
            yield self
        finally:
            with self.cond:
                self._allow -= 1

    def check(self) -> None:
        """Raise ConsoleFailure for a failure line not reported yet (e.g. after the last wait)."""
        with self.cond:
            failure = self._pending()
        if failure:
            self._raise(failure)

    def acknowledge(self) -> None:
        """Treat every failure seen so far as expected."""
        with self.cond:
            for f in self.failures:
                if not f.reported:
                    f.allowed = f.reported = True

    def close(self) -> None:
        for c in self:
            c.close()

    # -- internal: _record and _pending run with self.cond held ---------------------
    def _record(self, console: "Console", line: int, text: str, now: float) -> None:
        for fp in list(FAILURE_PATTERNS):
            if fp.regex.search(text):
                allowed = self._allow > 0
                self.failures.append(Failure(console, line, text, fp, now, allowed, allowed))
                return

    def _pending(self) -> Failure | None:
        return next((f for f in self.failures if not f.reported), None)

    def _raise(self, failure: Failure):
        """Wait briefly for the rest of the crash report, then raise with its context."""
        con = failure.console
        deadline = time.monotonic() + FAILURE_GRACE
        with self.cond:
            while con.line_count < failure.line + 1 + CONTEXT_AFTER and not con.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            others = [f for f in self.failures if not f.reported and f is not failure]
            for f in self.failures:
                f.reported = True
            lines = con.lines(failure.line - CONTEXT_BEFORE, failure.line + 1 + CONTEXT_AFTER)
        first = max(0, failure.line - CONTEXT_BEFORE)
        body = "\n".join((">> " if first + i == failure.line else "   ") + l
                         for i, l in enumerate(lines))
        msg = (f"{con.name}: {failure.pattern.what} ({failure.pattern.source}) at line "
               f"{failure.line + 1}, +{failure.time - self.t0:.3f} s:\n{body}")
        if others:
            msg += "\nfurther failure lines:\n" + "\n".join(f"  {f}" for f in others)
        if con.log_path:
            msg += f"\n(full log: {con.log_path})"
        raise ConsoleFailure(msg, failure)


class Console:
    """One serial port: a reader thread drains `sock` into memory and `log_path`.

    Text is decoded as UTF-8, with terminal escape sequences, carriage returns and
    other control characters removed; expect() runs regexes (MULTILINE) over it.
    The bytes as they came are kept too (raw_mark/raw_since), for a person's terminal
    (`harness boot`): line editing, colours and Backspace need them unmodified.
    """

    def __init__(self, name: str, sock: socket.socket, *, log_path: Path | None = None,
                 group: Consoles | None = None):
        self.name, self.sock, self.log_path = name, sock, log_path
        self.group = group if group is not None else Consoles()
        self.cond = self.group.cond
        self._text = ""
        self._line_starts = [0]
        self._line_times = [time.monotonic()]
        self._line_fresh = True              # the current line has no character yet
        self._pending = ""                   # an escape sequence split across reads
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._raw = bytearray()              # every byte received, unmodified
        self._cursor = 0
        self._send_lock = threading.Lock()
        self.eof = False
        self._log = open(log_path, "w", encoding="utf-8") if log_path else None
        self.group.add(self)
        self._thread = threading.Thread(target=self._reader, name=f"console-{name}", daemon=True)
        self._thread.start()

    # -- reading ---------------------------------------------------------------------
    def _reader(self) -> None:
        # Block the stop signals here so the kernel delivers them to the main thread: a
        # signal landing on this thread would wait until the main thread's blocking call
        # (sleep, expect) returns before its Python handler (which kills QEMU) ran.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._feed(self._decoder.decode(b"", final=True), final=True)
                return
            with self.cond:
                self._raw += data
            self._feed(self._decoder.decode(data))

    def _clean(self, text: str, final: bool) -> str:
        text = self._pending + text
        self._pending = ""
        esc = text.rfind("\x1b")
        if esc >= 0 and not final and len(text) - esc < 256 and _ESC_PREFIX.match(text, esc):
            text, self._pending = text[:esc], text[esc:]
        return _CONTROL.sub("", _ESC.sub("", text))

    def _feed(self, raw: str, final: bool = False) -> None:
        now = time.monotonic()
        text = self._clean(raw, final)
        with self.cond:
            done = []                        # (index, text) of lines completed by this read
            for ch_line in _PIECES.findall(text):
                if self._line_fresh:
                    self._line_times[-1] = now
                    self._line_fresh = False
                self._text += ch_line
                if ch_line.endswith("\n"):
                    idx = len(self._line_starts) - 1
                    done.append((idx, self._text[self._line_starts[idx]:]))
                    self._line_starts.append(len(self._text))
                    self._line_times.append(now)
                    self._line_fresh = True
            if final and not self._line_fresh:   # last line without a newline
                idx = len(self._line_starts) - 1
                done.append((idx, self._text[self._line_starts[idx]:]))
            for idx, line in done:
                self.group._record(self, idx, line, now)
            if final:
                self.eof = True
            self.cond.notify_all()
        if self._log:
            for idx, line in done:
                self._log.write(f"[{self._line_times[idx] - self.group.t0:10.6f}] "
                                f"{line.rstrip(chr(10))}\n")
            self._log.flush()

    # -- positions and text ----------------------------------------------------------
    @property
    def text(self) -> str:
        return self._text

    @property
    def cursor(self) -> int:
        return self._cursor

    @cursor.setter
    def cursor(self, pos: int) -> None:
        self._cursor = pos

    @property
    def line_count(self) -> int:
        """Complete lines, plus the current partial line if any."""
        return len(self._line_starts) - (1 if self._line_fresh else 0)

    def mark(self) -> int:
        """Position of the end of what has arrived so far."""
        return len(self._text)

    def text_since(self, mark: int) -> str:
        return self._text[mark:]

    def raw_mark(self) -> int:
        """Position of the end of the raw bytes received so far (see raw_since)."""
        with self.cond:
            return len(self._raw)

    def raw_since(self, mark: int = 0) -> bytes:
        """The bytes received after raw position `mark`, exactly as they came: escape
        sequences, carriage returns, Backspace and all (mark() counts cleaned text)."""
        with self.cond:
            return bytes(self._raw[mark:])

    def skip(self) -> int:
        """Move the cursor to the end: later expects see only new output."""
        with self.cond:
            self._cursor = len(self._text)
            return self._cursor

    def lines(self, start: int = 0, stop: int | None = None) -> list[str]:
        with self.cond:
            chunk = self._text[self._pos_of_line(start):self._pos_of_line(stop)]
        # split on \n only: splitlines() would also split on \x85 etc. and shift line numbers
        return chunk[:-1].split("\n") if chunk.endswith("\n") else (chunk.split("\n") if chunk else [])

    def tail(self, n: int = TAIL_LINES) -> str:
        with self.cond:
            return "\n".join(self.lines(max(0, self.line_count - n)))

    def _pos_of_line(self, line: int | None) -> int:
        if line is None or line >= len(self._line_starts):
            return len(self._text)
        return self._line_starts[max(0, line)]

    def line_at(self, pos: int) -> int:
        return bisect.bisect_right(self._line_starts, pos) - 1

    def time_at(self, pos: int) -> float:
        """Monotonic time at which the line holding text position `pos` began to arrive."""
        return self._line_times[self.line_at(pos)]

    def first_time(self, pattern, since: int = 0) -> float | None:
        """Monotonic time of the line where `pattern` first matches after `since`, or None."""
        (pat,) = _compile(pattern)
        with self.cond:
            m = pat.search(self._text, since)
            return self.time_at(m.start()) if m else None

    # -- waiting ---------------------------------------------------------------------
    def expect(self, patterns, timeout: float = DEFAULT_TIMEOUT, *, allow_failures: bool = False,
               since: int | None = None) -> Match:
        """Wait until one of `patterns` matches the text after the cursor (or `since`).

        The earliest match wins (ties go to the first pattern); the cursor moves past
        it. Meanwhile every console of the group is watched for failure lines:
        ConsoleFailure at once, unless allow_failures (which accepts them all).
        """
        pats = _compile(patterns)
        if allow_failures:
            try:
                return self._wait(pats, timeout, since, watch=False)
            finally:
                self.group.acknowledge()
        return self._wait(pats, timeout, since, watch=True)

    def _wait(self, pats: list[re.Pattern], timeout: float, since: int | None, watch: bool) -> Match:
        deadline = time.monotonic() + timeout
        with self.cond:
            start = self._cursor if since is None else since
            searched = -1
            while True:
                failure = self.group._pending() if watch else None
                if failure:
                    break
                if len(self._text) != searched:      # woken by another console: nothing new here
                    searched = len(self._text)
                    found = self._search(pats, start)
                    if found:
                        i, m = found
                        self._cursor = m.end()
                        return Match(self.name, i, pats[i], m, self._text[start:m.start()],
                                     self.time_at(m.start()))
                if self.eof:
                    raise ConsoleClosed(self._waited(pats, timeout, "console closed (QEMU exited)"))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ConsoleTimeout(self._waited(pats, timeout, f"timed out after {timeout} s"))
                self.cond.wait(left)
        self.group._raise(failure)

    def _search(self, pats: list[re.Pattern], start: int):
        best = None
        for i, p in enumerate(pats):
            m = p.search(self._text, start)
            if m and (best is None or m.start() < best[1].start()):
                best = (i, m)
        return best

    def _waited(self, pats, timeout, why: str) -> str:
        return (f"{self.name}: {why} waiting for {_describe(pats)} (timeout {timeout} s)\n"
                f"--- last {TAIL_LINES} lines of {self.name} ---\n{self.tail()}")

    # -- writing ---------------------------------------------------------------------
    def send(self, s: str | bytes) -> None:
        data = s.encode() if isinstance(s, str) else s
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError as e:
            raise ConsoleClosed(f"{self.name}: cannot send ({e}); QEMU has probably exited") from e

    def sendline(self, s: str = "", pace: int = 0) -> None:
        """Send a line; pace=N sends it N bytes at a time with a short pause between
        (Xen's serial input ring drops what dom0 has not drained yet when it is busy)."""
        data = s + "\n"
        if not pace:
            return self.send(data)
        for i in range(0, len(data), pace):
            self.send(data[i:i + pace])
            time.sleep(0.02)

    def sendcontrol(self, char: str) -> None:
        """Send Ctrl-<char>, e.g. sendcontrol('a') for Xen's console switch."""
        c = char.lower()
        specials = {"@": 0, "`": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31, "?": 127}
        if "a" <= c <= "z":
            code = ord(c) - ord("a") + 1
        elif c in specials:
            code = specials[c]
        else:
            raise ValueError(f"no control character for {char!r}")
        self.send(bytes([code]))

    def close(self) -> None:
        """Stop the reader and close the socket and log (idempotent)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self.sock.close()
        if self._log and not self._thread.is_alive():
            log, self._log = self._log, None
            log.close()
