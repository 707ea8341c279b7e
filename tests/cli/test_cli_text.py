"""Everything the terminal shows is text, never markup: output, reasons, ids and paths appear as written,
in the live table (a real pseudo-terminal), the plain lines, the summary and `status`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.cli_helpers import Pty, parex, write_plan

MARKUP_PLAN = """
    [run]
    retry_backoff = 0.01
    [agents.shell]
    retry_on = ["rate"]
    [[task]]
    id = "build"
    prompt = "echo 'building [x86_64] target :smile:'; echo 'cache at [/tmp/cache] [/red] [bold]x'; exit 3"
    [[task]]
    id = "flaky"
    prompt = "test -e once || { touch once; echo '[/red] rate'; exit 1; }; echo '[/red]'"
    [[task]]
    id = "hopeless"
    prompt = "echo 'rate [/bold] limited [link=x]'; exit 1"
    retries = 1
"""
GAVE_UP = "exited with code 1 after `rate [/bold] limited [link=x]` (gave up after 2 attempts)"
LITERAL = ("building [x86_64] target :smile:", "cache at [/tmp/cache] [/red] [bold]x")


def _literal_in(text: str) -> None:
    for line in LITERAL:
        assert line in text, text
    assert "😄" not in text


def test_plain_lines_and_summary_show_output_as_written(workspace: Path):
    write_plan(workspace, MARKUP_PLAN)
    p = parex("run", "parex.toml", cwd=workspace)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    _literal_in(p.stdout)
    assert "[build] building [x86_64] target :smile:" in p.stdout
    assert "(exited with code 1 after `[/red] rate`); retrying in" in p.stdout
    summary = p.stdout[p.stdout.index("parex run "):]
    _literal_in(summary)  # the failure's tail
    assert summary.count("building [x86_64] target :smile:") == 1  # the tail is shown once, not twice
    assert f"hopeless failed (retries-exhausted): {GAVE_UP}" in summary  # a reason holding output, as written
    status = parex("status", "last", cwd=workspace)
    assert status.returncode == 0, status.stderr
    assert "exited with code 3" in status.stdout and GAVE_UP in status.stdout


def test_the_live_table_shows_output_as_written(workspace: Path):
    write_plan(workspace, MARKUP_PLAN.replace("exit 3", "sleep 1; exit 3"))
    term = Pty("run", "parex.toml", cwd=workspace, columns=160)
    assert term.finish() == 1, term.text
    assert "Traceback" not in term.text, term.text
    assert "cache at [/tmp/cache] [/red] [bold]x" in term.text  # the latest output column, live
    _literal_in(term.text)
    status = parex("status", "last", "--json", cwd=workspace)
    assert status.returncode == 0, status.stderr
    tasks = {t["id"]: t["status"] for t in json.loads(status.stdout)["tasks"]}
    assert tasks == {"build": "failed", "flaky": "succeeded", "hopeless": "failed"}
    assert GAVE_UP in term.text
    listing = parex("status", cwd=workspace)
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr


def test_a_path_with_brackets_is_shown_literally(tmp_path: Path):
    ws = tmp_path / "[bold]ws[red]"
    ws.mkdir()
    write_plan(ws, '[[task]]\nid = "a"\nprompt = "echo [/red]; exit 1"\n')
    p = parex("run", "parex.toml", cwd=ws)
    assert p.returncode == 1, p.stderr
    assert f"{ws}/.parex/runs/" in p.stdout  # the log path, brackets and all
    status = parex("status", cwd=ws)
    assert status.returncode == 0, status.stderr
    assert str(ws) in status.stdout.replace("\n", "") or "[bold]ws[red]" in status.stdout
