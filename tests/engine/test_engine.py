"""The engine with real subprocesses: ordering, limits, isolation of failures, retries, timeouts, cancel, journal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest

from parex_lsp.engine import RunOptions
from parex_lsp.engine.journal import replay
from parex_lsp.isolation.processes import process_start
from tests.support.engine_helpers import intervals, make_run, max_overlap, stamped


def task(tid: str, prompt: str, **fields) -> str:
    lines = ["[[task]]", f"id = {json.dumps(tid)}", f"prompt = {json.dumps(prompt)}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


async def test_dependents_start_only_after_their_dependencies_succeed(workspace: Path):
    toml = "[run]\nmax_concurrency = 4\n" + "".join([
        task("a", stamped("a", "sleep 0.3")),
        task("b", stamped("b", "sleep 0.1")),
        task("c", stamped("c", "true"), depends_on=["a", "b"]),
        task("d", stamped("d", "true"), depends_on=["c"]),
    ])
    run, rec = await make_run(workspace, toml)
    result = await run.execute()
    assert result.status == "succeeded", result.to_wire()
    t = intervals(workspace / "t")
    assert t["c"][0] >= max(t["a"][1], t["b"][1])
    assert t["d"][0] >= t["c"][1]
    # a and b are independent: they ran at the same time
    assert t["b"][0] < t["a"][1]


async def test_a_task_starts_when_its_own_dependencies_are_done_not_the_whole_level(workspace: Path):
    toml = "[run]\nmax_concurrency = 4\n" + "".join([
        task("slow", stamped("slow", "sleep 1")),
        task("fast", stamped("fast", "sleep 0.1")),
        task("after-fast", stamped("after-fast", "true"), depends_on=["fast"]),
    ])
    run, _ = await make_run(workspace, toml)
    assert (await run.execute()).status == "succeeded"
    t = intervals(workspace / "t")
    assert t["after-fast"][1] < t["slow"][1]  # it did not wait for the slow task of the level before


async def test_global_limit_is_reached_and_never_exceeded(workspace: Path):
    toml = "[run]\nmax_concurrency = 3\n" + "".join(task(f"t{i}", stamped(f"t{i}", "sleep 0.3")) for i in range(9))
    run, _ = await make_run(workspace, toml)
    assert (await run.execute()).status == "succeeded"
    assert max_overlap(intervals(workspace / "t").values()) == 3


async def test_per_agent_limit_is_reached_and_never_exceeded(workspace: Path):
    toml = ('[run]\nmax_concurrency = 6\n[agents.slow]\nkind = "shell"\nmax_concurrency = 2\n'
            + "".join(task(f"s{i}", stamped(f"s{i}", "sleep 0.3"), agent="slow") for i in range(6))
            + "".join(task(f"f{i}", stamped(f"f{i}", "sleep 0.3")) for i in range(4)))
    run, _ = await make_run(workspace, toml)
    assert (await run.execute()).status == "succeeded"
    spans = intervals(workspace / "t")
    assert max_overlap([v for k, v in spans.items() if k.startswith("s")]) == 2
    assert max_overlap(spans.values()) <= 6
    assert max_overlap(spans.values()) >= 5  # the other agent's tasks filled the free slots


async def test_a_failure_skips_only_its_dependents(workspace: Path):
    toml = "".join([
        task("bad", "echo about to fail; exit 3"),
        task("child", "echo never", depends_on=["bad"]),
        task("grandchild", "echo never", depends_on=["child"]),
        task("fine", "sleep 0.2; echo fine"),
        task("after-fine", "echo ok", depends_on=["fine"]),
    ])
    run, rec = await make_run(workspace, toml)
    result = await run.execute()
    by_id = {t.id: t for t in result.tasks}
    assert result.status == "failed"
    assert by_id["bad"].status == "failed" and by_id["bad"].exit_code == 3 and by_id["bad"].code == "exit-code"
    assert by_id["child"].status == "skipped" and by_id["child"].code == "dependency-failed"
    assert by_id["grandchild"].status == "skipped"
    assert by_id["fine"].status == by_id["after-fine"].status == "succeeded"
    failed = rec.of("failed")[0]
    assert failed.data.tail == ("about to fail",)
    assert Path(failed.data.log_path).read_text() == "about to fail\n"


async def test_transient_failure_is_retried_to_success(workspace: Path):
    toml = ('[run]\nretry_backoff = 0.05\n[agents.shell]\nretry_on = ["rate limit"]\n'
            + task("flaky", "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; "
                            "if [ $n -lt 2 ]; then echo 'error: rate limit'; exit 1; fi; echo done", retries=3))
    run, rec = await make_run(workspace, toml)
    result = await run.execute()
    assert result.status == "succeeded"
    assert result.tasks[0].attempts == 3
    retries = rec.of("retrying")
    assert [e.attempt for e in retries] == [1, 2]
    assert all(e.data.delay > 0 for e in retries)


async def test_transient_failure_exhausts_its_retries(workspace: Path):
    toml = ('[run]\nretry_backoff = 0.01\n[agents.shell]\nretry_on = ["overloaded"]\n'
            + task("down", "echo 503 overloaded; exit 1", retries=2))
    run, _ = await make_run(workspace, toml)
    t = (await run.execute()).tasks[0]
    assert (t.status, t.attempts, t.code) == ("failed", 3, "retries-exhausted")
    assert "gave up after 3 attempts" in t.error


async def test_transient_failures_are_retried_by_default_and_the_plan_can_say_otherwise(workspace: Path):
    flaky = "echo try >> tries; echo 'HTTP 429 rate limit'; exit 1"
    toml = '[run]\nretry_backoff = 0.01\n[agents.shell]\nretry_on = ["429"]\n' + task("fanout", flaky)
    run, _ = await make_run(workspace, toml)
    t = (await run.execute()).tasks[0]
    assert (t.attempts, t.code) == (3, "retries-exhausted")  # [run] retries defaults to 2
    (workspace / "tries").unlink()
    run, _ = await make_run(workspace, toml.replace("[run]\n", "[run]\nretries = 0\n"))
    t = (await run.execute()).tasks[0]
    assert (t.attempts, t.code) == (1, "exit-code")
    assert (workspace / "tries").read_text().split() == ["try"]


async def test_permanent_failure_is_tried_once(workspace: Path):
    toml = ('[run]\nretry_backoff = 0.01\n[agents.shell]\nretry_on = ["rate limit"]\n'
            + task("broken", "echo 'syntax error'; exit 2", retries=3))
    run, rec = await make_run(workspace, toml)
    t = (await run.execute()).tasks[0]
    assert (t.status, t.attempts, t.code) == ("failed", 1, "exit-code")
    assert rec.of("retrying") == []


def _gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init to reap it (it no longer runs)."""
    return process_start(pid) is None


