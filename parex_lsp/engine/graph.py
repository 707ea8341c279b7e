"""The task DAG: dependents, and each task's critical-path priority (longest remaining path)."""

from __future__ import annotations

from graphlib import TopologicalSorter

from parex_lsp.plan.model import TaskSpec

DEFAULT_ESTIMATE = 1.0  # seconds, for a task the journal has never seen


def dependents_of(tasks: list[TaskSpec]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for d in t.depends_on:
            out[d].append(t.id)
    return out


def critical_path(tasks: list[TaskSpec], estimates: dict[str, float]) -> dict[str, float]:
    """Own estimated duration plus the longest chain of dependents after it."""
    dependents = dependents_of(tasks)
    order = TopologicalSorter({t.id: set(dependents[t.id]) for t in tasks}).static_order()  # dependents first
    prio: dict[str, float] = {}
    for tid in order:
        own = estimates.get(tid, DEFAULT_ESTIMATE)
        prio[tid] = own + max((prio[d] for d in dependents[tid]), default=0.0)
    return prio
