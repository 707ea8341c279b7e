"""Where an attempt runs: on this machine (local.py), or on a Ray cluster (ray/, the optional `ray` extra).

The scheduler (engine/) stays local and hands each attempt to an executor; `executor_for` imports Ray only
when a plan asks for it, so a default install never loads it."""

from __future__ import annotations

from pathlib import Path

from parex_lsp.executors.base import Executor, ExecutorError
from parex_lsp.executors.local import LocalExecutor
from parex_lsp.plan.model import Plan

EXECUTORS = ("local", "ray")

__all__ = ["EXECUTORS", "Executor", "ExecutorError", "LocalExecutor", "executor_for"]


def executor_for(name: str, plan: Plan, run_id: str, workspace: Path, ray_address: str | None = None) -> Executor:
    if name == "ray":
        try:
            from parex_lsp.executors.ray.driver import RayExecutor
        except ImportError as e:
            raise ExecutorError(f'executor = "ray" needs Ray on this machine: pip install "parex-lsp[ray]" ({e})') from e
        return RayExecutor(plan, run_id, workspace, ray_address or plan.run.ray_address)
    if name != "local":
        raise ExecutorError(f'executor must be "local" or "ray", not "{name}"')
    return LocalExecutor()
