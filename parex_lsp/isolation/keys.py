"""Lock keys: a task's `files` patterns as workspace-relative posix keys, and when two key sets may overlap.

Keys are literal paths or globs; two sets conflict when some file could be named by both (`keys_conflict`).
Pure functions over paths: no files are locked here (see registry.py and table.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path, PurePosixPath

_GLOB_CHARS = frozenset("*?[")


def _is_glob(text: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(text)


def _escape_error(pattern: str, why: str) -> ValueError:
    return ValueError(f"`files` pattern {pattern!r} {why}")


def lock_keys(workspace: Path, patterns: list[str]) -> frozenset[str]:
    """Normalize `files` patterns to workspace-relative posix keys.

    Literal paths are resolved (symlinks followed) and made relative; an existing directory becomes `dir/**`
    (it locks everything below it). Globs keep their wildcard part; only their literal prefix is resolved.
    Absolute paths are accepted when they lie inside the workspace. Raises ValueError naming a pattern
    that leaves the workspace.
    """
    root = workspace.resolve()
    keys: set[str] = set()
    for pattern in patterns:
        text = pattern.strip().replace("\\", "/")
        if not text:
            raise ValueError("empty `files` pattern")
        parts = [p for p in PurePosixPath(text).parts if p not in (".", "")]
        if text.startswith("/"):
            parts = parts[1:]
            prefix_root = Path("/")
        else:
            prefix_root = root
        if ".." in parts:
            # `..` is only acceptable inside the literal part, where resolving it shows whether it escapes
            first_glob = next((i for i, p in enumerate(parts) if _is_glob(p)), len(parts))
            if ".." in parts[first_glob:]:
                raise _escape_error(pattern, "leaves the workspace through `..` after a wildcard")
        split = next((i for i, p in enumerate(parts) if _is_glob(p)), len(parts))
        literal, wild = parts[:split], parts[split:]
        target = prefix_root.joinpath(*literal).resolve()
        if target != root and root not in target.parents:
            raise _escape_error(pattern, f"leaves the workspace (it names {target})")
        rel = target.relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        if not wild:
            if not rel:
                keys.add("**")  # the whole workspace
            elif target.is_dir():
                keys.add(rel + "/**")
            else:
                keys.add(rel)
            continue
        wild = _collapse_double_star(wild)
        keys.add("/".join([rel, *wild]) if rel else "/".join(wild))
    return frozenset(keys)


def _collapse_double_star(parts: list[str]) -> list[str]:
    out: list[str] = []
    for p in parts:
        if p == "**" and out and out[-1] == "**":
            continue
        out.append(p)
    return out


@dataclass(frozen=True, slots=True)
class _Key:
    text: str
    glob: bool
    segments: tuple[str, ...]
    regex: re.Pattern[str] | None


@lru_cache(maxsize=65536)
def _parse(key: str) -> _Key:
    if not _is_glob(key):
        return _Key(key, False, (), None)
    segments = tuple(key.split("/"))
    return _Key(key, True, segments, re.compile(_glob_regex(segments)))


def _glob_regex(segments: tuple[str, ...]) -> str:
    """`**` is any number of whole segments (zero included); `*`, `?`, `[...]` stay inside one segment."""
    out = ""
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "**":
            out += ".*" if last else "(?:[^/]+/)*"
            continue
        out += _segment_regex(seg) + ("" if last else "/")
    return out + r"\Z"


def _segment_regex(seg: str) -> str:
    out, i = "", 0
    while i < len(seg):
        c = seg[i]
        i += 1
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = seg.find("]", i + 1 if i < len(seg) and seg[i] in "!^" else i)
            if j < 0:
                out += r"\["
                continue
            body = seg[i:j]
            i = j + 1
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out += "[" + body.replace("\\", "\\\\") + "]"
        else:
            out += re.escape(c)
    return out


def _segment_matches(literal: str, pattern: str) -> bool:
    return fnmatchcase(literal, pattern)


def _globs_may_overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Conservative: False only when no path can match both. Segments are compared from both ends
    up to the first `**`; anything that a wildcard segment might match counts as overlap."""

    def diverge(x: str, y: str) -> bool:
        xw, yw = _is_glob(x), _is_glob(y)
        if not xw and not yw:
            return x != y
        if not xw:
            return not _segment_matches(x, y)
        if not yw:
            return not _segment_matches(y, x)
        return False  # two wildcard segments: assume they may meet

    for x, y in zip(a, b):
        if x == "**" or y == "**":
            break
        if diverge(x, y):
            return False
    else:
        return len(a) == len(b)  # neither has `**`: same depth is required
    for x, y in zip(reversed(a), reversed(b)):
        if x == "**" or y == "**":
            return True
        if diverge(x, y):
            return False
    return True


def _pair_conflicts(a: _Key, b: _Key) -> bool:
    if not a.glob and not b.glob:
        return a.text == b.text
    if not a.glob:
        return b.regex.match(a.text) is not None  # type: ignore[union-attr]
    if not b.glob:
        return a.regex.match(b.text) is not None  # type: ignore[union-attr]
    return _globs_may_overlap(a.segments, b.segments)


@lru_cache(maxsize=4096)
def _split(keys: frozenset[str]) -> tuple[frozenset[str], tuple[_Key, ...]]:
    """(literal keys, parsed glob keys) of a key set; cached because the same sets are checked again and again."""
    parsed = [_parse(k) for k in keys]
    return frozenset(k.text for k in parsed if not k.glob), tuple(k for k in parsed if k.glob)


def as_frozen(keys: Iterable[str]) -> frozenset[str]:
    return keys if isinstance(keys, frozenset) else frozenset(keys)


def keys_conflict(a: Iterable[str], b: Iterable[str]) -> bool:
    """True when some key of `a` may name the same file as some key of `b`."""
    return first_conflict(as_frozen(a), as_frozen(b)) is not None


@lru_cache(maxsize=65536)
def first_conflict(a: frozenset[str], b: frozenset[str]) -> str | None:
    """A key of `a` (the smallest, so the answer is stable) that may name a file of `b`, or None."""
    if not a or not b:
        return None
    a_lit, a_glob = _split(a)
    b_lit, b_glob = _split(b)
    if not a_glob and not b_glob:
        common = a_lit & b_lit
        return min(common) if common else None
    hits = [k for k in a_lit & b_lit]
    for x in a_glob:
        if any(_pair_conflicts(x, _parse(y)) for y in b_lit) or any(_pair_conflicts(x, y) for y in b_glob):
            hits.append(x.text)
    for y in b_glob:
        hits.extend(x for x in a_lit if _pair_conflicts(_parse(x), y))
    return min(hits) if hits else None


def covered(key: str, held: frozenset[str]) -> bool:
    """Whether holding `held` already grants `key` (a literal inside a held glob, or a key held as such)."""
    if key in held:
        return True
    k = _parse(key)
    if k.glob:
        return False
    return any(h.regex.match(key) is not None for h in _split(held)[1])  # type: ignore[union-attr]
