"""Shell completion scripts come from the argument parser itself (shtab): every subcommand and option is there."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.cli_helpers import parex


def _complete_in_bash(script: str, words: list[str], cwd: Path) -> list[str]:
    """What bash offers at the end of `words`, through the generated completion function."""
    line = " ".join(words)
    program = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
               f"COMP_POINT=${{#COMP_LINE}}\n_shtab_parex_lsp parex-lsp '{words[-1]}' '{words[-2]}'\n"
               'printf "%s\\n" "${COMPREPLY[@]}"\n')
    p = subprocess.run(["bash", "-c", program], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return [w.strip() for w in p.stdout.splitlines() if w.strip()]


def test_bash_completes_subcommands_options_and_plan_files(workspace: Path):
    p = parex("completion", "bash", cwd=workspace)
    assert p.returncode == 0, p.stderr
    script = p.stdout
    assert set(_complete_in_bash(script, ["parex-lsp", ""], workspace)) >= {
        "run", "status", "log", "show", "cancel", "completion"}
    assert _complete_in_bash(script, ["parex-lsp", "run", "--max-c"], workspace) == ["--max-concurrency"]
    assert "--dry-run" in _complete_in_bash(script, ["parex-lsp", "run", "--"], workspace)
    (workspace / "api.parex.toml").write_text("")
    assert "api.parex.toml" in _complete_in_bash(script, ["parex-lsp", "run", "api"], workspace)


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_subcommand(workspace: Path, shell):
    p = parex("completion", shell, cwd=workspace)
    assert p.returncode == 0, p.stderr
    for word in ("run", "status", "log", "show", "cancel", "--max-concurrency", "--dry-run", "--junit"):
        assert word.lstrip("-") in p.stdout, word  # fish writes `-l dry-run`
    assert parex("completion", "powershell-7", cwd=workspace).returncode == 2


def test_help_lists_the_exit_codes(workspace: Path):
    for args in (["--help"], ["run", "--help"]):
        p = parex(*args, cwd=workspace)
        assert p.returncode == 0
        text = " ".join(p.stdout.split())
        assert "exit codes: 0 all tasks succeeded; 1 some failed, were skipped or rejected; 2 invalid plan" in text, text
        assert "3 tasks wait for review" in text, text
        assert "130 cancelled (Ctrl-C); 128+N stopped by signal N" in text
