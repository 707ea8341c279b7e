"""The Neovim plugin never interrupts: Neovim's real screen, in a tmux terminal, never shows a
"Press ENTER" prompt while plans run, fail, are invalid (several problems) or are looked at with
:ParexStatus. Typed as a person would, with tmux send-keys; judged by what the screen shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.clients.test_nvim import HERE, NEOVIMS, _missing, _server_cmd

pytestmark = pytest.mark.nvim

HIT_ENTER = "Press ENTER"


class Screen:
    def __init__(self, name: str) -> None:
        self.name = name

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def text(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], check=True,
                              capture_output=True, text=True).stdout

    def wait_for(self, wanted: str, timeout: float = 60) -> str:
        """Wait until the screen shows `wanted`; fail at once on a hit-enter prompt."""
        end = time.monotonic() + timeout
        while True:
            screen = self.text()
            assert HIT_ENTER not in screen, f"a hit-enter prompt while waiting for {wanted!r}:\n{screen}"
            if wanted in screen:
                return screen
            assert time.monotonic() < end, f"the screen never showed {wanted!r}:\n{screen}"
            time.sleep(0.2)

    def stays_clear(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            screen = self.text()
            assert HIT_ENTER not in screen, f"a hit-enter prompt:\n{screen}"
            time.sleep(0.2)


@pytest.mark.parametrize("which", sorted(NEOVIMS))
def test_no_hit_enter_prompt(tmp_path: Path, which: str) -> None:
    nvim = NEOVIMS[which]()
    if not shutil.which("tmux"):
        _missing("tmux is not installed (apt-get install -y tmux)")
    workspace = tmp_path / "workspace"
    shutil.copytree(HERE / "workspace", workspace)
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (tmp_path / var.lower()).mkdir()
        env[var] = str(tmp_path / var.lower())
    env["PAREX_LSP_CMD"] = _server_cmd()
    env["TERM"] = "xterm-256color"
    name = f"parex-tui-{uuid.uuid4().hex[:8]}"
    # A narrow screen: the run summary and the problem list are longer than one line of it.
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "70", "-y", "20", "-c", str(workspace),
                    *[arg for k, v in env.items() if k.startswith(("XDG_", "PAREX_")) for arg in ("-e", f"{k}={v}")],
                    nvim, "-i", "NONE", "-u", str(HERE / "tui_init.lua"), "parex.toml"], check=True, env=env)
    screen = Screen(name)
    try:
        screen.wait_for("parex.toml")
        screen.keys(":ParexRun broken.parex.toml", "Enter")
        screen.wait_for("plan not run")
        screen.stays_clear(1.0)
        screen.keys(":ParexRun", "Enter")
        # The outcome comes with the RunResult, a moment after the statusline heard runFinished.
        shown = screen.wait_for("run failed: 1 succeeded, 1 failed")
        assert "parex: failed 1/2" in shown, shown
        screen.stays_clear(1.0)
        screen.keys(":ParexStatus", "Enter")
        shown = screen.wait_for("parex://status")
        assert "## live runs (server)" in shown, shown
        screen.stays_clear(1.0)
    finally:
        print(screen.text())
        subprocess.run(["tmux", "kill-session", "-t", name], check=False)
