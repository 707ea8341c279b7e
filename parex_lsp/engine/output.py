"""A task's output: every byte to its log file, complete lines to `output` events, a bounded tail in memory.

Memory stays bounded however much an agent prints: the log gets everything, memory keeps the last
lines (for the failure message) and at most one partial line. The log is the only full copy (the journal keeps
each event's `last` line): it is flushed after every chunk, so `parex-lsp log -f` can follow the file.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from parex_lsp.contract import Output

TAIL_LINES = 20
MAX_PARTIAL = 64 * 1024  # a "line" longer than this is emitted in pieces


def compile_patterns(patterns: list[str]) -> re.Pattern[str] | None:
    """`retry_on` entries are case-insensitive regular expressions; one that does not compile is taken literally."""
    parts = []
    for p in patterns:
        try:
            re.compile(p)
            parts.append(f"(?:{p})")
        except re.error:
            parts.append(re.escape(p))
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


class TaskOutput:
    def __init__(self, log_path: Path, emit: Callable[[Output], None],
                 retry_on: re.Pattern[str] | None = None, tail_lines: int = TAIL_LINES,
                 scrub: Callable[[str], str] | None = None):
        self.log_path = log_path
        self._log: IO[str] | None = None  # opened at the first output: most short tasks print little
        self._emit = emit
        self._retry_on = retry_on
        self._scrub = scrub  # hides secrets (parex_lsp.redact) in what reaches the log file
        self._partial = ""
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.transient_match: str | None = None  # the first output line that matched `retry_on`

    def write(self, text: str) -> None:
        """Log `text` and emit the complete lines it finishes."""
        self.log(text)
        self.show(text)

    def log(self, text: str) -> None:
        """To the log file only (e.g. an agent's raw JSON events, shown parsed)."""
        if self._log is None:
            self._log = self.log_path.open("a", encoding="utf-8", errors="replace")
        self._log.write(self._scrub(text) if self._scrub else text)
        self._log.flush()  # before the chunk's event: a follower of the log never lags the journal

    def show(self, text: str) -> None:
        """To events and the tail only; the lines it finishes are emitted."""
        if not text:
            return
        text = self._partial + text
        cut = text.rfind("\n")
        if cut < 0:
            self._partial = text
            if len(text) <= MAX_PARTIAL:
                return
            cut = len(text) - 1  # an overlong line: emit what we have
        self._partial = text[cut + 1:]
        self._lines(text[:cut + 1])

    def mark(self, text: str) -> None:
        """A line from parex itself (attempt banners, setup), logged and emitted like output."""
        self.flush()
        self.write(f"[parex] {text}\n")

    def flush(self) -> None:
        if self._partial:
            rest, self._partial = self._partial, ""
            self._lines(rest + "\n")
        if self._log is not None:
            self._log.flush()

    def close(self, keep_empty: bool = False) -> None:
        """`keep_empty`: create the log even if nothing was printed (a failure's log is linked from its
        diagnostic). Otherwise a silent task has no log file: creating thousands of empty files costs more
        than the tasks, and readers take a missing log as an empty one."""
        self.flush()
        if self._log is not None:
            self._log.close()
        elif keep_empty:
            self.log_path.touch()

    @property
    def last_line(self) -> str:
        return self.tail[-1] if self.tail else ""

    def _lines(self, chunk: str) -> None:
        lines = chunk.splitlines()
        self.tail.extend(lines)
        if self._retry_on is not None and self.transient_match is None:
            m = self._retry_on.search(chunk)
            if m:
                start = chunk.rfind("\n", 0, m.start()) + 1
                end = chunk.find("\n", m.end())
                self.transient_match = chunk[start:end if end >= 0 else None].strip()
        last = next((ln for ln in reversed(lines) if ln.strip()), "")
        self._emit(Output(chunk, last))
