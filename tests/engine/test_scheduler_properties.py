"""Properties of the scheduler on random plans run with real subprocesses, and of its pure parts (task selection,
the DAG) on random plans and histories.

Facts about a run come from its event stream and from the times each attempt wrote itself (`date +%s.%N` into
t/<id>.<attempt>.start|end), never from the scheduler's own bookkeeping.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import anyio
import hypothesis.strategies as st
import pytest
from hypothesis import event, given, settings

from parex_lsp import state
from parex_lsp.contract import ENDINGS, EventKind, TaskStatus
from parex_lsp.engine.graph import critical_path, dependents_of
from parex_lsp.engine.history import Earlier, History
from parex_lsp.engine.journal import replay
from parex_lsp.engine.selection import RunError, select
from parex_lsp.isolation.keys import keys_conflict
from parex_lsp.plan.model import Plan, RunConfig, TaskSpec
from tests.support.engine_helpers import make_run, max_overlap
from tests.support.review_plans import agent_spans, init_repo, marking

TRANSIENT = "TRANSIENT-ERR"
FILES = ["a.txt", "b.txt", "src/x.py", "src/*.py", "src/**", "docs/**/*.md", "docs/a.md", "**/*.md"]


# ---------------------------------------------------------------------------------------------------------
# random plans, run for real


@dataclass(frozen=True)
class Behaviour:
    sleep_ms: int
    kind: str  # "ok" | "fail" | "transient"
    exit_code: int = 1
    failures: int = 0  # transient: attempts that fail before one succeeds

    def command(self, tid: str) -> str:
        stamp = f't/{tid}.$PAREX_ATTEMPT'
        begin = f"mkdir -p t; date +%s.%N > {stamp}.start; sleep 0.{self.sleep_ms:03d}"
        end = f"date +%s.%N > {stamp}.end"
        if self.kind == "ok":
            return f"{begin}; {end}"
        if self.kind == "fail":
            return f"{begin}; echo failing for good; {end}; exit {self.exit_code}"
        return (f"{begin}; if [ $PAREX_ATTEMPT -le {self.failures} ]; then echo '{TRANSIENT}: try later'; {end}; "
                f"exit 1; fi; {end}")


behaviours = st.builds(
    Behaviour, sleep_ms=st.integers(10, 60), kind=st.sampled_from(["ok", "transient", "fail", "ok", "transient"]),
    exit_code=st.integers(1, 3), failures=st.integers(1, 3))


@dataclass(frozen=True)
class RandomPlan:
    deps: tuple[tuple[int, ...], ...]
    behaviour: tuple[Behaviour, ...]
    agent: tuple[str, ...]  # "shell" | "limited"
    retries: tuple[int | None, ...]
    files: tuple[tuple[str, ...], ...]
    max_concurrency: int
    agent_limit: int | None
    shell_retries_transient: bool
    limited_retries_transient: bool
    default_retries: int
    fail_fast: bool
    cancels: tuple[tuple[float, int | None], ...]  # (seconds after the start, task index or None: the whole run)

    def ids(self) -> list[str]:
        return [f"t{i}" for i in range(len(self.deps))]

    def toml(self) -> str:
        lines = ["[run]", f"max_concurrency = {self.max_concurrency}", "retry_backoff = 0.01",
                 "retry_backoff_max = 0.02", f"retries = {self.default_retries}",
                 f"fail_fast = {json.dumps(self.fail_fast)}", "kill_grace = 1"]
        lines += ["[agents.shell]", f"retry_on = {json.dumps([TRANSIENT] if self.shell_retries_transient else [])}"]
        lines += ["[agents.limited]", 'kind = "shell"',
                  f"retry_on = {json.dumps([TRANSIENT] if self.limited_retries_transient else [])}"]
        if self.agent_limit is not None:
            lines.append(f"max_concurrency = {self.agent_limit}")
        for i, tid in enumerate(self.ids()):
            lines += ["[[task]]", f"id = {json.dumps(tid)}", f"prompt = {json.dumps(self.behaviour[i].command(tid))}",
                      f"agent = {json.dumps(self.agent[i])}",
                      f"depends_on = {json.dumps([f't{d}' for d in self.deps[i]])}",
                      f"files = {json.dumps(list(self.files[i]))}"]
            if self.retries[i] is not None:
                lines.append(f"retries = {self.retries[i]}")
        return "\n".join(lines) + "\n"


@st.composite
def random_plans(draw: st.DrawFn) -> RandomPlan:
    n = draw(st.integers(2, 7))
    deps = tuple(tuple(sorted(draw(st.sets(st.integers(0, i - 1), max_size=min(i, 3))))) if i else ()
                 for i in range(n))
    cancels = [(delay, None if target < 0 else target)  # the whole run now and then, mostly one task
               for delay, target in draw(st.lists(st.tuples(st.floats(0, 0.3), st.integers(-1, n - 1)), max_size=2))]
    return RandomPlan(
        deps=deps,
        behaviour=tuple(draw(behaviours) for _ in range(n)),
        agent=tuple(draw(st.sampled_from(["shell", "limited"])) for _ in range(n)),
        retries=tuple(draw(st.one_of(st.none(), st.integers(0, 3))) for _ in range(n)),
        files=tuple(tuple(draw(st.lists(st.sampled_from(FILES), max_size=2, unique=True))) for _ in range(n)),
        max_concurrency=draw(st.integers(1, 4)),
        agent_limit=draw(st.sampled_from([1, 2, None])),
        shell_retries_transient=draw(st.booleans()),
        limited_retries_transient=draw(st.booleans()),
        default_retries=draw(st.integers(0, 2)),
        fail_fast=draw(st.booleans()),
        cancels=tuple(cancels),
    )


def _stamp(path: Path) -> float | None:
    try:
        return float(path.read_text())
    except (FileNotFoundError, ValueError):  # never written, or cut short by a cancel
        return None


async def _run_plan(workspace: Path, p: RandomPlan):
    run, rec = await make_run(workspace, p.toml())
    ids = p.ids()
    cancel_calls: list[tuple[str | None, float]] = []

    async def cancel_later(delay: float, target: int | None) -> None:
        await anyio.sleep(delay)
        tid = None if target is None else ids[target]
        cancel_calls.append((tid, time.time()))
        run.cancel(tid)

    async with anyio.create_task_group() as tg:
        for delay, target in p.cancels:
            tg.start_soon(cancel_later, delay, target)
        with anyio.fail_after(60):
            result = await run.execute()
        tg.cancel_scope.cancel()
    return run, rec, result, cancel_calls


@settings(max_examples=40, deadline=None)
@given(random_plans())
def test_random_runs_keep_every_scheduling_promise(p: RandomPlan):
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        run, rec, result, cancel_calls = anyio.run(_run_plan, workspace, p)
        for r in result.tasks:
            event(f"a task {r.status}")
        for kind in (EventKind.RETRYING, EventKind.LOCK_WAIT):
            if any(e.kind == kind for e in rec.events):
                event(f"some task {kind}")
        _check_run(workspace, p, run, rec, result, cancel_calls)


def _check_run(workspace: Path, p: RandomPlan, run, rec, result, cancel_calls) -> None:
    ids = p.ids()
    deps = {ids[i]: [ids[d] for d in p.deps[i]] for i in range(len(ids))}
    events = rec.events
    status = {r.id: r.status for r in result.tasks}
    by_id = {r.id: r for r in result.tasks}

    # every task ends exactly once, and its one ending is its result
    assert [r.id for r in result.tasks] == ids
    endings = {tid: [e for e in events if e.task_id == tid and e.kind in ENDINGS] for tid in ids}
    for tid in ids:
        assert len(endings[tid]) == 1, (tid, [e.kind for e in endings[tid]])
        assert endings[tid][0].kind == status[tid]
        assert Counter(e.kind for e in events if e.task_id == tid)[EventKind.QUEUED] == 1
    ended_at = {tid: endings[tid][0].ts for tid in ids}
    position = {id(e): n for n, e in enumerate(events)}
    started = {tid: [e for e in events if e.task_id == tid and e.kind == EventKind.STARTED] for tid in ids}

    # statuses are consistent with the graph
    bad = {TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED}
    for tid in ids:
        if status[tid] == TaskStatus.SKIPPED:
            assert any(status[d] in bad for d in deps[tid]), (tid, {d: status[d] for d in deps[tid]})
            assert not started[tid]
        if started[tid]:
            assert len(started[tid]) == 1
            for d in deps[tid]:  # no task starts before its dependencies succeed
                assert status[d] == TaskStatus.SUCCEEDED, (tid, d, status[d])
                assert position[id(endings[d][0])] < position[id(started[tid][0])]
        if status[tid] == TaskStatus.SUCCEEDED:
            assert all(status[d] == TaskStatus.SUCCEEDED for d in deps[tid])

    # cancelled only when asked (by a person, or fail_fast after a failure); asks after the run's end count not
    (finished,) = [e.ts for e in events if e.kind == EventKind.RUN_FINISHED]
    cancel_calls = [(t, at) for t, at in cancel_calls if at < finished]
    asked_all = any(t is None for t, _ in cancel_calls)
    failed_any = any(s == TaskStatus.FAILED for s in status.values())
    for tid in ids:
        if status[tid] == TaskStatus.CANCELLED:
            assert asked_all or any(t == tid for t, _ in cancel_calls) or (p.fail_fast and failed_any), tid

    # a task that ran to its end did what its command says, with the retries its agent allows
    for i, tid in enumerate(ids):
        if status[tid] in (TaskStatus.SKIPPED, TaskStatus.CANCELLED):
            continue
        b = p.behaviour[i]
        retries = p.default_retries if p.retries[i] is None else p.retries[i]
        retried = p.shell_retries_transient if p.agent[i] == "shell" else p.limited_retries_transient
        r = by_id[tid]
        if b.kind == "ok":
            expected = (TaskStatus.SUCCEEDED, 1, None)
        elif b.kind == "fail":
            expected = (TaskStatus.FAILED, 1, "exit-code")
        elif not retried or retries == 0:
            expected = (TaskStatus.FAILED, 1, "exit-code")
        elif b.failures <= retries:
            expected = (TaskStatus.SUCCEEDED, b.failures + 1, None)
        else:
            expected = (TaskStatus.FAILED, retries + 1, "retries-exhausted")
        assert (r.status, r.attempts, r.code) == expected, (tid, b, retries, retried, r.to_wire())
        if b.kind == "fail":
            assert r.exit_code == b.exit_code

    # what the processes wrote: one interval per attempt; a cut-short attempt ends no later than its task's end
    spans: dict[str, list[tuple[float, float]]] = {tid: [] for tid in ids}
    for tid in ids:
        for n in range(1, 5):
            start = _stamp(workspace / "t" / f"{tid}.{n}.start")
            if start is None:
                continue
            end = _stamp(workspace / "t" / f"{tid}.{n}.end") or ended_at[tid]
            assert start <= end
            spans[tid].append((start, end))
        if started[tid] and status[tid] != TaskStatus.CANCELLED:
            assert len(spans[tid]) == by_id[tid].attempts, (tid, spans[tid], by_id[tid].to_wire())
        if not started[tid]:
            assert spans[tid] == [] and by_id[tid].attempts == 0
        for d in deps[tid]:
            for s, _ in spans[tid]:
                assert s >= ended_at[d] and all(s >= e for _, e in spans[d]), (tid, d)

    # the global and per-agent limits are never exceeded
    every = [s for tid in ids for s in spans[tid]]
    assert max_overlap(every) <= p.max_concurrency
    if p.agent_limit is not None:
        limited = [s for i, tid in enumerate(ids) if p.agent[i] == "limited" for s in spans[tid]]
        assert max_overlap(limited) <= p.agent_limit

    # no two tasks with overlapping lock sets run at once
    keys = {tid: run.tasks[tid].keys for tid in ids}
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            if keys_conflict(keys[a], keys[b]):
                for s, e in spans[a]:
                    for s2, e2 in spans[b]:
                        assert e <= s2 or e2 <= s, f"{a} {sorted(keys[a])} and {b} {sorted(keys[b])} overlapped"

    # the run's status, and the journal tells the same story
    assert result.status != "cancelled" or asked_all
    if not asked_all:
        assert result.status == ("succeeded" if all(s == TaskStatus.SUCCEEDED for s in status.values())
                                 else "failed")
    elif not failed_any:
        assert result.status == "cancelled"
    record = replay(state.journal_path(workspace, run.run_id))
    assert {tid: t.status for tid, t in record.tasks.items()} == status
    assert record.status == result.status
    assert list(state.locks_dir(workspace).glob("*.json")) == []  # every lock given back


# ---------------------------------------------------------------------------------------------------------
# selection and the DAG, pure


@st.composite
def plans_and_histories(draw: st.DrawFn):
    n = draw(st.integers(1, 8))
    ids = [f"t{i}" for i in range(n)]
    tasks = [TaskSpec(tid, "true", depends_on=[ids[d] for d in sorted(draw(st.sets(st.integers(0, i - 1),
                                                                                     max_size=3)))] if i else [])
             for i, tid in enumerate(ids)]
    order = draw(st.permutations(range(n)))  # plan order need not be dependency order
    tasks = [tasks[i] for i in order]
    runs = draw(st.lists(st.sampled_from(["r1", "r2", "r3"]), max_size=3, unique=True))
    statuses = st.sampled_from([s.value for s in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED,
                                                  TaskStatus.CANCELLED)])
    latest = {}
    if runs:
        for tid in draw(st.lists(st.sampled_from(ids + ["gone"]), unique=True)):  # "gone": no longer in the plan
            latest[tid] = Earlier(draw(statuses), draw(st.sampled_from(runs)), draw(st.sampled_from([None, "an answer"])))
    durations = {tid: draw(st.floats(0.001, 100)) for tid in draw(st.lists(st.sampled_from(ids), unique=True))}
    history = History(latest=latest, durations=durations, runs=runs)
    only = draw(st.one_of(st.none(), st.lists(st.sampled_from(ids + ["nope"]), min_size=1, max_size=4, unique=True)))
    resume = draw(st.one_of(st.none(), st.sampled_from(["last", "r1"])))
    plan = Plan(tasks=tasks, agents={}, run=RunConfig(), workspace=Path("."))
    return plan, history, only, resume


@settings(max_examples=300, deadline=None)
@given(plans_and_histories())
def test_selection_honours_only_and_resume(case):
    plan, history, only, resume = case
    ids = [t.id for t in plan.tasks]
    deps = {t.id: t.depends_on for t in plan.tasks}
    bad_only = [t for t in only or [] if t not in ids]
    if bad_only or (resume and not history.runs):
        with pytest.raises(RunError) as err:
            select(plan, history, only, resume)
        assert (bad_only and bad_only[0] in str(err.value)) or resume in str(err.value)
        return
    sel = select(plan, history, only, resume)
    succeeded_before = {tid for tid in ids if tid in history.latest and history.latest[tid].status == "succeeded"}
    asked = set(only) if only else set(ids)
    expected = asked - succeeded_before if resume else asked
    assert sel.wanted == [t for t in ids if t in expected]  # plan order
    if resume:
        assert sel.resumed_from == history.runs[-1]
        # every task that succeeded last time is kept (listed as reused, even outside `only`), not run again
        assert set(sel.reused) == succeeded_before - expected
        assert all(sel.reused[tid] == history.latest[tid] for tid in sel.reused)
    else:
        assert sel.reused == {} and sel.resumed_from is None
    assert set(sel.deps_left) == expected
    for tid in expected:
        assert sel.deps_left[tid] == sum(1 for d in deps[tid] if d in expected)
        missing = [d for d in deps[tid] if d not in expected and d not in succeeded_before]
        if missing:  # a dependency outside the run that has not succeeded before: reported, by name
            assert sel.unmet[tid] == missing[0]
        else:
            assert tid not in sel.unmet
    assert set(sel.unmet) <= expected


def _longest(tid: str, dependents: dict[str, list[str]], est: dict[str, float], memo: dict[str, float]) -> float:
    if tid not in memo:
        memo[tid] = est.get(tid, 1.0) + max((_longest(d, dependents, est, memo) for d in dependents[tid]),
                                            default=0.0)
    return memo[tid]


@settings(max_examples=150, deadline=None)
@given(plans_and_histories())
def test_dependents_invert_dependencies_and_priority_is_the_longest_path(case):
    plan, history, _, _ = case
    dependents = dependents_of(plan.tasks)
    assert set(dependents) == {t.id for t in plan.tasks}
    pairs = {(d, t.id) for t in plan.tasks for d in t.depends_on}
    assert {(tid, dep) for tid, ds in dependents.items() for dep in ds} == pairs
    prio = critical_path(plan.tasks, history.durations)
    memo: dict[str, float] = {}
    for t in plan.tasks:
        assert prio[t.id] == pytest.approx(_longest(t.id, dependents, history.durations, memo))
        for d in t.depends_on:  # a dependency always ranks above what waits for it
            assert prio[d] > prio[t.id]


# ---------------------------------------------------------------------------------------------------------
# best-of candidates under the run's and the agents' limits, run for real (worktrees)


@dataclass(frozen=True)
class BestOfPlan:
    tasks: tuple[tuple[str, ...], ...]  # each task's candidates' agents ("a" | "b"); one entry: an ordinary task
    max_concurrency: int
    limits: tuple[int | None, int | None]  # max_concurrency of agents a and b

    def toml(self, marks: Path) -> str:
        mark = marking(marks)
        lines = ["[run]", 'isolation = "worktree"', f"max_concurrency = {self.max_concurrency}"]
        for name, limit in zip("ab", self.limits, strict=True):
            lines += [f"[agents.{name}]", 'kind = "shell"', f'env = {{ AGENT = "{name}" }}']
            if limit is not None:
                lines.append(f"max_concurrency = {limit}")
        for i, agents in enumerate(self.tasks):
            lines += ["[[task]]", f'id = "t{i}"', f"prompt = {json.dumps(mark)}"]
            lines.append(f'agent = "{agents[0]}"' if len(agents) == 1 else f"agents = {json.dumps(list(agents))}")
        return "\n".join(lines) + "\n"


best_of_plans = st.builds(
    BestOfPlan, tasks=st.lists(st.lists(st.sampled_from("ab"), min_size=1, max_size=3).map(tuple), min_size=1,
                               max_size=3).map(tuple),
    max_concurrency=st.integers(1, 4), limits=st.tuples(st.sampled_from([1, 2, None]), st.sampled_from([1, None])))


@settings(max_examples=8, deadline=None)
@given(best_of_plans)
def test_best_of_candidates_keep_the_run_and_agent_limits(p: BestOfPlan):
    with tempfile.TemporaryDirectory() as tmp:
        ws, marks = Path(tmp) / "repo", Path(tmp) / "marks"
        ws.mkdir()
        marks.mkdir()
        init_repo(ws)

        async def go():
            run, _ = await make_run(ws, p.toml(marks))
            with anyio.fail_after(60):
                return await run.execute()

        result = anyio.run(go)
        assert {t.status for t in result.tasks} == {TaskStatus.SUCCEEDED}  # nobody failed for want of a slot
        spans = agent_spans(marks)
        for agent, limit in zip("ab", p.limits, strict=True):
            ran = spans.get(agent, [])
            assert len(ran) == sum(agents.count(agent) for agents in p.tasks)  # every candidate ran
            assert max_overlap(ran) <= min(limit or p.max_concurrency, p.max_concurrency), (agent, p)
        assert max_overlap([s for ran in spans.values() for s in ran]) <= p.max_concurrency