async def _wait_gone(pid: int, within: float = 5.0) -> bool:
    """Signals take a moment to land on a loaded machine; a live process after `within` is a leak."""
    with anyio.move_on_after(within):
        while not _gone(pid):
            await anyio.sleep(0.02)
    return _gone(pid)


async def test_timeout_ends_the_whole_process_group(workspace: Path):
    # The task starts a grandchild that would outlive a naive kill of the shell.
    toml = "[run]\nkill_grace = 1\n" + task("hang", "sh -c 'echo $$ > grandchild.pid; exec sleep 60' & wait",
                                             timeout=1)
    run, _ = await make_run(workspace, toml)
    started = time.monotonic()
    t = (await run.execute()).tasks[0]
    assert (t.status, t.code) == ("failed", "timeout")
    assert time.monotonic() - started < 20
    pid = int((workspace / "grandchild.pid").read_text())
    assert await _wait_gone(pid), "the grandchild outlived the timeout"


async def test_cancel_one_task_ends_its_process_group_and_spares_the_rest(workspace: Path):
    toml = "".join([
        task("victim", "sh -c 'echo $$ > victim.pid; exec sleep 60' & wait"),
        task("dependent", "echo never", depends_on=["victim"]),
        task("other", "sleep 0.5; echo other done"),
    ])
    run, _ = await make_run(workspace, toml)
    async with anyio.create_task_group() as tg:
        async def cancel_when_started():
            while not (workspace / "victim.pid").exists():
                await anyio.sleep(0.02)
            assert run.cancel("victim") == ["victim"]
        tg.start_soon(cancel_when_started)
        result = await run.execute()
    by_id = {t.id: t for t in result.tasks}
    assert by_id["victim"].status == "cancelled" and by_id["victim"].code == "cancelled"
    assert by_id["dependent"].status == "skipped"
    assert by_id["other"].status == "succeeded"
    assert result.status == "failed"  # the run itself was not cancelled
    assert await _wait_gone(int((workspace / "victim.pid").read_text()))


