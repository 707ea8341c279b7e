"""Diagnostics parex publishes: plan validation (live, debounced) and task failures from runs.

LSP replaces all diagnostics of a uri on every publish, so both kinds are kept here and merged per
uri: validation problems per plan document, run diagnostics per (plan, task) — on the plan document
at the task's line, and on every workspace file the task's output names as `path:line[:col]: message`.
A rerun of a task replaces only that task's share.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from parex_lsp import state
from parex_lsp.contract import Ended, Event, EventKind, RunStarted, Started
from parex_lsp.plan import Plan, Problem, SourceRange

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

SOURCE = "parex"
DEBOUNCE = 0.2  # seconds of quiet typing before a plan document is validated
PUBLISH_DELAY = 0.05  # seconds run diagnostics of a uri wait, so a burst of changes is one publish
MAX_POSITION = 2**31 - 1  # LSP positions are uint32 on the wire; a line number past this is clamped
TAIL_LINES = 10  # output lines quoted in a failed task's diagnostic
SCAN_BYTES = 64 * 1024  # how much of the end of a failed task's log is scanned for file:line messages
MAX_OUTPUT_DIAGNOSTICS = 100  # per task

# `path:line: message` or `path:line:col: message`, as compilers, linters and test runners print them.
FILE_LINE = re.compile(r"^\s*(?P<path>(?:[A-Za-z]:)?[^\s:][^:\n]*?):(?P<line>\d{1,30})(?::(?P<col>\d{1,30}))?:\s*(?P<msg>\S.*)$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WARNING = re.compile(r"^\s*warn(ing)?\b", re.IGNORECASE)

Key = tuple[str, str]  # (plan key, task id)
Wire = dict[str, Any]  # a diagnostic as sent


def _range(rng: SourceRange | None) -> types.Range:
    if rng is None:
        return types.Range(types.Position(0, 0), types.Position(0, 0))
    def pos(line: int, col: int) -> types.Position:
        return types.Position(min(max(line, 0), MAX_POSITION), min(max(col, 0), MAX_POSITION))

    return types.Range(pos(rng.start_line, rng.start_col), pos(rng.end_line, rng.end_col))


def problem_diagnostic(p: Problem) -> types.Diagnostic:
    severity = types.DiagnosticSeverity.Error if p.is_error else types.DiagnosticSeverity.Warning
    return types.Diagnostic(range=_range(p.range), message=p.message, severity=severity,
                            source=SOURCE, code=p.code)


class DiagnosticStore:
    """Every parex diagnostic, by uri and origin; a uri's merged list is sent when it changes.

    Run diagnostics are indexed by uri, so a publish costs the diagnostics of that uri only, and publishes
    are coalesced: a change marks its uri, and marked uris are sent together `PUBLISH_DELAY` later (later
    still while the client is not keeping up). A failing head that skips 1,000 dependents at once is one
    publish of 1,000 diagnostics, not 1,000 publishes of up to 1,000 each.
    """

    def __init__(self, ls: LanguageServer, congested: Callable[[], bool] = lambda: False):
        self.ls, self.congested = ls, congested
        # Kept as their JSON form, converted once when made: a publish is then one json.dumps, not a cattrs
        # walk over every diagnostic of the uri.
        self.validation: dict[str, list[Wire]] = {}
        self._by_uri: dict[str, dict[Key, list[Wire]]] = {}  # run diagnostics
        self._uris_of: dict[Key, set[str]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._dirty: set[str] = set()
        self._flush: asyncio.TimerHandle | None = None
        self.publishes = 0  # sent, for tests and benchmarks

    def all(self, uri: str) -> list[Wire]:
        out = list(self.validation.get(uri, []))
        for diags in self._by_uri.get(uri, {}).values():
            out.extend(diags)
        return out

    def publish_now(self, uri: str) -> None:
        self._dirty.discard(uri)
        self.publishes += 1
        params = {"uri": uri, "diagnostics": self.all(uri)}
        notify = getattr(self.ls, "notify_json", None)
        if notify is not None:
            notify(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, params)
        else:
            self.ls.protocol.notify(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, params)

    def publish(self, uri: str) -> None:
        """Send `uri`'s diagnostics soon, together with every other change of the moment."""
        self._dirty.add(uri)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(PUBLISH_DELAY, self.flush)

    def flush(self, force: bool = False) -> None:
        """Send the marked uris; `force` also while the client lags (a run's answer comes after its diagnostics)."""
        if self._flush is not None:
            self._flush.cancel()
        self._flush = None
        if not self._dirty:
            return
        if self.congested() and not force:  # the client is behind: let changes pile up into fewer, later publishes
            self._flush = asyncio.get_running_loop().call_later(PUBLISH_DELAY * 4, self.flush)
            return
        for uri in list(self._dirty):
            self.publish_now(uri)

    def set_problems(self, uri: str, problems: list[Problem], always: bool = False) -> None:
        """Validation problems of a plan document, each published on its own file: problems of the workspace's
        parex.toml that configures a `callN:` document go on that parex.toml (the rest on `uri`)."""
        elsewhere: dict[str, list[Problem]] = {}
        here: list[Problem] = []
        own = to_fs_path(uri) if uri.startswith("file:") else None
        for p in problems:
            if p.path and own is not None and Path(p.path).resolve() != Path(own).resolve():
                elsewhere.setdefault(Path(p.path).resolve().as_uri(), []).append(p)
            else:
                here.append(p)
        self.set_validation(uri, here, always)
        for other, found in elsewhere.items():
            self.set_validation(other, found, always)

    def set_validation(self, uri: str, problems: list[Problem], always: bool = False) -> None:
        """Replace the validation problems of `uri`; publish at once when they change (or `always`), so a
        refused run request's problems are on the document before its answer."""
        diags = [self.wire(problem_diagnostic(p)) for p in problems]
        had = self.validation.pop(uri, None) is not None
        if diags:
            self.validation[uri] = diags
        if always or diags or had:
            self.publish_now(uri)

    def clear_tasks(self, plan_key: str, task_ids: Iterable[str]) -> None:
        for tid in task_ids:
            self._drop((plan_key, tid))

    def wire(self, diag: types.Diagnostic) -> Wire:
        wire: Wire = self.ls.protocol._converter.unstructure(diag)
        return wire

    def set_task(self, plan_key: str, task_id: str, by_uri: dict[str, list[types.Diagnostic]]) -> None:
        key = (plan_key, task_id)
        self._drop(key)
        if by_uri:
            self._uris_of[key] = set(by_uri)
            for uri, diags in by_uri.items():
                self._by_uri.setdefault(uri, {})[key] = [self.wire(d) for d in diags]
                self.publish(uri)

    def _drop(self, key: Key) -> None:
        for uri in self._uris_of.pop(key, ()):
            on_uri = self._by_uri.get(uri)
            if on_uri is not None:
                on_uri.pop(key, None)
                if not on_uri:
                    del self._by_uri[uri]
            self.publish(uri)

    def debounce(self, uri: str, check: Callable[[], None], delay: float = DEBOUNCE) -> None:
        """Run `check` once typing in `uri` has paused for `delay` seconds."""
        if (t := self._timers.pop(uri, None)) is not None:
            t.cancel()

        def fire() -> None:
            self._timers.pop(uri, None)
            check()

        self._timers[uri] = asyncio.get_running_loop().call_later(delay, fire)


