"""Review benchmark on a repository of 3,000 files with 10 tasks ready for review.

    .venv/bin/python tests/bench/bench_review.py            # 3,000 files, 10 tasks
    .venv/bin/python tests/bench/bench_review.py --quick    # 300 files, 4 tasks

1. From a task's end (its agent's last act, timestamped by the agent itself) to its `ready` event, which
   carries the change summary after the branch was committed, its worktree removed and conflicts predicted
   against the base and every other waiting branch; then the `parex/diff` answer itself (files with both
   contents, and the unified diff).
2. Per merge (`accept`): the merge into the base branch in the main checkout plus the conflict predictions
   run again for every branch still waiting.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from parex_lsp.engine import Run, RunOptions
from parex_lsp.plan import plan_from_text


def git(ws: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True)


def make_repo(ws: Path, files: int) -> None:
    git(ws, "init", "-q", "-b", "main")
    for i in range(files):
        d = ws / f"pkg{i % 30:02d}"
        d.mkdir(exist_ok=True)
        (d / f"mod{i:04d}.py").write_text("".join(f"line {n} of module {i}\n" for n in range(40)))
    (ws / ".gitignore").write_text("ends/\nparex.toml\n")
    git(ws, "add", "-A")
    git(ws, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "-m", "base")
    (ws / "ends").mkdir()


def plan_text(tasks: int) -> str:
    out = ['[run]\nisolation = "worktree"\nmerge = "review"\nmax_concurrency = 10\n']
    for t in range(tasks):
        # each task edits 5 modules of its own, and task 0 and 1 also both edit one shared line
        edits = " ".join(f"pkg{(t * 5 + k) % 30:02d}/mod{(t * 5 + k) * 7 % 3000:04d}.py" for k in range(5))
        shared = f"; sed -i 's/line 3 of module 0$/line 3 changed by t{t}/' pkg00/mod0000.py" if t < 2 else ""
        out.append(f'[[task]]\nid = "t{t}"\nprompt = "for f in {edits}; do echo edit >> $f; done{shared}; '
                   f'date +%s.%N > $PAREX_WORKSPACE/ends/t{t}"\n')
    return "\n".join(out)


async def bench(files: int, tasks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        make_repo(ws, files)
        text = plan_text(tasks)
        (ws / "parex.toml").write_text(text)
        plan = plan_from_text(text, str(ws / "parex.toml"), ws)
        ready_at: dict[str, float] = {}
        predicted = []

        def sink(ev) -> None:
            if ev.kind == "ready":
                ready_at[ev.task_id] = ev.ts
            elif ev.kind == "conflictPredicted":
                predicted.append(ev)

        run = await Run.prepare(plan, RunOptions(hold_for_review=True), sinks=[sink])
        async with anyio.create_task_group() as tg:
            tg.start_soon(run.execute)
            with anyio.fail_after(300):
                while len(ready_at) < tasks:
                    await anyio.sleep(0.01)
            to_ready = [ready_at[t] - float((ws / "ends" / t).read_text()) for t in ready_at]
            diffs = []
            for t in sorted(ready_at):
                t0 = time.perf_counter()
                d = run.diff(t)
                diffs.append(time.perf_counter() - t0)
                assert len(d["files"]) >= 5
            merges = []
            for t in sorted(ready_at, key=lambda x: int(x[1:])):
                t0 = time.perf_counter()
                await run.review(t, "accept")
                merges.append(time.perf_counter() - t0)
        ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"  # noqa: E731
        print(f"repository: {files} files; {tasks} tasks ready; {len(predicted)} conflictPredicted events")
        print(f"task end -> ready event (commit, worktree removed, changes, predictions): {ms(to_ready)}")
        print(f"parex/diff answer: {ms(diffs)}")
        print(f"per merge (accept: merge + predictions for the waiting branches): {ms(merges)}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    anyio.run(bench, 300 if args.quick else 3000, 4 if args.quick else 10)


if __name__ == "__main__":
    main()
