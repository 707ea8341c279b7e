"""Aligned plain lines: what `status`, `show` and `--dry-run` print. Nothing is cut or folded at any width
(ids and paths stay whole, to be copied); a line longer than the terminal wraps as any text does."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

Cell = str | Text
GAP = "  "


def aligned(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> list[Text]:
    """The header and rows with every column but the last padded to its widest cell."""
    table = [[Text(h, style="bold") for h in header], *[[c if isinstance(c, Text) else Text(c) for c in r] for r in rows]]
    widths = [max(len(r[i].plain) for r in table) for i in range(len(header))]
    out = []
    for r in table:
        line = Text()
        for i, cell in enumerate(r):
            line.append_text(cell)
            if i < len(r) - 1:
                line.append(" " * (widths[i] - len(cell.plain)) + GAP)
        line.rstrip()
        out.append(line)
    return out


def print_lines(console: Console, lines: Sequence[Text]) -> None:
    for line in lines:
        console.print(line, overflow="ignore", crop=False, no_wrap=True)
