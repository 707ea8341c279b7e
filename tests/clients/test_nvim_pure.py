"""The Neovim plugin's pure modules (parex.runs, the reducer over parex/taskEvent; parex.calls, the
callN: line detection checked against tests/cases/call_lines.json) in a plain Lua interpreter.

The test is Lua (tests/clients/lua/test_pure.lua); this wrapper runs it with Debian's `luajit`
(or `lua5.1`) and judges by its exit code and its "N passed, N failed" line.
Env: PAREX_LUA (the interpreter).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "clients" / "lua" / "test_pure.lua"


def _lua() -> str:
    for name in (os.environ.get("PAREX_LUA"), "luajit", "lua5.1"):
        if name and (found := shutil.which(name)):
            return found
    if os.environ.get("CI"):
        pytest.fail("no Lua interpreter (apt-get install -y luajit); in CI this test must run")
    pytest.skip("no Lua interpreter (apt-get install -y luajit)")


def test_pure_lua_modules() -> None:
    proc = subprocess.run([_lua(), str(SCRIPT), str(REPO)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    report = f"exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    print(report)
    counts = re.search(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert counts, f"no summary line\n{report}"
    passed, failed = int(counts.group(1)), int(counts.group(2))
    assert proc.returncode == 0 and failed == 0, report
    # Every shared callN: case ran, and the reducer's own tests with them.
    assert passed >= 20, report
