"""A retry of a task an ended run left ready, through the engine (`RunOptions.retry`), on real git repositories:
the task runs even when an older run had it succeed, on a branch made at the kept branch's head; a kept branch
that went away before the task started fails it, naming the branch; which waiting dependents run with it."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from parex_lsp.engine import RunOptions
from parex_lsp.engine.journal import find_run, replay
from parex_lsp.engine.review_later import retry_of, split_dependents
from tests.support.engine_helpers import make_run
from tests.support.review_plans import B_WINS, git, init_repo

PLAN = """
[run]
isolation = "worktree"

[[task]]
id = "t"
prompt = 'echo "n=${PAREX_FEEDBACK:-none}" >> f.txt'
"""


async def test_a_retry_runs_the_task_even_if_an_older_run_had_it_succeed(tmp_path: Path):
    init_repo(tmp_path)
    first, _ = await make_run(tmp_path, PLAN)
    assert (await first.execute()).status == "succeeded"
    held, _ = await make_run(tmp_path, PLAN, RunOptions(only=["t"], merge="review"))
    assert (await held.execute()).status == "ready"
    kept = git(tmp_path, "rev-parse", f"parex/{held.run_id}/t")

    got = retry_of(tmp_path, held.run_id, "t", "more")
    assert (got.dependents, got.waiting) == ([], [])
    again, rec = await make_run(tmp_path, PLAN, RunOptions(retry=got.retry))
    assert list(again.tasks) == ["t"]
    result = await again.execute()
    assert {t.id: t.status for t in result.tasks} == {"t": "succeeded"}  # the plan merges at once
    assert (tmp_path / "f.txt").read_text() == "n=none\nn=none\nn=more\n"
    assert git(tmp_path, "merge-base", "--is-ancestor", kept, "main") == ""
    journal = find_run(tmp_path, held.run_id)
    assert journal is not None
    t = replay(journal).tasks["t"]
    assert (t.status, t.review["retriedIn"]) == ("queued", again.run_id)


async def test_a_kept_branch_gone_before_the_task_starts_fails_it_by_name(tmp_path: Path):
    init_repo(tmp_path)
    held, _ = await make_run(tmp_path, PLAN, RunOptions(merge="review"))
    assert (await held.execute()).status == "ready"
    got = retry_of(tmp_path, held.run_id, "t", "more")
    git(tmp_path, "branch", "-D", f"parex/{held.run_id}/t")
    again, _ = await make_run(tmp_path, PLAN, RunOptions(retry=got.retry))
    [t] = (await again.execute()).tasks
    assert t.status == "failed"
    assert t.error == f"branch parex/{held.run_id}/t of task t no longer exists: there is no earlier work to continue from"
    assert not (tmp_path / "f.txt").exists()


@st.composite
def graphs(draw):
    """A plan's dependencies (acyclic, in a shuffled plan order), the task retried, the tasks that never started
    in the ended run and those that succeeded there."""
    n = draw(st.integers(2, 9))
    ids = [f"t{i}" for i in range(n)]
    deps = {ids[i]: draw(st.lists(st.sampled_from(ids[:i]), unique=True, max_size=3)) if i else [] for i in range(n)}
    order = draw(st.permutations(ids))
    task = draw(st.sampled_from(ids))
    others = [i for i in ids if i != task]
    never = set(draw(st.lists(st.sampled_from(others), unique=True))) if others else set()
    succeeded = set(draw(st.lists(st.sampled_from([i for i in others if i not in never]), unique=True))) \
        if len(never) < len(others) else set()
    return {i: deps[i] for i in order}, task, never, succeeded


@settings(max_examples=200, deadline=None)
@given(graphs(), st.booleans())
def test_dependents_of_a_retry_run_now_only_when_they_can(graph, asked: bool):
    deps, task, never, succeeded = graph
    run_now, waiting = split_dependents(task, deps, never, succeeded, asked)
    below = {task}  # what waits on the task: never started, a dependency among the task and those
    while True:
        more = {d for d in never if d not in below and any(x in below for x in deps[d])}
        if not more:
            break
        below |= more
    assert set(run_now) | set(waiting) == below - {task} and not set(run_now) & set(waiting)
    order = list(deps)
    assert run_now == sorted(run_now, key=order.index) and waiting == sorted(waiting, key=order.index)
    if not asked:
        assert run_now == []
        return
    ok = {task, *run_now, *succeeded}
    assert all(all(x in ok for x in deps[d]) for d in run_now)  # each can start once the task lands
    assert all(any(x not in ok for x in deps[d]) for d in waiting)  # and none is left out that could


async def test_a_retry_of_an_ended_best_of_task_runs_the_winners_agent(tmp_path: Path):
    """The kept branch is the winner's work: its agent continues it, not the task's first agent."""
    init_repo(tmp_path)
    held, _ = await make_run(tmp_path, B_WINS)
    assert (await held.execute()).status == "ready"
    got = retry_of(tmp_path, held.run_id, "pick", "more")
    assert got.retry.agent == "b"
    again, _ = await make_run(tmp_path, B_WINS, RunOptions(retry=got.retry, merge="auto"))
    assert (await again.execute()).status == "succeeded"
    assert (tmp_path / "out.txt").read_text().splitlines() == ["by b first", "by b more"]


async def test_a_retry_cancelled_before_its_task_starts_leaves_the_task_ready_in_the_ended_run(tmp_path: Path):
    """The ended run names the run that took its task over only once that run holds the kept work: a retry
    whose run is cancelled before can be retried again, and still continues the kept branch."""
    init_repo(tmp_path)
    held, _ = await make_run(tmp_path, PLAN, RunOptions(merge="review"))
    assert (await held.execute()).status == "ready"
    kept = git(tmp_path, "rev-parse", f"parex/{held.run_id}/t")

    cancelled, _ = await make_run(tmp_path, PLAN, RunOptions(retry=retry_of(tmp_path, held.run_id, "t", "one").retry))
    cancelled.add_sink(lambda e: cancelled.cancel() if (e.kind, e.task_id) == ("queued", "t") else None)
    assert (await cancelled.execute()).status == "cancelled"
    journal = find_run(tmp_path, held.run_id)
    assert journal is not None and replay(journal).tasks["t"].status == "ready"

    again, _ = await make_run(tmp_path, PLAN, RunOptions(retry=retry_of(tmp_path, held.run_id, "t", "two").retry))
    assert (await again.execute()).status == "succeeded"
    assert git(tmp_path, "merge-base", "--is-ancestor", kept, "main") == ""
    assert (tmp_path / "f.txt").read_text() == "n=none\nn=two\n"