async def test_cancel_the_run(workspace: Path):
    toml = "[run]\nmax_concurrency = 2\n" + "".join(task(f"t{i}", f"echo $$ > t{i}.pid; exec sleep 60") for i in range(4))
    run, _ = await make_run(workspace, toml)
    async with anyio.create_task_group() as tg:
        async def cancel_soon():
            while len(list(workspace.glob("*.pid"))) < 2:
                await anyio.sleep(0.02)
            run.cancel()
        tg.start_soon(cancel_soon)
        result = await run.execute()
    assert result.status == "cancelled"
    assert {t.status for t in result.tasks} == {"cancelled"}
    for p in workspace.glob("*.pid"):
        assert await _wait_gone(int(p.read_text()))


async def test_fail_fast_cancels_the_rest(workspace: Path):
    toml = "[run]\nfail_fast = true\nmax_concurrency = 2\n" + task("bad", "sleep 0.2; exit 1") + task("long", "sleep 30")
    run, _ = await make_run(workspace, toml)
    result = await run.execute()
    by_id = {t.id: t for t in result.tasks}
    assert by_id["bad"].status == "failed" and by_id["long"].status == "cancelled"


async def test_a_missing_agent_executable_fails_clearly(workspace: Path):
    toml = '[agents.ghost]\ncommand = ["parex-no-such-agent", "{prompt}"]\n' + task("t", "hi", agent="ghost")
    run, _ = await make_run(workspace, toml)
    t = (await run.execute()).tasks[0]
    assert (t.status, t.code) == ("failed", "agent-not-found")
    assert "parex-no-such-agent" in t.error and "not found" in t.error


async def test_prompt_reaches_a_command_agent_as_one_literal_argument(workspace: Path):
    prompt = "x'; touch pwned; echo \"$(touch pwned2)\" `touch pwned3` && rm -rf / ; $HOME | > out"
    toml = ('[agents.argv]\ncommand = ["python3", "-c", "import json,sys; json.dump(sys.argv[1:], open(\'argv.json\',\'w\'))",'
            ' "{prompt}", "--task={task_id}"]\n' + task("t", prompt, agent="argv"))
    run, _ = await make_run(workspace, toml)
    assert (await run.execute()).status == "succeeded"
    assert json.loads((workspace / "argv.json").read_text()) == [prompt, "--task=t"]
    assert not any((workspace / name).exists() for name in ("pwned", "pwned2", "pwned3", "out"))


async def test_output_floods_stay_bounded_in_memory_and_complete_in_the_log(workspace: Path):
    toml = task("flood", "seq 200000")
    run, rec = await make_run(workspace, toml)
    result = await run.execute()
    assert result.status == "succeeded"
    log = Path(result.tasks[0].log_path).read_text().splitlines()
    assert len(log) == 200000 and log[-1] == "200000"
    assert len(run.tasks["flood"].output.tail) == 20
    chunks = rec.of("output")
    assert "".join(e.data.text for e in chunks).count("\n") == 200000
    assert len(chunks) < 2000  # pipe-sized chunks, not one event a line


async def test_journal_rebuilds_the_run_and_ignores_parex_dir_in_git(workspace: Path):
    (workspace / ".git").mkdir()  # ensure_state_dir only looks for a checkout
    run, rec = await make_run(workspace, task("ok", "echo ok") + task("no", "exit 4"))
    await run.execute()
    record = replay(workspace / ".parex" / "runs" / run.run_id / "journal.jsonl")
    assert record.status == "failed"
    assert {t.id: (t.status, t.exit_code) for t in record.tasks.values()} == {"ok": ("succeeded", 0), "no": ("failed", 4)}
    assert not (workspace / ".gitignore").exists()  # parex creates no file of the person's repository
    assert "/.parex/" in (workspace / ".git" / "info" / "exclude").read_text().splitlines()
    # every event a sink saw is in the journal, in order; the journal also keeps each agent's pid for crash recovery
    lines = (workspace / ".parex" / "runs" / run.run_id / "journal.jsonl").read_text().splitlines()
    journaled = [json.loads(line) for line in lines]
    assert [(e["kind"], e["taskId"]) for e in journaled if e["kind"] != "spawned"] == [
        (e.kind, e.task_id) for e in rec.events]
    assert {e["taskId"] for e in journaled if e["kind"] == "spawned"} == {"ok", "no"}


