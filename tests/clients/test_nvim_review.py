"""The Neovim review commands (:ParexDiff, :ParexAccept, :ParexReject, :ParexRetry) in a real headless Neovim
against the real parex-lsp, on a git workspace whose plan is in review mode."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.clients.test_nvim import HERE, NEOVIMS, _server_cmd

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
    env = dict(os.environ, PAREX_TEST_WORKSPACE=str(ws), PAREX_LSP_CMD=_server_cmd())
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (tmp_path / var.lower()).mkdir()
        env[var] = str(tmp_path / var.lower())
    proc = subprocess.run([nvim, "--headless", "-i", "NONE", "-u", str(HERE / "minimal_init.lua"), "-c",
                           "lua require('parex_review_test').run()"], cwd=ws, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)
    report = f"exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, report
    for line in ("ok - :ParexDiff keep", "ok - :ParexAccept keep", "ok - :ParexReject drop",
                 "ok - :ParexRetry again passed its feedback", "ok - all checks passed"):
        assert line in proc.stdout, report
