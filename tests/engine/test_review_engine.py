"""Review mode, conflict prediction, verify and best-of through the engine, on real git repositories."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parex_lsp.engine import RunOptions
from parex_lsp.engine.review import Candidate, ReviewError, count_passed
from tests.support.engine_helpers import make_run, max_overlap
from tests.support.review_plans import (
    B_WINS,
    BEST_OF_RANKS,
    BEST_OF_TASK,
    CONFLICT_TASKS,
    REVIEW_PLAN,
    add_ranked_scripts,
    agent_spans,
    git,
    init_repo,
    marking,
    ranks,
)


async def wait_for(cond, timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not cond():
            await anyio.sleep(0.02)


async def test_accept_reject_retry(tmp_path: Path) -> None:
    ws = init_repo(tmp_path)
    run, rec = await make_run(ws, REVIEW_PLAN, RunOptions(hold_for_review=True))
    async with anyio.create_task_group() as tg:
        result_box = []

        async def go() -> None:
            result_box.append(await run.execute())

        tg.start_soon(go)
        await wait_for(lambda: {"good", "bad", "again"} <= {e.task_id for e in rec.of("ready")})
        ready = {e.task_id: e.data.to_wire() for e in rec.of("ready")}
        assert ready["good"]["changes"] == {"files": 1, "added": 1, "removed": 0, "commits": 1}
        assert run.tasks["after-good"].status == "pending"  # waits for the review
        assert not (ws / "good.txt").exists()  # nothing merged unseen
        diff = run.diff("good")
        assert [f["path"] for f in diff["files"]] == ["good.txt"]
        assert diff["files"][0]["result"] == "good\n" and diff["files"][0]["base"] is None
        assert "+good" in diff["diff"]

        await run.review("good", "accept")
        assert (ws / "good.txt").read_text() == "good\n"
        await run.review("bad", "reject")
        with pytest.raises(ReviewError, match="not ready"):
            await run.review("bad", "accept")
        with pytest.raises(ReviewError, match="needs feedback"):
            await run.review("again", "retry")
        await run.review("again", "retry", "please say hello")
        await wait_for(lambda: len([e for e in rec.of("ready") if e.task_id == "again"]) == 2)
        await run.review("again", "accept")
        await wait_for(lambda: run.tasks["after-good"].status == "succeeded")  # it ran after good was merged
    result = result_box[0]
    by_id = {t.id: t for t in result.tasks}
    assert result.status == "failed"  # a rejected task, like a skipped one
    assert by_id["good"].status == "succeeded" and by_id["after-good"].status == "succeeded"
    assert (ws / "seen-by-dependent.txt").read_text() == "good\n"  # the dependent started from the merged state
    assert by_id["bad"].status == "rejected" and by_id["after-bad"].status == "skipped"
    assert git(ws, "rev-parse", "--verify", f"refs/heads/parex/{run.run_id}/bad")  # rejected branch kept
    assert "never.txt" not in git(ws, "ls-files")
    assert (ws / "again.txt").read_text() == "attempt 1 feedback: none\nattempt 2 feedback: please say hello\n"
    assert {"taskId": "bad", "branch": f"parex/{run.run_id}/bad"} in result.kept


async def test_ready_tasks_end_a_run_that_does_not_wait(tmp_path: Path) -> None:
    ws = init_repo(tmp_path)
    run, rec = await make_run(ws, REVIEW_PLAN)
    result = await run.execute()
    assert result.status == "ready"
    statuses = {t.id: t.status for t in result.tasks}
    assert statuses == {"good": "ready", "after-good": "pending", "bad": "ready", "after-bad": "pending",
                        "again": "ready"}


CONFLICT_PLAN = '[run]\nisolation = "worktree"\nmerge = "review"\n' + CONFLICT_TASKS


async def test_conflict_predicted_before_the_second_merges(tmp_path: Path) -> None:
    ws = init_repo(tmp_path)
    run, rec = await make_run(ws, CONFLICT_PLAN, RunOptions(hold_for_review=True))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run.execute)
        await wait_for(lambda: len(rec.of("ready")) == 2)
        predicted = rec.of("conflictPredicted")
        assert {(e.task_id, e.data.other) for e in predicted} == {("left", "right"), ("right", "left")}
        assert all(e.data.files == ("shared.txt",) for e in predicted)
        head = git(ws, "rev-parse", "HEAD")
        await run.review("left", "accept")
        # the other branch now conflicts with the base branch itself, and says so before anyone merges it
        assert any(e.task_id == "right" and e.data.other is None for e in rec.of("conflictPredicted"))
        assert git(ws, "rev-parse", "HEAD") != head
        await run.review("right", "accept")
    right = run.tasks["right"].result
    assert right.status == "failed" and right.code == "merge-conflict"
    assert git(ws, "status", "--porcelain") == ""


VERIFY_PLAN = """
[run]
isolation = "worktree"
verify = "test ! -f broken.txt"

