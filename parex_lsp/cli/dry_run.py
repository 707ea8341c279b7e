"""`parex-lsp run --dry-run`: what a run would do, without running anything: the tasks it selects in waves
(a wave starts when the one before it has ended), the critical path, the lock conflicts that will run tasks one
at a time, and the expected duration, from the durations of earlier runs and the same scheduling rules."""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from parex_lsp.cli.lines import aligned, print_lines
from parex_lsp.cli.view import secs, text_console
from parex_lsp.engine.graph import DEFAULT_ESTIMATE, critical_path
from parex_lsp.engine.history import load_history
from parex_lsp.engine.run import RunOptions, plan_key, run_isolation
from parex_lsp.engine.selection import RunError, select
from parex_lsp.isolation.keys import first_conflict, lock_keys
from parex_lsp.plan.model import Plan, TaskSpec


@dataclass
class Forecast:
    waves: list[list[str]]
    critical: list[str]
    critical_s: float
    conflicts: list[tuple[str, str, str]]  # (task, task, a file both may write)
    expected_s: float
    work_s: float
    estimates: dict[str, float]
    unknown: list[str]  # tasks no earlier run has timed
    skipped: dict[str, str]  # task -> the dependency that has not succeeded
    reused: list[str]

    def to_wire(self) -> dict[str, Any]:
        return {"waves": self.waves, "criticalPath": self.critical, "criticalPathSeconds": round(self.critical_s, 3),
                "lockConflicts": [{"tasks": [a, b], "file": k} for a, b, k in self.conflicts],
                "expectedSeconds": round(self.expected_s, 3), "workSeconds": round(self.work_s, 3),
                "estimates": {k: round(v, 3) for k, v in self.estimates.items()}, "unknownDurations": self.unknown,
                "skipped": self.skipped, "reused": self.reused}


def forecast(plan: Plan, only: list[str] | None, resume: str | None, max_concurrency: int | None,
             isolation: str | None, executor: str | None = None) -> Forecast:
    workspace = plan.workspace.resolve()
    history = load_history(workspace, plan_key(plan), None if resume in (None, "last") else resume)
    selection = select(plan, history, only, resume)
    specs = {t.id: t for t in plan.tasks}
    runs = [specs[t] for t in selection.wanted if t not in selection.unmet]
    ids = {t.id for t in runs}
    estimates = {t.id: history.durations.get(t.id, DEFAULT_ESTIMATE) for t in runs}
    priority = critical_path(plan.tasks, {t.id: history.durations.get(t.id, DEFAULT_ESTIMATE) for t in plan.tasks})
    waves = _waves(runs, ids)
    keys = {}
    if run_isolation(plan, RunOptions(isolation=isolation, executor=executor)) == "none":
        try:
            keys = {t.id: lock_keys(workspace, t.files) for t in runs if t.files}
        except ValueError as e:
            raise RunError(str(e)) from e
    conflicts = _conflicts(runs, ids, keys)
    limit = max_concurrency or plan.run.max_concurrency
    caps = {name: a.max_concurrency for name, a in plan.agents.items() if a.max_concurrency}
    agent_of = {t.id: t.agent or plan.run.default_agent for t in runs}
    expected = _simulate(runs, ids, estimates, priority, keys, limit, agent_of, caps)
    critical = _critical_chain(runs, ids, priority)
    return Forecast(waves, critical, sum(estimates[t] for t in critical), conflicts, expected,
                    sum(estimates.values()), estimates, [t.id for t in runs if t.id not in history.durations],
                    dict(selection.unmet), list(selection.reused))


def _inside(t: TaskSpec, ids: set[str]) -> list[str]:
    return [d for d in t.depends_on if d in ids]


def _waves(runs: list[TaskSpec], ids: set[str]) -> list[list[str]]:
    level: dict[str, int] = {}
    for t in runs:  # plans are validated acyclic; dependencies may come later in the file, so iterate to a fixpoint
        level[t.id] = 0
    changed = True
    while changed:
        changed = False
        for t in runs:
            want = max((level[d] + 1 for d in _inside(t, ids)), default=0)
            if want != level[t.id]:
                level[t.id], changed = want, True
    waves: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for t in runs:
        waves[level[t.id]].append(t.id)
    return waves


def _ancestors(runs: list[TaskSpec], ids: set[str]) -> dict[str, set[str]]:
    specs = {t.id: t for t in runs}
    memo: dict[str, set[str]] = {}

    def of(tid: str) -> set[str]:
        if tid not in memo:
            memo[tid] = set()
            for d in _inside(specs[tid], ids):
                memo[tid] |= {d} | of(d)
        return memo[tid]
    for t in runs:
        of(t.id)
    return memo


