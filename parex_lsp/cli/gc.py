"""Pruning `.parex/runs/`: at the start of each `parex-lsp run` (to `[run] keep_runs`), and `parex-lsp gc`.

The newest `keep` runs stay. Of the older ones, three kinds are never removed: a run that is still running,
the latest run of each plan (what `--resume last` of that plan reads), and a run whose review branches
(`parex/<run>/...`) still exist (its journal says what they hold). Everything else goes, folder and all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from parex_lsp import state
from parex_lsp.contract import RunStatus
from parex_lsp.engine.journal import list_runs, replay

DEFAULT_KEEP = 20  # the default of `[run] keep_runs` (parex_lsp/plan/model.py)


@dataclass
class Pruning:
    remove: list[str] = field(default_factory=list)  # run ids, oldest first
    spared: dict[str, str] = field(default_factory=dict)  # older run id → why it stays
    freed: int = 0  # bytes


def branch_runs(workspace: Path) -> set[str]:
    """Run ids that still have `parex/<run>/...` branches (none outside a git repository)."""
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname:short)", "refs/heads/parex/"], cwd=workspace,
                         capture_output=True, text=True)
    if out.returncode != 0:
        return set()
    return {b.split("/")[1] for b in out.stdout.split() if b.count("/") >= 2}


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


def gc_command(workspace: Path, keep: int, dry_run: bool, branches: bool) -> int:
    """`parex-lsp gc [--keep N] [--dry-run] [--branches]`: prune runs; with --branches, kept branches first
    (so their runs can go too)."""
    if branches:
        from parex_lsp.cli.review import gc_branches

        code = gc_branches(workspace, dry_run)
        if code != 0:
            return code
    pruning = prune_runs(workspace, keep, dry_run)
    verb = "would remove" if dry_run else "removed"
    for run_id in pruning.remove:
        print(f"{verb} run {run_id}")
    for run_id, why in pruning.spared.items():
        print(f"kept run {run_id}: {why}")
    print(f"{verb} {len(pruning.remove)} run(s), {_size(pruning.freed)}; keeping the newest {keep}"
          f"{f' and {len(pruning.spared)} older' if pruning.spared else ''}")
    return 0


def prune_before_run(workspace: Path, keep: int) -> None:
    """At the start of a run: prune quietly; a failure to prune never stops the run."""
    try:
        prune_runs(workspace, keep)
    except OSError as e:
        print(f"parex: could not prune old runs under {state.runs_dir(workspace)}: {e.strerror or e}",
              file=sys.stderr)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    x = n / 1024
    for unit in ("KB", "MB"):
        if x < 1024:
            return f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} GB"
