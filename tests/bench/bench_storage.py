"""What a run keeps on disk: `.parex/` after a flood of output, for this checkout and (optionally) another commit.

    .venv/bin/python tests/bench/bench_storage.py                  # this checkout
    .venv/bin/python tests/bench/bench_storage.py --before REV     # also REV, in a temporary git worktree

The flood: 20 shell tasks, each printing 10,000 lines of 36 characters, through `parex-lsp run --quiet`.
Reported per build: the size of `.parex/` and of its journals and task logs, and the run's wall time.
The other build runs from its own worktree (PYTHONPATH), with this checkout's interpreter and libraries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASKS, LINES = 20, 10_000


def flood_plan(tasks: int, lines: int) -> str:
    return "".join(f'[[task]]\nid = "t{i:02d}"\nprompt = "seq -f \'flood line %08g of the output\' {lines}"\n\n'
                   for i in range(tasks))


def sizes(state: Path) -> dict[str, int]:
    files = [p for p in state.rglob("*") if p.is_file()]
    return {"parex_bytes": sum(p.stat().st_size for p in files),
            "journal_bytes": sum(p.stat().st_size for p in files if p.name == "journal.jsonl"),
            "log_bytes": sum(p.stat().st_size for p in files if p.suffix == ".log")}


def measure(source: Path, tasks: int, lines: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "parex.toml").write_text(flood_plan(tasks, lines))
        env = {**os.environ, "PYTHONPATH": str(source)}
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "parex_lsp", "run", "--quiet", "parex.toml"], cwd=ws, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"the flood run failed ({done.returncode}) with {source}:\n{done.stderr[-2000:]}")
        return {**sizes(ws / ".parex"), "wall_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", metavar="REV", help="also measure this commit (checked out in a temporary worktree)")
    ap.add_argument("--tasks", type=int, default=TASKS)
    ap.add_argument("--lines", type=int, default=LINES)
    args = ap.parse_args()
    report: dict[str, object] = {"tasks": args.tasks, "lines": args.lines}
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "before"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.before], cwd=ROOT, check=True,
                           capture_output=True)
            try:
                report["before"] = {"rev": args.before, **measure(tree, args.tasks, args.lines)}
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    report["after"] = measure(ROOT, args.tasks, args.lines)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
