"""Where each table and key of a TOML plan was written: tomllib gives values but no positions.

A light line scanner finds table headers (`[run]`, `[[task]]`) and keys (`id = ...`, `run.retries = ...`);
values still come from tomllib, which stays the one judge of TOML syntax.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import tomli as tomllib  # compiled: parses large plans several times faster than tomllib, same API

from parex_lsp.plan.model import SourceRange

_PART = r"""(?:"[^"\n]*"|'[^'\n]*'|[A-Za-z0-9_\-]+)"""
# A table header or a (possibly dotted) key at the start of a line, and the rest of that line.
_ENTRY = re.compile(rf"""^[ \t]*(?:(?P<open>\[\[?)[ \t]*(?P<name>[^\]\n]+?)[ \t]*\]\]?"""
                    rf"""|(?P<key>{_PART}(?:[ \t]*\.[ \t]*{_PART})*)[ \t]*=)[^\n]*""", re.M)
# A value that ends with its line: a scalar, a one-line string, or a one-line array of such strings.
_SIMPLE_VALUE = re.compile(r"""[ \t]*(?:[^"'\[\]{}\n#]*|"[^"\\\n]*"|\[(?:[ \t]*"[^"\\\n\[\]]*"[ \t]*,?)*[ \t]*\])"""
                           r"""[ \t]*(?:\#[^\n]*)?""")
# What a value is made of, for finding its end: strings (single- or multi-line), comments, brackets, newlines.
_TOKEN = re.compile(r'''"""|\'\'\'|"(?:[^"\\\n]|\\.)*"?|'[^'\n]*'?|\#[^\n]*|[\[\]{}\n]''')
_MULTI_LINE_REST = {'"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*"""(?:"{0,2})', re.S),
                    "'''": re.compile(r"(?:[^']|'(?!''))*'''(?:'{0,2})", re.S)}
_SPLIT = re.compile(rf"[ \t]*({_PART})[ \t]*(?:\.|$)")


@functools.lru_cache(maxsize=1024)  # plans repeat the same few keys thousands of times
def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(_unquote(p) for p in _SPLIT.findall(dotted.strip()))


def _unquote(part: str) -> str:
    if part.startswith('"') and "\\" in part:  # escapes: let the TOML parser read the key
        try:
            return next(iter(tomllib.loads(f"{part} = 0")))
        except Exception:
            return part.strip('"')
    return part.strip("\"'")


@dataclass
class Positions:
    """Where each table and key was written: enclosing path → {name → range}. A `[[task]]` table is the
    name `i` (its index) under `("task",)`, and the array itself is placed at its first table."""

    keys: dict[tuple[Any, ...], dict[Any, SourceRange]] = field(default_factory=dict)

    def find(self, path: tuple[Any, ...]) -> SourceRange | None:
        """The range of `path`, else of the nearest enclosing table or key that was written down."""
        while path:
            rng = self.keys.get(path[:-1], {}).get(path[-1])
            if rng is not None:
                return rng
            path = path[:-1]
        return None


def scan(text: str) -> Positions:
    """One regex pass over the text (plans of 10,000 tasks are 60,000 lines): each header and key, with its line."""
    keys: dict[tuple[Any, ...], dict[Any, SourceRange]] = {}
    current: tuple[Any, ...] = ()
    here: dict[Any, SourceRange] = keys.setdefault(current, {})  # the keys of the current table
    counts: dict[tuple[Any, ...], int] = {}
    line_no, counted_to, skip_until = 0, 0, -1
    for m in _ENTRY.finditer(text):
        start = m.start()
        if start < skip_until:
            continue  # inside a multi-line string
        line_no += text.count("\n", counted_to, start)
        counted_to = start
        end_col = len(m.group(0).rstrip())
        opening = m.group("open")
        if opening:
            parts = _parts(m.group("name"))
            rng = SourceRange(line_no, m.start("open") - start, line_no, end_col)
            for n in range(1, len(parts)):  # `[agents.x]` also places `agents`, if nothing did before
                keys.setdefault(parts[:n - 1], {}).setdefault(parts[n - 1], rng)
            if opening == "[[":
                idx = counts.get(parts, 0)
                counts[parts] = idx + 1
                keys.setdefault(parts[:-1], {}).setdefault(parts[-1], rng)  # the array: at its first table
                keys.setdefault(parts, {})[idx] = rng
                current = parts + (idx,)
            else:
                keys.setdefault(parts[:-1], {}).setdefault(parts[-1], rng)
                current = parts
            here = keys.setdefault(current, {})
            continue
        parts = _parts(m.group("key"))
        rng = SourceRange(line_no, m.start("key") - start, line_no, end_col)
        if len(parts) == 1:
            here.setdefault(parts[0], rng)
        else:  # `run.retries = 2` places `run` and `run.retries`
            for n in range(1, len(parts) + 1):
                keys.setdefault(current + parts[:n - 1], {}).setdefault(parts[n - 1], rng)
        # a value may span lines (multi-line strings, arrays): nothing in it is a header or a key
        value_start = text.index("=", m.end("key")) + 1
        if not _SIMPLE_VALUE.fullmatch(text, value_start, m.end()):
            skip_until = value_end(text, value_start)
    return Positions(keys)


def value_end(text: str, i: int) -> int:
    """Where the TOML value starting at offset `i` ends: the end of its line, or of the multi-line string
    or array it opens there."""
    depth = 0
    while True:
        m = _TOKEN.search(text, i)
        if m is None:
            return len(text)
        tok = m.group()
        if tok == "\n":
            if depth <= 0:
                return m.start()
        elif tok in _MULTI_LINE_REST:
            rest = _MULTI_LINE_REST[tok].match(text, m.end())
            if rest is None:
                return len(text)
            i = rest.end()
            continue
        elif tok in ("[", "{"):
            depth += 1
        elif tok in ("]", "}"):
            depth -= 1
        i = m.end()


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
