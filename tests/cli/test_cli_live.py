"""The live view on a real terminal (a pseudo-terminal read by a VT100 emulator, scrollback included): it fits
the screen whatever the task count, leaves no copies of itself behind, shows progress and an ETA learned from
earlier runs; a big run's summary names the slowest tasks and the critical path."""

from __future__ import annotations

import re
from pathlib import Path

import pyte

from tests.cli.cli_helpers import Pty, write_plan

COLUMNS, ROWS = 110, 24


def _screen_and_scrollback(raw: bytes) -> list[str]:
    screen = pyte.HistoryScreen(COLUMNS, ROWS, history=100_000)
    stream = pyte.ByteStream(screen)
    stream.feed(raw.replace(b"\n", b"\r\n"))  # the pty's output post-processing (onlcr), as a terminal sees it
    def text(line) -> str:
        return "".join(line[x].data for x in range(COLUMNS)).rstrip()
    return [text(line) for line in screen.history.top] + [line.rstrip() for line in screen.display]


def _big_plan(ws: Path, n: int) -> None:
    tasks = "".join(f'[[task]]\nid = "t{i:03d}"\nprompt = "sleep 0.0{i % 5}"\n'
                    + (f'depends_on = ["t{i - 40:03d}"]\n' if i >= 40 else "") for i in range(n))
    write_plan(ws, "[run]\nmax_concurrency = 8\n" + tasks)


def test_the_live_table_fits_the_terminal_and_leaves_nothing_behind(workspace: Path):
    _big_plan(workspace, 120)
    term = Pty("run", "parex.toml", cwd=workspace, columns=COLUMNS, rows=ROWS)
    assert term.finish() == 0, term.text
    assert "more:" in term.text  # rows that did not fit were counted, not drawn
    lines = _screen_and_scrollback(term.raw)
    leftovers = [ln for ln in lines if "latest output" in ln or " done ·" in ln or re.search(r"│ t\d{3} ", ln)]
    assert leftovers == [], "\n".join(lines)  # the live view is gone: no partial copies in the scrollback
    end = "\n".join(lines)
    assert "120 succeeded" in end and "slowest: t" in end
    assert re.search(r"critical path: t0\d\d → t\d{3} → t\d{3} \(", end), end


def test_progress_shows_an_eta_once_durations_are_known(workspace: Path):
    write_plan(workspace, "[run]\nmax_concurrency = 2\n" + "".join(
        f'[[task]]\nid = "s{i}"\nprompt = "sleep 0.6"\n' for i in range(4)))
    first = Pty("run", "parex.toml", cwd=workspace, columns=COLUMNS, rows=ROWS)
    assert first.finish() == 0
    assert re.search(r"\d/4 done", first.text) and "ETA" not in first.text  # nothing learned yet
    second = Pty("run", "parex.toml", cwd=workspace, columns=COLUMNS, rows=ROWS)
    assert second.finish() == 0
    assert re.search(r"\d/4 done · 2 running · \ds · ETA [1-2]s", second.text), second.text
