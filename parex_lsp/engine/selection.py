"""Which tasks a run runs: pure, over the plan, the options and the loaded history."""

from __future__ import annotations

from dataclasses import dataclass, field

from parex_lsp.contract import TaskStatus
from parex_lsp.engine.history import Earlier, History
from parex_lsp.plan.model import Plan


class RunError(Exception):
    """A run that cannot start (bad `only`/`resume`, unusable isolation, unwritable state); nothing has run."""


class PlanBusy(RunError):
    """The plan is running already, in this process or another; names that run and how to cancel it."""

    def __init__(self, plan: str, run_id: str, pid: int | None):
        self.run_id, self.pid = run_id, pid
        super().__init__(f"{plan} is already running as run {run_id} (pid {pid}); wait for it to end, "
                         f"or cancel it: parex-lsp cancel {run_id}")


@dataclass(slots=True)
class Selection:
    wanted: list[str]  # in plan order
    deps_left: dict[str, int]  # per wanted task: dependencies inside this run still to succeed
    unmet: dict[str, str] = field(default_factory=dict)  # wanted task -> a dependency outside the run not done
    reused: dict[str, Earlier] = field(default_factory=dict)  # resume: succeeded before, not run again
    resumed_from: str | None = None


def select(plan: Plan, history: History, only: list[str] | None = None, resume: str | None = None,
           again: frozenset[str] = frozenset()) -> Selection:
    """`again`: tasks run even if they succeeded before (a retry of a ready task whose earlier run succeeded)."""
    index = {t.id for t in plan.tasks}
    unknown = [t for t in only or [] if t not in index]
    if unknown:
        raise RunError(f"`only` names unknown task(s): {', '.join(unknown)}")
    if resume and not history.runs:
        raise RunError(f"no run to resume: {resume}" + (f" (for {plan.source})" if plan.source else ""))
    done_before = {tid for tid, e in history.latest.items() if e.status == TaskStatus.SUCCEEDED and tid in index}
    wanted_set = set(only) if only else set(index)
    if resume:
        wanted_set -= done_before - again
    wanted = [t.id for t in plan.tasks if t.id in wanted_set]
    selection = Selection(wanted, {}, resumed_from=history.runs[-1] if resume else None)
    if resume:
        selection.reused = {t.id: history.latest[t.id] for t in plan.tasks if t.id in done_before - wanted_set}
    for spec in plan.tasks:
        if spec.id not in wanted_set:
            continue
        selection.deps_left[spec.id] = sum(1 for d in spec.depends_on if d in wanted_set)
        missing = [d for d in spec.depends_on if d not in wanted_set and d not in done_before]
        if missing:
            selection.unmet[spec.id] = missing[0]
    return selection
