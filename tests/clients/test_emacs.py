"""The Emacs configuration of docs/other-editors.md, in a real headless Emacs with eglot, against
the real parex-lsp.

The configuration is not copied: it is the doc's own ```elisp block, cut out of the doc at test
time, so the doc and what is tested cannot drift apart. The test itself is Emacs Lisp
(tests/clients/emacs/parex_test.el); this wrapper makes a workspace whose plan has a task that
fails, runs `emacs --batch` on it with nothing of the user's Emacs (HOME is a fresh folder) and
the venv's parex-lsp first on PATH, and judges by the exit code and the "ok - ..." lines.

Emacs is Debian's `emacs-nox` (28.2) with `elpa-eglot` (1.9); PAREX_EMACS overrides the binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "other-editors.md"
DRIVER = REPO / "tests" / "clients" / "emacs" / "parex_test.el"

PLAN = """\
# One task that passes, one that fails.
[run]
max_concurrency = 2
default_agent = "shell"
call_agent = "shell"          # the callN: lines of notes.txt are shell commands

[[task]]
id = "good"
prompt = "echo good-task-output"

[[task]]
id = "bad"
prompt = "echo bad-task-output-marker; exit 3"
"""
NOTES = """\
Prompts for the shell agent:

call1: echo call-one-output
call2: echo call-two-marker; exit 4
call3: echo outside-the-region
"""
BAD_LINE = PLAN.splitlines().index('id = "bad"') + 1

EXPECTED_OK = [
    "ok - loaded the Emacs configuration of docs/other-editors.md",
    "ok - parex.toml and *.parex.toml open in parex-plan-mode, other TOML files do not",
    "ok - M-x eglot started ",
    "ok - M-x parex-run: run ",
    f"ok - Flymake error on parex.toml line {BAD_LINE}: parex [exit-code]: bad failed",
    "ok - code actions on the failure: ",
    "ok - M-x parex-show-log bad opened bad.log in another window",
    "ok - workspace/executeCommand parex.run (detach) ran ",
    "ok - M-x parex-run on a region of notes.txt ran call1 and call2 only; call2's failure at line 4",
    "ok - all checks passed",
]


def elisp_blocks(doc: str, heading: str) -> list[str]:
    """The ```elisp blocks of the section of `doc` that starts at the line `heading`."""
    start = doc.index(f"\n{heading}\n")
    end = doc.find("\n## ", start + 1)
    section = doc[start : end if end != -1 else len(doc)]
    return re.findall(r"^```elisp\n(.*?)^```$", section, flags=re.M | re.S)


def doc_block(containing: str) -> str:
    """The one ```elisp block of the doc's Emacs section that contains `containing`."""
    blocks = [b for b in elisp_blocks(DOC.read_text(), "## Emacs (eglot)") if containing in b]
    assert len(blocks) == 1, (
        f"{DOC}: want one elisp block with {containing!r} in '## Emacs (eglot)', found {len(blocks)}"
    )
    return blocks[0]


def _missing(what: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{what}; in CI this test must run")
    pytest.skip(what)


def _emacs() -> str:
    emacs = os.environ.get("PAREX_EMACS") or shutil.which("emacs")
    if not emacs:
        _missing("emacs is not installed (apt-get install -y emacs-nox elpa-eglot)")
    return emacs


def _server() -> Path:
    for candidate in (Path(sys.executable).parent / "parex-lsp", REPO / ".venv" / "bin" / "parex-lsp"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("parex-lsp is not installed next to this Python nor in .venv (pip install -e .)")


def test_doc_blocks_are_found() -> None:
    # Guards the extraction itself: a renamed section or fence would otherwise only show as an
    # Emacs error far from its cause.
    config = doc_block("define-derived-mode parex-plan-mode")
    assert "(defun parex-run" in config and "eglot-server-programs" in config
    assert "eglot-execute-command" in doc_block('"parex.run"')


def test_eglot_config_from_the_doc_in_headless_emacs(tmp_path: Path) -> None:
    emacs = _emacs()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "parex.toml").write_text(PLAN)
    (workspace / "notes.txt").write_text(NOTES)
    config = tmp_path / "parex-config.el"
    config.write_text(doc_block("define-derived-mode parex-plan-mode"))
    command_form = tmp_path / "parex-command-form.el"
    command_form.write_text(doc_block("eglot-execute-command"))
    text_mode = tmp_path / "parex-text-mode.el"
    text_mode.write_text(doc_block("(text-mode . "))
    home = tmp_path / "home"
    home.mkdir()
    server = _server()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMACS", "XDG_"))}
    env.update(
        HOME=str(home),  # no ~/.emacs.d: only Debian's site files and the doc's configuration
        PATH=f"{server.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PAREX_TEST_CONFIG=str(config),
        PAREX_TEST_COMMAND_FORM=str(command_form),
        PAREX_TEST_TEXT_MODE=str(text_mode),
        PAREX_TEST_WORKSPACE=str(workspace),
        PAREX_TEST_SERVER=str(server),
    )
    proc = subprocess.run(
        [emacs, "--batch", "-l", str(DRIVER)],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = f"{emacs}: exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    print(report)
    assert proc.returncode == 0, report
    lines = proc.stdout.splitlines()
    for expected in EXPECTED_OK:
        assert any(line.startswith(expected) for line in lines), f"missing {expected!r}\n{report}"
    assert "FAIL" not in proc.stderr, report
