"""`[RUN] [TASK]` as `log`, `show` and `cancel` take them: a run id or `last` (the default), then a task id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parex_lsp.cli.workspace import Workspace
from parex_lsp.engine.journal import RunRecord, find_run, replay


class Refused(Exception):
    """What a person asked for is not there; the message says what is (exit 2)."""


@dataclass(frozen=True, slots=True)
class Picked:
    journal: Path
    run: RunRecord
    task: str | None


def pick(ws: Workspace, refs: list[str], task_wanted: bool) -> Picked:
    """`refs` are the positional words: [RUN] [TASK]. With one word, it is a run when one has that id (or it
    is `last`), else a task of the last run."""
    if len(refs) > 2:
        raise Refused(f"expected [RUN] [TASK], got {len(refs)} words: {' '.join(refs)}")
    run_ref, task = "last", None
    if len(refs) == 2:
        run_ref, task = refs
    elif len(refs) == 1:
        if refs[0] == "last" or find_run(ws.path, refs[0]) is not None or not task_wanted:
            run_ref = refs[0]
        else:
            task = refs[0]
    journal = find_run(ws.path, run_ref)
    if journal is None:
        raise Refused(f"no run {run_ref} in {ws.path}" if run_ref != "last" else f"no runs in {ws.path}")
    run = replay(journal)
    if task is not None and task not in run.tasks:
        raise Refused(f"run {run.run_id} has no task {task}; its tasks: {', '.join(run.tasks) or 'none'}")
    return Picked(journal, run, task)