def _conflicts(runs: list[TaskSpec], ids: set[str], keys: dict[str, frozenset[str]]) -> list[tuple[str, str, str]]:
    """Pairs that the dependencies would let run together but whose files may overlap."""
    locked = [t.id for t in runs if t.id in keys]
    before = _ancestors(runs, ids)
    out = []
    for i, a in enumerate(locked):
        for b in locked[i + 1:]:
            if a in before[b] or b in before[a]:
                continue
            key = first_conflict(keys[a], keys[b])
            if key is not None:
                out.append((a, b, key))
    return out


def _simulate(runs: list[TaskSpec], ids: set[str], est: dict[str, float], priority: dict[str, float],
              keys: dict[str, frozenset[str]], limit: int, agent_of: dict[str, str], caps: dict[str, int]) -> float:
    """The scheduler's rules over estimated durations: ready tasks by critical path, within the global and
    per-agent limits, never two with overlapping files at once. Returns the expected wall time."""
    order = {t.id: i for i, t in enumerate(runs)}
    left = {t.id: len(_inside(t, ids)) for t in runs}
    dependents: dict[str, list[str]] = {t.id: [] for t in runs}
    for t in runs:
        for d in _inside(t, ids):
            dependents[d].append(t.id)
    ready = [(-priority[t], order[t], t) for t in left if left[t] == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    per_agent: dict[str, int] = {}
    now = 0.0
    while ready or running:
        deferred = []
        while ready and len(running) < limit:
            item = heapq.heappop(ready)
            tid = item[2]
            cap = caps.get(agent_of[tid])
            busy = [r for _, r in running]
            if (cap is not None and per_agent.get(agent_of[tid], 0) >= cap) or (
                    tid in keys and any(r in keys and first_conflict(keys[tid], keys[r]) for r in busy)):
                deferred.append(item)
                continue
            heapq.heappush(running, (now + est[tid], tid))
            per_agent[agent_of[tid]] = per_agent.get(agent_of[tid], 0) + 1
        for item in deferred:
            heapq.heappush(ready, item)
        if not running:
            break  # nothing can start: cannot happen with a valid plan
        now, done = heapq.heappop(running)
        per_agent[agent_of[done]] -= 1
        for d in dependents[done]:
            left[d] -= 1
            if left[d] == 0:
                heapq.heappush(ready, (-priority[d], order[d], d))
    return now


def _critical_chain(runs: list[TaskSpec], ids: set[str], priority: dict[str, float]) -> list[str]:
    if not runs:
        return []
    dependents: dict[str, list[str]] = {t.id: [] for t in runs}
    for t in runs:
        for d in _inside(t, ids):
            dependents[d].append(t.id)
    roots = [t.id for t in runs if not _inside(t, ids)]
    chain = [max(roots, key=lambda t: priority[t])]
    while dependents[chain[-1]]:
        chain.append(max(dependents[chain[-1]], key=lambda t: priority[t]))
    return chain


def print_forecast(plan: Plan, f: Forecast, as_json: bool, limit: int) -> None:
    if as_json:
        print(json.dumps({"dryRun": True, "plan": plan.source, **f.to_wire()}))
        return
    console = text_console()
    count = sum(len(w) for w in f.waves)
    console.print(Text(f"dry run of {plan.source or 'the plan'}: {count} task(s) in {len(f.waves)} wave(s), at most "
                       f"{limit} at once; nothing is run", style="bold"))
    print_lines(console, aligned(["WAVE", "TASKS"], [[str(i), ", ".join(w)] for i, w in enumerate(f.waves, 1)]))
    if f.critical:
        console.print(f"critical path: {' → '.join(f.critical)} ({secs(f.critical_s * 1000)})")
    for a, b, key in f.conflicts:
        console.print(f"lock conflict: {a} and {b} may both write {key}: they run one at a time")
    for tid, dep in f.skipped.items():
        console.print(f"skipped: {tid} (dependency {dep} has not succeeded in an earlier run)")
    if f.reused:
        console.print(f"not run again (succeeded before): {', '.join(f.reused)}")
    guess = (f"; {len(f.unknown)} task(s) never timed, counted as {DEFAULT_ESTIMATE:g}s each" if f.unknown else "")
    console.print(f"expected duration: about {secs(f.expected_s * 1000)} (work {secs(f.work_s * 1000)}, "
                  f"from earlier runs{guess})")