[[task]]
id = "fine"
prompt = "echo ok > fine.txt"

[[task]]
id = "breaks"
prompt = "echo x > broken.txt"
depends_on = ["fine"]

[[task]]
id = "after"
prompt = "true"
depends_on = ["breaks"]
"""


async def test_verify_failure_undoes_that_merge_alone(tmp_path: Path) -> None:
    ws = init_repo(tmp_path)
    run, rec = await make_run(ws, VERIFY_PLAN)
    heads = []
    run.add_sink(lambda e: heads.append(git(ws, "rev-parse", "HEAD")) if e.kind == "started"
                 and e.task_id == "breaks" else None)
    result = await run.execute()
    by_id = {t.id: t for t in result.tasks}
    assert by_id["fine"].status == "succeeded"
    assert by_id["breaks"].status == "failed" and by_id["breaks"].code == "verify-failed"
    assert by_id["after"].status == "skipped"
    assert git(ws, "rev-parse", "HEAD") == heads[0]  # exactly where it was before the failed merge
    assert (ws / "fine.txt").exists() and not (ws / "broken.txt").exists()
    assert git(ws, "show", f"parex/{run.run_id}/breaks:broken.txt") == "x"  # the branch is kept
    assert "verify `test ! -f broken.txt` exited with code 1" in by_id["breaks"].error


BEST_PLAN = '[run]\nisolation = "worktree"\nmax_concurrency = 3\n' + BEST_OF_TASK


async def test_best_of_three_ranks_by_the_check(tmp_path: Path) -> None:
    ws = init_repo(tmp_path)
    add_ranked_scripts(ws)
    run, rec = await make_run(ws, BEST_PLAN)
    result = await run.execute()
    task = result.tasks[0]
    assert task.status == "succeeded", task.error
    assert ranks(task.review["candidates"]) == BEST_OF_RANKS
    assert (ws / "result").read_text() == "5\n"  # the better candidate was merged
    for n in ("1", "2"):  # losing candidates are not failures; their branches are kept
        assert git(ws, "rev-parse", "--verify", f"refs/heads/parex/{run.run_id}/best@{n}")
    # each candidate's processes carry its own name
    assert [git(ws, "show", f"parex/{run.run_id}/best@{n}:out.txt") for n in (1, 2)] == ["best@1", "best@2"]
    assert (ws / "out.txt").read_text() == "best@3\n"


async def test_a_candidate_ending_leaves_its_siblings_processes_alone(tmp_path: Path) -> None:
    """Candidate 2 leaves a background process (adopted by the runner once its subshell exits) that must live
    until it has written its mark; candidate 1 ends meanwhile, and ending its tree must not take that along."""
    ws = init_repo(tmp_path)
    run, rec = await make_run(ws, """
[run]
isolation = "worktree"
max_concurrency = 2

[[task]]
id = "pair"
best_of = 2
prompt = "if [ ${PWD##*@} = 1 ]; then sleep 0.3; echo one > out.txt; else sh -c '(sleep 1; echo two > out.txt) &'; sleep 2; test -f out.txt; fi"
""")
    result = await run.execute()
    cands = result.tasks[0].review["candidates"]
    assert [(c["rank"] is not None, c.get("reason")) for c in cands] == [(True, None), (True, None)], cands


def test_tests_passed_reads_pytest_and_junit_summaries() -> None:
    assert count_passed(["==== 12 passed, 1 skipped in 0.5s ===="]) == 12
    assert count_passed(["Tests run: 10, Failures: 1, Errors: 1, Skipped: 2"]) == 6
    assert count_passed(["nothing here"]) is None


async def test_declared_file_overlaps_are_reported_before_the_tasks_start(tmp_path: Path) -> None:
    ws = init_repo(tmp_path)
    run, rec = await make_run(ws, """
[run]
isolation = "worktree"

[[task]]
id = "a"
prompt = "true"
files = ["src/**"]

[[task]]
id = "b"
prompt = "true"
files = ["src/app.py"]

