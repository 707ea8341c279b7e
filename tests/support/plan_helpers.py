"""Helpers for plan tests: problems as `path:line:col: message` lines."""

from __future__ import annotations

from pathlib import Path

from parex_lsp.plan import resolve


def problems(path: Path, text: str, **kw) -> list[str]:
    """The formatted problems of `text` written to `path` and resolved there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return [p.format() for p in resolve(path, **kw).problems]
