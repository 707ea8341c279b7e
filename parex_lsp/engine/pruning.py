"""Pruning `.parex/runs/` to `[run] keep_runs`: at the start of every run (the terminal's and the editors'
alike), and by hand with `parex-lsp gc`.

The newest `keep` runs stay. Of the older ones, three kinds are never removed: a run that is still running,
the latest run of each plan (what `--resume last` of that plan reads), and a run whose review branches
(`parex/<run>/...`) still exist (its journal says what they hold). Everything else goes, folder and all.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import git

from parex_lsp import state
from parex_lsp.contract import RunStatus
from parex_lsp.engine.journal import list_runs, replay

log = logging.getLogger(__name__)


@dataclass
class Pruning:
    remove: list[str] = field(default_factory=list)  # run ids, oldest first
    spared: dict[str, str] = field(default_factory=dict)  # older run id → why it stays
    freed: int = 0  # bytes


def branch_runs(workspace: Path) -> set[str]:
    """Run ids that still have `parex/<run>/...` branches (none outside a git repository)."""
    try:
        refs = git.Repo(workspace, search_parent_directories=True).git.for_each_ref(
            "--format=%(refname:short)", "refs/heads/parex/")
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        return set()
    return {b.split("/")[1] for b in refs.split() if b.count("/") >= 2}


def plan_pruning(workspace: Path, keep: int) -> Pruning:
    journals = list_runs(workspace)  # oldest first
    older = journals[:max(len(journals) - keep, 0)]
    if not older:
        return Pruning()
    records = {j.parent.name: replay(j) for j in journals}
    latest_of_plan = {rec.plan: run_id for run_id, rec in records.items()}  # newest wins: journals are in order
    with_branches = branch_runs(workspace)
    pruning = Pruning()
    for journal in older:
        run_id = journal.parent.name
        rec = records[run_id]
        if rec.status == RunStatus.RUNNING:
            pruning.spared[run_id] = "still running"
        elif latest_of_plan.get(rec.plan) == run_id:
            pruning.spared[run_id] = f"the latest run of {rec.plan or 'its plan'} (resume last)"
        elif run_id in with_branches:
            pruning.spared[run_id] = f"review branches kept (parex/{run_id}/…; parex-lsp gc --branches)"
        else:
            pruning.remove.append(run_id)
    return pruning


def prune_runs(workspace: Path, keep: int, dry_run: bool = False) -> Pruning:
    pruning = plan_pruning(workspace, keep)
    for run_id in pruning.remove:
        folder = state.run_dir(workspace, run_id)
        pruning.freed += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        if not dry_run:
            shutil.rmtree(folder, ignore_errors=True)
    return pruning


def prune_quietly(workspace: Path, keep: int) -> None:
    """Before a run: a failure to prune is reported and never stops the run."""
    try:
        prune_runs(workspace, keep)
    except OSError as e:
        log.warning("could not prune old runs under %s: %s", state.runs_dir(workspace), e.strerror or e)
