"""`parex-lsp show [RUN] [--json]`: a run's full result as it ended, from its journal alone: the summary the
terminal printed then (failures with their reason, output tail and log), or the RunResult as `run --json`
gave it. Also the one place a result's JSON gets every task's log path."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from parex_lsp import state
from parex_lsp.cli.picking import pick
from parex_lsp.cli.view import TerminalView
from parex_lsp.cli.workspace import Workspace
from parex_lsp.contract import ENDINGS, EventKind, RunStatus
from parex_lsp.engine.journal import RunRecord, read_events
from parex_lsp.engine.result import RunResult, TaskResult


def result_json(wire: dict[str, Any], workspace: Path) -> dict[str, Any]:
    """The RunResult's wire form with `logPath` on every task (a reused task's is its earlier run's log)."""
    tasks = []
    for t in wire.get("tasks", []):
        uri = t.get("logUri")
        if uri:
            path = Path(unquote(urlparse(uri).path))
        else:
            path = state.log_path(workspace, t.get("reusedFrom") or wire["runId"], t["id"])
        tasks.append({**t, "logPath": str(path)})
    return {**wire, "tasks": tasks}


def show_run(ws: Workspace, refs: list[str], as_json: bool) -> int:
    picked = pick(ws, refs, task_wanted=False)
    wire, tails = _from_journal(picked.journal, picked.run, ws.path)
    if as_json:
        print(json.dumps({**result_json(wire, ws.path), "plan": picked.run.plan, "workspace": str(ws.path)}))
        return 0
    view = TerminalView(sys.stdout)
    view.summary(result_from_wire(wire), picked.run.plan, tails)
    if picked.run.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
        view.say(f"run {picked.run.run_id} is {picked.run.status}: this is where it stands")
    return 0


def _from_journal(journal: Path, run: RunRecord, workspace: Path) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The run's result wire (its runFinished event's, or rebuilt for a run that did not finish) and each
    task's output tail."""
    tails: dict[str, list[str]] = {}
    finished: dict[str, Any] | None = None
    for ev in read_events(journal, output=False):
        data = ev.get("data") or {}
        if ev["kind"] in ENDINGS and ev.get("taskId"):
            tails[ev["taskId"]] = list(data.get("tail") or [])
        elif ev["kind"] == EventKind.RUN_FINISHED:
            finished = data
    if finished is not None:
        return finished, tails
    tasks = []
    for t in run.tasks.values():
        d: dict[str, Any] = {"id": t.id, "status": t.status, "attempts": t.attempts, "durationMs": t.duration_ms or 0}
        for key, value in (("exitCode", t.exit_code), ("error", t.reason), ("code", t.code), ("answer", t.answer)):
            if value is not None:
                d[key] = value
        d["logUri"] = state.log_path(workspace, run.run_id, t.id).as_uri()
        tasks.append(d)
    wall = int(((run.ended or time.time()) - run.started) * 1000) if run.started else 0
    return {"runId": run.run_id, "status": run.status, "tasks": tasks, "wallMs": wall}, tails


def result_from_wire(wire: dict[str, Any]) -> RunResult:
    tasks = [TaskResult(t["id"], t["status"], t.get("attempts", 0), t.get("durationMs", 0), t.get("exitCode"),
                        t.get("error"), t.get("code"),
                        Path(unquote(urlparse(t["logUri"]).path)) if t.get("logUri") else None,
                        t.get("usage"), t.get("answer"), t.get("reusedFrom")) for t in wire.get("tasks", [])]
    return RunResult(wire["runId"], wire["status"], tasks, wire.get("wallMs", 0))
