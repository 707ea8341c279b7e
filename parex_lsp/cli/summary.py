"""The end of a run on the terminal (and `parex-lsp show`): every task, or for a big run those that did not
succeed plus the slowest and the critical path; model answers; each failure's reason, output tail and log."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from parex_lsp.cli.live import STYLE, secs
from parex_lsp.contract import TaskStatus
from parex_lsp.engine.result import RunResult, TaskResult

TAIL_SHOWN = 5  # lines of a failure's output
SUMMARY_ROWS = 40  # bigger runs list only the tasks that did not succeed
SLOWEST = 5


def print_summary(console: Console, result: RunResult, plan_source: str | None, tails: dict[str, list[str]],
                  depends_on: dict[str, list[str]] | None = None) -> None:
    table = Table(title=f"parex run {result.run_id}: {result.status}", title_justify="left")
    for col in ("task", "status", "attempts", "time", "reason / log"):
        table.add_column(col)
    big = len(result.tasks) > SUMMARY_ROWS
    shown = [t for t in result.tasks if t.status != TaskStatus.SUCCEEDED] if big else result.tasks
    if len(shown) < len(result.tasks):
        table.caption = f"{len(result.tasks) - len(shown)} succeeded tasks not listed"
    for t in shown:
        note = (t.error or "") if t.status != TaskStatus.SUCCEEDED else (
            "reused from " + t.reused_from if t.reused_from else "")
        table.add_row(t.id, Text(t.status, style=STYLE.get(t.status, "")), str(t.attempts), secs(t.duration_ms), note)
    if shown:
        console.print(table)
    else:
        console.print(Text(f"parex run {result.run_id}: {result.status}", style="italic"))
    if big:
        ran = sorted((t for t in result.tasks if not t.reused_from), key=lambda t: -t.duration_ms)[:SLOWEST]
        if ran:
            console.print("slowest: " + ", ".join(f"{t.id} {secs(t.duration_ms)}" for t in ran))
    if big and depends_on is not None:
        chain, total = critical_path(result.tasks, depends_on)
        if len(chain) > 1:
            console.print(f"critical path: {' → '.join(chain)} ({secs(total)})")
    for t in result.tasks:
        if t.answer:  # model agents' final answers, one after the other (e.g. a callN: fan-out)
            console.print(Text(f"── {t.id} answered:", style="bold"))
            console.print(Text(t.answer.rstrip()))
    for t in result.tasks:
        if t.status == TaskStatus.FAILED:
            _failure(console, t, tails.get(t.id, []))
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items())
    console.print(f"{counts} — wall {secs(result.wall_ms)}, work {secs(result.work_ms)}, "
                  f"speedup {result.speedup:.2f}×{usage_text(result.usage)}")
    if result.budget:
        console.print(Text(f"budget: {result.budget['summary']}" + (" — budget exceeded" if result.budget["exceeded"] else ""),
                           style="bold red" if result.budget["exceeded"] else ""))
    if result.status != TaskStatus.SUCCEEDED:
        console.print(f"resume with: parex-lsp run {plan_source or 'PLAN'} --resume {result.run_id}")


def critical_path(tasks: list[TaskResult], depends_on: dict[str, list[str]]) -> tuple[list[str], int]:
    """The chain of dependencies with the longest total of this run's durations (ms), first task first."""
    took = {t.id: t.duration_ms for t in tasks}
    best: dict[str, tuple[int, str | None]] = {}  # task -> (longest total ending with it, the task before)

    def total(tid: str) -> int:
        if tid not in best:
            before = [(total(d), d) for d in depends_on.get(tid, []) if d in took]
            longest, prev = max(before, default=(0, None))
            best[tid] = (longest + took[tid], prev)
        return best[tid][0]
    if not took:
        return [], 0
    end = max(took, key=total)
    chain: list[str] = []
    node: str | None = end
    while node is not None:
        chain.append(node)
        node = best[node][1]
    return chain[::-1], best[end][0]


def _failure(console: Console, t: TaskResult, tail: list[str]) -> None:
    console.print(Text(f"── {t.id} failed ({t.code}): {t.error}", style="bold red"))
    for line in tail[-TAIL_SHOWN:]:
        console.print(Text("   " + line))
    console.print(f"   log: {t.log_path}")


def usage_text(usage: dict[str, Any] | None) -> str:
    if not usage:
        return ""
    cost = f" (${usage['costUsd']:.4f})" if "costUsd" in usage else ""
    return f", {usage.get('promptTokens', 0)}+{usage.get('completionTokens', 0)} tokens{cost}"