[[task]]
id = "c"
prompt = "true"
files = ["docs/**"]
""")
    await run.execute()
    kinds = [(e.kind, e.task_id) for e in rec.events if e.kind in ("conflictPredicted", "started")]
    assert kinds[:2] == [("conflictPredicted", "a"), ("conflictPredicted", "b")]
    assert {e.task_id for e in rec.of("conflictPredicted")} == {"a", "b"}


@given(st.lists(st.tuples(st.sampled_from([True, False, None]), st.one_of(st.none(), st.integers(0, 50)),
                          st.integers(0, 500), st.integers(0, 10_000)), min_size=1, max_size=6))
def test_the_winner_passes_the_check_when_any_does_and_then_passes_the_most_tests(specs) -> None:
    cands = [Candidate(i, "a", f"b{i}", True, passed, tests, size, ms)
             for i, (passed, tests, size, ms) in enumerate(specs)]
    winner = min(cands, key=Candidate.sort_key)
    if any(c.check_passed is not False for c in cands):
        assert winner.check_passed is not False
    peers = [c for c in cands if (c.check_passed is False) == (winner.check_passed is False)]
    assert (winner.tests_passed or 0) == max(c.tests_passed or 0 for c in peers)
    same = [c for c in peers if (c.tests_passed or 0) == (winner.tests_passed or 0)]
    assert winner.diff_size == min(c.diff_size for c in same)


async def test_a_best_of_winner_is_reviewed_and_retried_on_its_own_branch(tmp_path: Path) -> None:
    ws = init_repo(tmp_path)
    run, rec = await make_run(ws, """
[run]
isolation = "worktree"
merge = "review"
check = "test -f out.txt"

[[task]]
id = "pick"
best_of = 2
prompt = "echo \\"${PWD##*/} ${PAREX_FEEDBACK:-first}\\" >> out.txt"
""", RunOptions(hold_for_review=True))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run.execute)
        await wait_for(lambda: rec.of("ready"))
        first = rec.of("ready")[0].data.to_wire()
        winner = next(c for c in first["candidates"] if c["rank"] == 1)
        assert first["branch"] == winner["branch"] and len(first["candidates"]) == 2
        await run.review("pick", "retry", "second pass")
        await wait_for(lambda: len(rec.of("ready")) == 2)
        assert rec.of("ready")[1].data.to_wire()["branch"] == winner["branch"]  # continued on the winner's branch
        await run.review("pick", "accept")
    lines = (ws / "out.txt").read_text().splitlines()
    assert lines[0].endswith(" first") and lines[1].endswith(" second pass") and len(lines) == 2


async def test_a_retry_of_a_best_of_task_runs_the_winners_agent(tmp_path: Path) -> None:
    """Candidates of two agents; only b's passes the check: the retry continues b's work with b, not with the
    task's first agent."""
    ws = init_repo(tmp_path)
    run, rec = await make_run(ws, B_WINS, RunOptions(hold_for_review=True))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run.execute)
        await wait_for(lambda: rec.of("ready"))
        winner = next(c for c in rec.of("ready")[0].data.to_wire()["candidates"] if c["rank"] == 1)
        assert winner["agent"] == "b", winner
        await run.review("pick", "retry", "second pass")
        await wait_for(lambda: len(rec.of("ready")) == 2)
        await run.review("pick", "accept")
    assert (ws / "out.txt").read_text().splitlines() == ["by b first", "by b second pass"]


async def test_candidates_wait_for_their_agents_slots(tmp_path: Path) -> None:
    """Agents limited to one process at once, a best-of task of three candidates on one of them, one with a
    candidate on each, and ordinary tasks on both: no agent ever runs two processes at once, and every candidate
    still runs (each waits its turn instead of failing)."""
    ws, marks = tmp_path / "repo", tmp_path / "marks"
    ws.mkdir()
    marks.mkdir()
    init_repo(ws)
    mark = marking(marks, 0.3)
    run, rec = await make_run(ws, f"""
[run]
isolation = "worktree"
max_concurrency = 6

[agents.a]
kind = "shell"
max_concurrency = 1
env = {{ AGENT = "a" }}

[agents.b]
kind = "shell"
max_concurrency = 1
env = {{ AGENT = "b" }}

[[task]]
id = "three-a"
agent = "a"
best_of = 3
prompt = "{mark}"

[[task]]
id = "a-and-b"
agents = ["a", "b"]
prompt = "{mark}"

[[task]]
id = "solo-a"
agent = "a"
prompt = "{mark}"

[[task]]
id = "solo-b"
agent = "b"
prompt = "{mark}"
""")
    result = await run.execute()
    assert {t.id: t.status for t in result.tasks} == dict.fromkeys(["three-a", "a-and-b", "solo-a", "solo-b"],
                                                                   "succeeded")
    for t in result.tasks[:2]:
        assert all(c["rank"] is not None for c in t.review["candidates"]), t.review["candidates"]
    spans = agent_spans(marks)
    assert (len(spans["a"]), len(spans["b"])) == (5, 2)  # three-a@1..3, a-and-b@1, solo-a; a-and-b@2, solo-b
    assert max_overlap(spans["a"]) == 1 and max_overlap(spans["b"]) == 1
