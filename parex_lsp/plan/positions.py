"""Where each table and key of a TOML plan was written: tomllib gives values but no positions.

A light line scanner finds table headers (`[run]`, `[[task]]`) and keys (`id = ...`, `run.retries = ...`);
values still come from tomllib, which stays the one judge of TOML syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from parex_lsp.plan.model import SourceRange

_PART = r"""(?:"[^"\n]*"|'[^'\n]*'|[A-Za-z0-9_\-]+)"""
# A table header or a (possibly dotted) key at the start of a line, and the rest of that line.
_ENTRY = re.compile(rf"""^[ \t]*(?:(?P<open>\[\[?)[ \t]*(?P<name>[^\]\n]+?)[ \t]*\]\]?"""
                    rf"""|(?P<key>{_PART}(?:[ \t]*\.[ \t]*{_PART})*)[ \t]*=)[^\n]*""", re.M)
_SPLIT = re.compile(rf"[ \t]*({_PART})[ \t]*(?:\.|$)")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _SPLIT.findall(dotted.strip()))


@dataclass
class Positions:
    """Table path (a `[[task]]` table's path ends with its index) or key path → where it was written."""

    at: dict[tuple, SourceRange] = field(default_factory=dict)
    keys: dict[tuple, dict[str, SourceRange]] = field(default_factory=dict)  # table path → its keys

    def add(self, path: tuple, rng: SourceRange) -> None:
        if path not in self.at:
            self.at[path] = rng
            self.keys.setdefault(path[:-1], {}).setdefault(str(path[-1]), rng)

    def find(self, path: tuple) -> SourceRange | None:
        """The range of `path`, else of the nearest enclosing table or key that was written down."""
        while path:
            rng = self.at.get(path)
            if rng is not None:
                return rng
            path = path[:-1]
        return None


def scan(text: str) -> Positions:
    """One regex pass over the text (plans of 10,000 tasks are 60,000 lines): each header and key, with its line."""
    pos = Positions()
    current: tuple = ()
    counts: dict[tuple, int] = {}
    line_no, counted_to, skip_until = 0, 0, -1
    for m in _ENTRY.finditer(text):
        start = m.start()
        if start < skip_until:
            continue  # inside a multi-line string
        line_no += text.count("\n", counted_to, start)
        counted_to = start
        line = m.group(0)
        end_col = len(line.rstrip())
        if m.group("open"):
            parts = _parts(m.group("name"))
            rng = SourceRange(line_no, m.start("open") - start, line_no, end_col)
            if m.group("open") == "[[":
                idx = counts.get(parts, 0)
                counts[parts] = idx + 1
                pos.add(parts, rng)  # the array itself: its first table
                current = parts + (idx,)
            else:
                current = parts
            pos.add(current, rng)
            continue
        key_path = current + _parts(m.group("key"))
        pos.add(key_path, SourceRange(line_no, m.start("key") - start, line_no, end_col))
        for quote in ('"""', "'''"):
            if quote in line and line.count(quote) % 2 == 1:
                close = text.find(quote, m.end())
                skip_until = len(text) if close < 0 else close + len(quote)
    return pos


def deep_nesting(text: str, limit: int) -> SourceRange | None:
    """Where inline arrays/tables first nest deeper than `limit` (strings and comments skipped), else None."""
    depth = line = col0 = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line, col0 = line + 1, i + 1
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                if c == '"' and text[j] == "\\":
                    j += 1
                elif len(quote) == 1 and text[j] == "\n":
                    break
                j += 1
            line += text.count("\n", i, j)
            nl = text.rfind("\n", i, j)
            col0 = nl + 1 if nl >= 0 else col0
            i = j + len(quote)
            continue
        elif c in "[{":
            depth += 1
            if depth > limit:
                return SourceRange(line, i - col0, line, i - col0 + 1)
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return None
