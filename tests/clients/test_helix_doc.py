"""The Helix setup of docs/other-editors.md, as far as it can be checked without Helix.

Helix does not install on this project's machines (no Debian package, no PyPI or npm package
ships it, its releases are web downloads), so nothing here runs Helix. What is checked: the doc's
TOML blocks parse and start `parex-lsp --stdio` for TOML and Markdown, and its command lines —
expanded the way Helix 25.07 expands the arguments of `:lsp-workspace-command` (the `%{...}`
variables, `%sh{...}` through `sh -c`, then the rest of the line read as a stream of JSON values)
— give requests that the real parex-lsp accepts and runs as intended. `expand` mirrors
`expand_inner` and `Tokenizer::parse_percent_token` of Helix 25.07 (helix-view/src/expansion.rs,
helix-core/src/command_line.rs) for the expansions the doc uses.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_lsp
import tomli
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.support.lsp_helpers import SERVER, initialize, make_client, request

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "other-editors.md"
COMMAND = ":lsp-workspace-command parex.run "

PLAN = """\
[run]
default_agent = "shell"
call_agent = "shell"

[[task]]
id = "good"
prompt = "echo good"

[[task]]
id = "bad"
prompt = "exit 3"
"""

NOTES = """\
# Notes

call1: echo one
call2: exit 4
call3: echo outside-the-selection
"""


def helix_section() -> str:
    doc = DOC.read_text()
    start = doc.index("\n## Helix\n")
    return doc[start : doc.index("\n## ", start + 1)]


def fenced(lang: str) -> list[str]:
    """The fenced blocks of the Helix section whose info string is `lang` ("" for a bare fence)."""
    blocks: list[str] = []
    current: list[str] | None = None
    info = ""
    for line in helix_section().splitlines():
        if current is None and line.startswith("```"):
            current, info = [], line[3:].strip()
        elif current is not None and line == "```":
            if info == lang:
                blocks.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return blocks


@dataclass
class Editor:
    """What Helix's expansions read: its working directory, the file, the primary selection."""

    cwd: Path
    buffer_name: str
    selection_line_start: int = 1  # one-based, as Helix gives them
    selection_line_end: int = 1


def _balanced(text: str, start: int, open_: str, close: str) -> int:
    """Index just past the `close` matching the `open_` at `start`."""
    depth = 0
    for i in range(start, len(text)):
        depth += {open_: 1, close: -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    raise AssertionError(f"unterminated expansion in {text!r}")


def expand(text: str, ed: Editor) -> str:
    """Helix 25.07's expand_inner, for variables and %sh{...} with {} delimiters."""
    out, i = [], 0
    while (j := text.find("%", i)) != -1:
        out.append(text[i:j])
        if text.startswith("%%", j):
            out.append("%")
            i = j + 2
            continue
        kind = re.match(r"[a-z]*", text[j + 1 :]).group()  # type: ignore[union-attr]
        brace = j + 1 + len(kind)
        assert text[brace] == "{", f"the doc uses {{}} delimiters only: {text[j:]!r}"
        end = _balanced(text, brace, "{", "}")
        content = text[brace + 1 : end - 1]
        if kind == "":
            # Helix 25.07 refuses a variable it does not have ("unknown variable"), and so does this.
            assert content in Editor.__dataclass_fields__ and content != "cwd", f"unknown variable {content!r}"
            out.append(str(getattr(ed, content)))
        elif kind == "sh":
            proc = subprocess.run(["sh", "-c", expand(content, ed)], cwd=ed.cwd, capture_output=True, text=True)
            assert not proc.stderr, f"%sh{{{content}}} wrote to stderr: {proc.stderr}"
            out.append(proc.stdout.removesuffix("\n").removesuffix("\r"))
        else:
            raise AssertionError(f"expansion %{kind}{{...}} is not one the doc is known to use")
        i = end
    out.append(text[i:])
    return "".join(out)


def workspace_command(line: str, ed: Editor) -> types.ExecuteCommandParams:
    """The workspace/executeCommand Helix sends for a `:lsp-workspace-command` line."""
    assert line.startswith(COMMAND), line
    raw = expand(line.removeprefix(COMMAND).strip(), ed)
    decoder, args, pos = json.JSONDecoder(), [], 0  # serde_json's stream of values
    while pos < len(raw):
        value, pos = decoder.raw_decode(raw, pos)
        args.append(value)
        pos = len(raw) - len(raw[pos:].lstrip())
    return types.ExecuteCommandParams(command="parex.run", arguments=args)


def key_bindings() -> dict[str, Any]:
    (config,) = [block for block in fenced("toml") if "[keys." in block]
    keys: dict[str, Any] = tomli.loads(config)["keys"]
    return keys


def test_languages_toml_starts_parex_lsp_for_toml_and_markdown() -> None:
    (languages,) = [block for block in fenced("toml") if "[language-server.parex]" in block]
    parsed = tomli.loads(languages)
    assert parsed["language-server"]["parex"] == {"command": "parex-lsp", "args": ["--stdio"]}
    by_name = {lang["name"]: lang for lang in parsed["language"]}
    assert "parex" in by_name["toml"]["language-servers"]
    assert "parex" in by_name["markdown"]["language-servers"]


def test_key_binding_runs_the_same_command_as_the_documented_line() -> None:
    (line,) = [ln for block in fenced("") for ln in block.splitlines() if ln.startswith(COMMAND)]
    assert key_bindings()["normal"]["space"]["x"]["r"] == line


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, client_factory=make_client))
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    yield
    await lsp_client.shutdown_session()


async def test_run_binding_runs_the_plan_of_the_current_file(client: LanguageClient, tmp_path: Path) -> None:
    (tmp_path / "parex.toml").write_text(PLAN)
    await initialize(client, tmp_path)
    params = workspace_command(key_bindings()["normal"]["space"]["x"]["r"], Editor(tmp_path, "parex.toml"))
    assert params.arguments == [{"plan": {"uri": (tmp_path / "parex.toml").resolve().as_uri()}}]
    result = await request(client, "workspace/executeCommand", params)
    assert result["status"] == "failed"
    assert {t["id"]: t["status"] for t in result["tasks"]} == {"good": "succeeded", "bad": "failed"}


async def test_selection_binding_runs_the_selected_call_lines(client: LanguageClient, tmp_path: Path) -> None:
    (tmp_path / "parex.toml").write_text(PLAN)
    (tmp_path / "notes.md").write_text(NOTES)
    await initialize(client, tmp_path)
    lines = NOTES.splitlines()
    ed = Editor(tmp_path, "notes.md", lines.index("call1: echo one") + 1, lines.index("call2: exit 4") + 1)
    result = await request(
        client, "workspace/executeCommand", workspace_command(key_bindings()["select"]["space"]["x"]["c"], ed)
    )
    assert result["status"] == "failed"
    assert {t["id"]: t["status"] for t in result["tasks"]} == {"call1": "succeeded", "call2": "failed"}