class TaskDiagnostics:
    """An event sink: failed and skipped tasks → diagnostics on the plan document and on named files."""

    def __init__(self, store: DiagnosticStore, plan: Plan, plan_uri: str | None, plan_key: str):
        self.store, self.plan, self.plan_uri, self.plan_key = store, plan, plan_uri, plan_key
        self.workspace = plan.workspace.resolve()
        self.workdirs: dict[str, Path] = {}
        self.ranges = {t.id: t.range for t in plan.tasks}  # Plan.task() is a scan: once per task is O(n^2)

    def __call__(self, ev: Event) -> None:
        data = ev.data
        if isinstance(data, RunStarted):
            self.store.clear_tasks(self.plan_key, [t.id for t in data.tasks])
        elif ev.task_id is not None and isinstance(data, Started):
            self.workdirs[ev.task_id] = Path(data.workdir or self.workspace).resolve()
        elif ev.task_id is not None and ev.kind in (EventKind.FAILED, EventKind.SKIPPED) and isinstance(data, Ended):
            self.store.set_task(self.plan_key, ev.task_id, self._diagnostics(ev, data))

    def _diagnostics(self, ev: Event, data: Ended) -> dict[str, list[types.Diagnostic]]:
        task_id = ev.task_id or ""
        by_uri: dict[str, list[types.Diagnostic]] = {}
        log = Path(data.log_path) if data.log_path else None
        tag = {"runId": ev.run_id, "taskId": task_id}
        related = None
        if log is not None:
            related = [types.DiagnosticRelatedInformation(
                location=types.Location(uri=log.as_uri(), range=_range(None)), message=f"output of task {task_id}")]
        spec_range = self.ranges.get(task_id)
        failed = ev.kind == EventKind.FAILED
        if self.plan_uri is not None:
            reason = data.reason or ev.kind
            tail = [ANSI.sub("", ln) for ln in data.tail[-TAIL_LINES:]]
            message = f"{task_id} {ev.kind}: {reason}" + ("\n" + "\n".join(tail) if tail and failed else "")
            severity = types.DiagnosticSeverity.Error if failed else types.DiagnosticSeverity.Warning
            by_uri[self.plan_uri] = [types.Diagnostic(
                range=_range(spec_range), message=message, severity=severity, source=SOURCE,
                code=data.code, related_information=related, data=tag)]
        if failed and log is not None:
            for uri, diag in self._from_output(task_id, log, tag):
                by_uri.setdefault(uri, []).append(diag)
        return by_uri

    def _from_output(self, task_id: str, log: Path, tag: dict[str, str]) -> list[tuple[str, types.Diagnostic]]:
        try:
            with log.open("rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - SCAN_BYTES))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        lines = text.splitlines()
        if size > SCAN_BYTES:
            lines = lines[1:]  # the first line is probably cut
        out: list[tuple[str, types.Diagnostic]] = []
        seen: set[tuple[str, int, int, str]] = set()
        for raw in lines:
            m = FILE_LINE.match(ANSI.sub("", raw))
            if m is None:
                continue
            path = self._in_workspace(task_id, m.group("path"))
            if path is None:
                continue
            line = min(max(int(m.group("line")) - 1, 0), MAX_POSITION)
            col = min(max(int(m.group("col")) - 1, 0), MAX_POSITION) if m.group("col") else 0
            msg = m.group("msg").strip()
            if (str(path), line, col, msg) in seen:
                continue
            seen.add((str(path), line, col, msg))
            severity = types.DiagnosticSeverity.Warning if WARNING.match(msg) else types.DiagnosticSeverity.Error
            rng = types.Range(types.Position(line, col), types.Position(line, col if m.group("col") else 10_000))
            out.append((path.as_uri(), types.Diagnostic(range=rng, message=f"[{task_id}] {msg}", severity=severity,
                                                        source=SOURCE, data=tag)))
            if len(out) >= MAX_OUTPUT_DIAGNOSTICS:
                break
        return out

    def _in_workspace(self, task_id: str, name: str) -> Path | None:
        """The workspace file an output line names (worktree paths map back), or None when outside it."""
        workdir = self.workdirs.get(task_id, self.workspace)
        p = Path(name.strip())
        try:
            p = (p if p.is_absolute() else workdir / p).resolve()
            if workdir != self.workspace and p.is_relative_to(workdir):
                p = self.workspace / p.relative_to(workdir)
        except (OSError, ValueError):
            return None
        if not p.is_relative_to(self.workspace) or state.is_state_path(self.workspace, p) or not p.is_file():
            return None
        return p