async def test_resume_skips_succeeded_tasks_and_reruns_the_rest(workspace: Path):
    toml = "".join([
        task("a", "echo a >> ran"),
        task("b", "echo b >> ran; test -e fixed"),
        task("c", "echo c >> ran", depends_on=["b"]),
    ])
    first, _ = await make_run(workspace, toml)
    assert (await first.execute()).status == "failed"
    (workspace / "fixed").touch()
    second, rec = await make_run(workspace, toml, RunOptions(resume="last"))
    result = await second.execute()
    assert result.status == "succeeded"
    assert sorted((workspace / "ran").read_text().split()) == ["a", "b", "b", "c"]  # a ran once
    assert {t.id: t.reused_from for t in result.tasks}["a"] == first.run_id


async def test_only_runs_the_named_tasks_when_their_dependencies_succeeded(workspace: Path):
    toml = task("a", "echo a >> ran") + task("b", "echo b >> ran", depends_on=["a"])
    first, _ = await make_run(workspace, toml)
    await first.execute()
    again, _ = await make_run(workspace, toml, RunOptions(only=["b"]))
    result = await again.execute()
    assert [t.id for t in result.tasks] == ["b"] and result.status == "succeeded"
    assert sorted((workspace / "ran").read_text().split()) == ["a", "b", "b"]


async def test_critical_path_goes_first(workspace: Path):
    # With one slot, the head of the long chain must run before the independent short tasks.
    toml = "[run]\nmax_concurrency = 1\n" + "".join([
        task("short1", "echo short1 >> order"),
        task("short2", "echo short2 >> order"),
        task("head", "echo head >> order"),
        task("mid", "echo mid >> order", depends_on=["head"]),
        task("tail", "echo tail >> order", depends_on=["mid"]),
    ])
    run, _ = await make_run(workspace, toml)
    await run.execute()
    assert (workspace / "order").read_text().split()[0] == "head"


async def test_overlapping_file_sets_never_run_together(workspace: Path):
    toml = "[run]\nmax_concurrency = 4\n" + "".join(
        task(f"w{i}", stamped(f"w{i}", "sleep 0.2"), files=["shared/*.txt" if i % 2 else "shared/a.txt"])
        for i in range(4)) + task("free", stamped("free", "sleep 0.2"), files=["other.txt"])
    run, rec = await make_run(workspace, toml)
    assert (await run.execute()).status == "succeeded"
    spans = intervals(workspace / "t")
    assert max_overlap([v for k, v in spans.items() if k.startswith("w")]) == 1
    assert max_overlap(spans.values()) == 2  # the task with its own file ran alongside
    waits = rec.of("lockWait")
    assert waits and "held by task" in waits[0].data.message


async def test_lock_timeout_fails_the_waiting_task(workspace: Path):
    toml = ("[run]\nmax_concurrency = 2\n" + task("holder", "sleep 2", files=["f.txt"])
            + task("waiter", "echo never", files=["f.txt"], lock_timeout=0.3))
    run, _ = await make_run(workspace, toml)
    by_id = {t.id: t for t in (await run.execute()).tasks}
    assert by_id["holder"].status == "succeeded"
    assert (by_id["waiter"].status, by_id["waiter"].code) == ("failed", "lock-timeout")
    assert "f.txt" in by_id["waiter"].error


@pytest.mark.parametrize("n", [16])
async def test_many_tasks_appending_to_one_file_keep_every_line_contiguous(workspace: Path, n: int):
    body = "for i in $(seq 200); do echo \"$PAREX_TASK_ID $i\" >> shared.log; done"
    toml = "[run]\nmax_concurrency = 8\n" + "".join(task(f"a{i}", body, files=["shared.log"]) for i in range(n))
    run, _ = await make_run(workspace, toml)
    assert (await run.execute()).status == "succeeded"
    lines = (workspace / "shared.log").read_text().splitlines()
    assert len(lines) == n * 200
    owners = [ln.split()[0] for ln in lines]
    runs_of_owner = [o for i, o in enumerate(owners) if i == 0 or owners[i - 1] != o]
    assert sorted(runs_of_owner) == sorted(f"a{i}" for i in range(n))  # each task's lines in one block


async def test_last_is_the_latest_run_even_within_one_second(workspace: Path):
    from parex_lsp.engine.journal import find_run

    ids = []
    for _ in range(4):
        run, _ = await make_run(workspace, task("quick", "true"))
        await run.execute()
        ids.append(run.run_id)
    assert ids == sorted(ids)
    assert find_run(workspace, "last", run.plan_key).parent.name == ids[-1]
