"""`context` files: read once per run, identical at the start of every task's first request (checked at the
local stand-in), a preamble for CLI agents, and a clear failure when one is missing."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from tests.cli.cli_helpers import parex
from tests.support.fake_openai import FakeOpenAI, Received, Reply, text

ARCHITECTURE = "# Architecture\nThe API lives in api/.\n"


def _plan(ws: Path, base_url: str, tasks: str) -> None:
    (ws / "docs").mkdir(exist_ok=True)
    (ws / "docs" / "architecture.md").write_text(ARCHITECTURE)
    (ws / "docs" / "style.md").write_text("Four spaces.\n")
    (ws / "record.py").write_text("import os, sys\nopen(os.environ['PAREX_TASK_ID'] + '.prompt', 'w').write(sys.argv[1])\n")
    record = json.dumps([sys.executable, "record.py", "{prompt}"])
    (ws / "parex.toml").write_text(textwrap.dedent(f'''\
        [run]
        context = ["docs/architecture.md"]

        [agents.model]
        kind = "openai"
        base_url = "{base_url}"
        model = "fake"

        [agents.cli]
        command = {record}
        ''') + textwrap.dedent(tasks))


def test_every_task_starts_with_the_same_context(workspace: Path) -> None:
    def answer(req: Received) -> Reply:
        return text("done")

    with FakeOpenAI(answer) as srv:
        _plan(workspace, srv.base_url, '''
            [[task]]
            id = "a"
            prompt = "task a"
            agent = "model"

            [[task]]
            id = "b"
            prompt = "task b"
            agent = "model"

            [[task]]
            id = "c"
            prompt = "task c"
            agent = "model"
            context = ["docs/style.md"]

            [[task]]
            id = "d"
            prompt = "task d"
            agent = "cli"
            ''')
        done = parex("run", "-q", cwd=workspace)
        received = {r.prompt: r.messages for r in srv.received}
    assert done.returncode == 0, done.stderr
    assert set(received) == {"task a", "task b", "task c"}
    a, b, c = received["task a"], received["task b"], received["task c"]
    assert a[0] == b[0] and a[0]["role"] == "system"  # one leading message, byte for byte the same
    assert ARCHITECTURE.rstrip() in a[0]["content"]
    assert a[1] == {"role": "user", "content": "task a"}
    assert c[0]["content"].startswith(a[0]["content"]) and "Four spaces." in c[0]["content"]
    assert "Four spaces." not in a[0]["content"]
    preamble = (workspace / "d.prompt").read_text()
    assert ARCHITECTURE.rstrip() in preamble and preamble.endswith("\n\ntask d")
    assert a[0]["content"].endswith(preamble[: -len("\n\ntask d")])  # the same text for CLI agents


def test_a_missing_context_file_fails_its_task_naming_the_file(workspace: Path) -> None:
    with FakeOpenAI([]) as srv:
        _plan(workspace, srv.base_url, '''
            [[task]]
            id = "a"
            prompt = "task a"
            agent = "model"
            context = ["docs/missing.md"]
            ''')
        done = parex("run", cwd=workspace)
        assert srv.received == []
    assert done.returncode == 1
    assert "`context` file docs/missing.md does not exist" in done.stdout + done.stderr


def test_a_context_path_leaving_the_workspace_is_a_plan_problem(workspace: Path) -> None:
    with FakeOpenAI([]) as srv:
        _plan(workspace, srv.base_url, '''
            [[task]]
            id = "a"
            prompt = "task a"
            agent = "model"
            context = ["../notes.md"]
            ''')
        done = parex("run", cwd=workspace)
    assert done.returncode == 2
    line = next(n for n, text in enumerate((workspace / "parex.toml").read_text().splitlines(), 1)
                if "../notes.md" in text)
    assert f"parex.toml:{line}:1: task `a`: `context` pattern '../notes.md' leaves the workspace" in done.stderr


def test_context_is_read_once_per_run(workspace: Path) -> None:
    with FakeOpenAI(lambda req: text("done")) as srv:
        _plan(workspace, srv.base_url, '''
            [[task]]
            id = "a"
            prompt = "task a"
            agent = "model"

            [[task]]
            id = "change"
            prompt = "echo EDITED-BY-TASK >> docs/architecture.md"
            agent = "shell"
            depends_on = ["a"]

            [[task]]
            id = "b"
            prompt = "task b"
            agent = "model"
            depends_on = ["change"]
            ''')
        done = parex("run", "-q", cwd=workspace)
        received = {r.prompt: r.messages for r in srv.received}
    assert done.returncode == 0, done.stderr
    assert "EDITED-BY-TASK" in (workspace / "docs" / "architecture.md").read_text()
    assert received["task a"][0] == received["task b"][0]  # as the file was when the run first read it
    assert "EDITED-BY-TASK" not in received["task b"][0]["content"]
