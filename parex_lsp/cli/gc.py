"""`parex-lsp gc`: prune `.parex/runs/` by hand (engine/pruning.py says what stays), and with `--branches`
the kept review branches first."""

from __future__ import annotations

from pathlib import Path

from parex_lsp.engine.pruning import prune_runs


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


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    x = n / 1024
    for unit in ("KB", "MB"):
        if x < 1024:
            return f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} GB"
