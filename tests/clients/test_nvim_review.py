"""The Neovim review commands (:ParexDiff, :ParexAccept, :ParexReject, :ParexRetry) in a real headless Neovim
against the real parex-lsp, on a git workspace whose plan is in review mode."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.clients.test_nvim import NEOVIMS, _server_cmd
from tests.support.nvim_helpers import assert_passed, run_headless

pytestmark = pytest.mark.nvim

PLAN = """
[run]
isolation = "worktree"
merge = "review"

[[task]]
id = "keep"
prompt = "echo kept > keep.txt"

[[task]]
id = "drop"
prompt = "echo dropped > drop.txt"

[[task]]
id = "again"
prompt = "echo \\"feedback: ${PAREX_FEEDBACK:-none}\\" >> again.txt"
"""


@pytest.mark.parametrize("which", ["newest"])
def test_review_commands_in_headless_neovim(tmp_path: Path, which: str) -> None:
    nvim = NEOVIMS[which]()
    ws = tmp_path / "ws"
    ws.mkdir()
    git = ["git", "-c", "user.name=d", "-c", "user.email=d@x"]
    (ws / "parex.toml").write_text(textwrap.dedent(PLAN))
    (ws / ".gitignore").write_text("parex.toml\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=ws, check=True)
    subprocess.run(["git", "add", "-A"], cwd=ws, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], cwd=ws, check=True)
    proc = run_headless(nvim, tmp_path, "require('parex_review_test').run()", ws,
                        {"PAREX_TEST_WORKSPACE": str(ws), "PAREX_LSP_CMD": _server_cmd()})
    assert_passed(proc, ["ok - :ParexDiff keep", "ok - :ParexAccept keep", "ok - :ParexReject drop",
                         "ok - :ParexRetry again passed its feedback"])
