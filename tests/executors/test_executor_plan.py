"""The executor's plan fields, CLI flags and request fields: what is refused, where, and why; and that a default
(local) run never loads Ray."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parex_lsp.engine import Run, RunOptions
from parex_lsp.engine.selection import RunError
from parex_lsp.executors.ray.driver import ray_options
from parex_lsp.lsp.params import run_request
from parex_lsp.plan import plan_from_text
from parex_lsp.plan.resources import UNITS, ResourceError, parse_resources, parse_size
from tests.support.plan_helpers import problems
from tests.support.ray_cluster import repository


def test_ray_with_a_shared_workspace_is_a_problem_at_the_isolation_line(tmp_path: Path):
    found = problems(tmp_path / "parex.toml", textwrap.dedent("""\
        [run]
        executor = "ray"
        isolation = "none"

        [[task]]
        id = "a"
        prompt = "echo a"
    """))
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'parex.toml'}:3:1: "), found
    assert 'executor = "ray"' in found[0] and 'isolation = "none"' in found[0] and "worktree" in found[0]


def test_copy_files_under_ray_are_no_problem_but_an_escaping_pattern_still_is(tmp_path: Path):
    body = '[run]\nexecutor = "ray"\ncopy_files = [".env", "config/*.toml"]\n[[task]]\nid = "a"\nprompt = "echo a"\n'
    assert problems(tmp_path / "parex.toml", body) == []
    found = problems(tmp_path / "parex.toml", body.replace('".env"', '"../.env"'))
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'parex.toml'}:3:1: "), found
    assert "`copy_files` pattern '../.env' leaves the workspace through `..`" in found[0], found


def test_under_ray_worktree_isolation_is_the_default(tmp_path: Path):
    plan = plan_from_text('[run]\nexecutor = "ray"\n[[task]]\nid = "a"\nprompt = "echo a"\n',
                          str(tmp_path / "parex.toml"), tmp_path)
    assert plan.run.isolation == "worktree" and plan.run.ray_address == "auto"


@pytest.mark.parametrize(("value", "message"), [
    ('{ memory = "2 parsecs" }', "`resources.memory` must be a size such as \"2GB\""),
    ('{ memory = "-1GB" }', "`resources.memory` must be a size"),
    ("{ memory = 0 }", "`resources.memory` must be more than 0 bytes"),
    ('{ CPU = "two" }', "`resources.CPU` must be a number (only `memory` takes a unit)"),
    ("{ CPU = -1 }", "`resources.CPU` must be between 0 and"),
    ('"4 cpus"', "`resources` must be a table such as"),
])
def test_bad_resources_are_problems_at_their_line(tmp_path: Path, value: str, message: str):
    found = problems(tmp_path / "parex.toml", f'[agents.big]\nkind = "shell"\nresources = {value}\n'
                                              '[[task]]\nid = "a"\nagent = "big"\nprompt = "echo a"\n')
    assert len(found) == 1 and ":3:" in found[0] and message in found[0], found


def test_resources_become_ray_requests(tmp_path: Path):
    plan = plan_from_text('[agents.big]\nkind = "shell"\nresources = { CPU = 2, GPU = 0.5, memory = "1.5GiB", '
                          'node_a = 1 }\n[[task]]\nid = "a"\nagent = "big"\nprompt = "echo a"\n',
                          str(tmp_path / "parex.toml"), tmp_path)
    assert ray_options(plan.agents["big"]) == {"num_cpus": 2, "num_gpus": 0.5, "memory": 1610612736,
                                               "resources": {"node_a": 1}}
    assert parse_resources({"memory": "2GB"}) == {"memory": 2e9}
    assert parse_resources({"memory": 512}) == {"memory": 512}
    with pytest.raises(ResourceError):
        parse_resources({"memory": True})


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(sorted(UNITS)), st.booleans(), st.booleans())
def test_a_size_is_its_number_times_its_unit(n: int, unit: str, spaced: bool, upper: bool):
    """Units in any case, with or without a space: `memory` requests exactly what was written."""
    text = f"{n}{' ' if spaced else ''}{unit.upper() if upper else unit}"
    assert parse_size(text, "memory") == float(n * UNITS[unit.lower()])


def test_env_passthrough_takes_variable_names(tmp_path: Path):
    found = problems(tmp_path / "parex.toml", '[run]\nexecutor = "ray"\nenv_passthrough = ["OPENAI_API_KEY", '
                                              '"A=B"]\n[[task]]\nid = "a"\nprompt = "echo a"\n')
    assert len(found) == 1 and ":3:" in found[0] and "'A=B' is not an environment variable name" in found[0]


def test_run_request_fields():
    req = run_request({"plan": {"uri": "file:///w/parex.toml"}, "executor": "ray", "rayAddress": "ray://h:10001"})
    assert (req.executor, req.ray_address) == ("ray", "ray://h:10001")
    with pytest.raises(Exception, match="`executor` must be one of 'local', 'ray'"):
        run_request({"plan": {"uri": "file:///w/parex.toml"}, "executor": "slurm"})
    with pytest.raises(Exception, match="`rayAddress` must be a non-empty string"):
        run_request({"plan": {"uri": "file:///w/parex.toml"}, "rayAddress": ""})


async def test_an_override_to_ray_with_a_shared_workspace_is_refused(tmp_path: Path):
    plan = plan_from_text('[run]\nisolation = "none"\n[[task]]\nid = "a"\nprompt = "echo a"\n',
                          str(tmp_path / "parex.toml"), tmp_path)
    with pytest.raises(RunError, match='executor "ray" runs each attempt in a git worktree'):
        await Run.prepare(plan, RunOptions(executor="ray"))


def test_cli_executor_flag_on_an_unreachable_cluster_says_so(tmp_path: Path):
    ws = repository(tmp_path / "ws", {"parex.toml": '[[task]]\nid = "a"\nprompt = "echo a"\n'})
    p = subprocess.run([sys.executable, "-m", "parex_lsp", "run", "parex.toml", "--executor", "ray",
                        "--ray-address", "127.0.0.1:1"], cwd=ws, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "cannot connect to the Ray cluster at '127.0.0.1:1'" in p.stderr, p.stderr


def test_copy_files_too_big_to_send_to_every_node_refuse_the_run_before_it_connects(tmp_path: Path):
    toml = '[run]\ncopy_files = ["deps"]\n[[task]]\nid = "a"\nprompt = "echo a"\n'
    ws = repository(tmp_path / "ws", {"parex.toml": toml})
    (ws / "deps").mkdir()
    with (ws / "deps" / "big.bin").open("wb") as f:
        f.truncate(65 * 1024 * 1024)  # sparse: its size is what counts
    p = subprocess.run([sys.executable, "-m", "parex_lsp", "run", "parex.toml", "--executor", "ray",
                        "--ray-address", "127.0.0.1:1"], cwd=ws, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "[run] copy_files match 68.2 MB (deps (68.2 MB))" in p.stderr and "at most 64 MiB" in p.stderr, p.stderr
    assert "cannot connect" not in p.stderr


def test_a_local_run_never_imports_ray(tmp_path: Path):
    ws = repository(tmp_path / "ws", {"parex.toml": '[[task]]\nid = "a"\nprompt = "echo done > a.txt"\n'})
    code = ("import sys\nfrom parex_lsp.cli.main import main\n"
            "try:\n    rc = main(['run', 'parex.toml', '--quiet'])\nexcept SystemExit as e:\n    rc = e.code\n"
            "assert rc == 0, rc\nprint('ray loaded' if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) "
            "else 'no ray')\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ws, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip().splitlines()[-1] == "no ray", (p.stdout, p.stderr)
    assert (ws / "a.txt").read_text() == "done\n"
