"""Running a Lua test in a real headless Neovim with nothing of the user's configuration, and judging it by the
"ok - ..." lines it printed (tests/clients/nvim/lua/parex_headless.lua prints them)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MINIMAL_INIT = REPO / "tests" / "clients" / "nvim" / "minimal_init.lua"


def run_headless(nvim: str, tmp_path: Path, lua: str, cwd: Path, env: dict[str, str],
                 timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`nvim --headless -u minimal_init.lua -c "lua <lua>"` in cwd, with `env` added and XDG folders of its own."""
    full = dict(os.environ, **env)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = tmp_path / var.lower()
        path.mkdir(exist_ok=True)
        full[var] = str(path)
    full.pop("NVIM_APPNAME", None)
    full.pop("VIMINIT", None)
    return subprocess.run([nvim, "--headless", "-i", "NONE", "-u", str(MINIMAL_INIT), "-c", f"lua {lua}"], cwd=cwd,
                          env=full, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def assert_passed(proc: subprocess.CompletedProcess[str], expected: list[str]) -> None:
    """Exit code 0, and a line starting with each of `expected`, then "ok - all checks passed"."""
    report = f"exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    print(report)
    assert proc.returncode == 0, report
    lines = proc.stdout.splitlines()
    for want in [*expected, "ok - all checks passed"]:
        assert any(line.startswith(want) for line in lines), f"missing {want!r}\n{report}"
