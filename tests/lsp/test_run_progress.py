"""parex/run over the real server: results, per-task progress, taskEvents, every plan form."""

from __future__ import annotations

from pytest_lsp import LanguageClient

from tests.support.lsp_helpers import events, initialize, kinds, request, wait_until, write_plan

PLAN = """
[run]
max_concurrency = 4

[[task]]
id = "greet"
prompt = "echo hello; sleep 0.3; echo done"

[[task]]
id = "other"
prompt = "echo other"

[[task]]
id = "after"
prompt = "echo after"
depends_on = ["greet"]
"""


async def test_run_reports_progress_per_task(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, PLAN)
    await initialize(client, tmp_path)

    result = await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}})

    run_id = result["runId"]
    assert result["status"] == "succeeded"
    assert {t["id"]: t["status"] for t in result["tasks"]} == {"greet": "succeeded", "other": "succeeded",
                                                               "after": "succeeded"}
    assert result["tasks"][0]["logUri"].endswith(f".parex/runs/{run_id}/greet.log")

    run_reports = client.progress_reports[f"parex/{run_id}"]
    assert kinds(run_reports)[0] == "begin" and kinds(run_reports)[-1] == "end"
    assert set(kinds(run_reports)[1:-1]) <= {"report"}
    assert run_reports[0].title == "parex: 3 tasks" and run_reports[0].cancellable
    assert run_reports[-2].percentage == 100 and run_reports[-2].message.startswith("3/3 done")
    assert run_reports[-1].message.startswith("succeeded: 3 succeeded")

    for task in ("greet", "other", "after"):
        reports = client.progress_reports[f"parex/{run_id}/{task}"]
        assert reports[0].kind == "begin" and reports[0].title == task and reports[0].cancellable
        assert set(kinds(reports)[1:-1]) <= {"report"}
        assert reports[-1].kind == "end" and reports[-1].message == "succeeded"
    greet = client.progress_reports[f"parex/{run_id}/greet"]
    assert greet[-2].message == "done"  # the last line is flushed before the end

    greet_events = [e["kind"] for e in events(client, run_id, "greet") if e["kind"] != "output"]
    assert greet_events == ["queued", "started", "succeeded"]
    text = "".join(e["data"]["text"] for e in events(client, run_id, "greet", "output"))
    assert text == "hello\ndone\n"
    assert [e["kind"] for e in events(client, run_id) if e["taskId"] is None] == ["runStarted", "runFinished"]
    # `after` waited for `greet`
    started_after = events(client, run_id, "after", "started")[0]["timestamp"]
    assert started_after >= events(client, run_id, "greet", "succeeded")[0]["timestamp"]


async def test_client_work_done_token_carries_run_progress(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, PLAN)
    await initialize(client, tmp_path)
    client.progress_reports["my-token"] = []  # the client made this token itself

    result = await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}, "workDoneToken": "my-token"})

    reports = client.progress_reports["my-token"]
    assert kinds(reports)[0] == "begin" and kinds(reports)[-1] == "end"
    assert f"parex/{result['runId']}" not in client.progress_reports
    assert client.progress_reports[f"parex/{result['runId']}/greet"][-1].message == "succeeded"


async def test_client_without_progress_gets_task_events_only(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, PLAN)
    await initialize(client, tmp_path, progress=False)

    result = await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}})

    assert result["status"] == "succeeded"
    assert client.progress_reports == {}  # no token created, no $/progress
    assert {e["taskId"] for e in events(client, result["runId"], kind="succeeded")} == {"greet", "other", "after"}


async def test_call_plan_from_a_document_range_and_inline_plan(client: LanguageClient, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# todo\ncall1: echo one\ncall2: echo two\n\ncall3: echo three\n")
    (tmp_path / "parex.toml").write_text('[run]\ncall_agent = "shell"  # these callN: lines are commands\n')
    await initialize(client, tmp_path)

    result = await request(client, "parex/run", {"plan": {"uri": notes.as_uri(), "range": {
        "start": {"line": 1, "character": 0}, "end": {"line": 3, "character": 0}}}})
    assert [(t["id"], t["status"]) for t in result["tasks"]] == [("call1", "succeeded"), ("call2", "succeeded")]
    out = "".join(e["data"]["text"] for e in events(client, result["runId"], "call2", "output"))
    assert out == "two\n"

    result = await request(client, "parex/run", {"plan": {"tasks": [
        {"id": "a", "prompt": "echo A > a.txt"},
        {"id": "b", "prompt": "cat a.txt", "dependsOn": ["a"]}]}, "maxConcurrency": 1})
    assert result["status"] == "succeeded"
    out = "".join(e["data"]["text"] for e in events(client, result["runId"], "b", "output"))
    assert out == "A\n"
    assert (tmp_path / "a.txt").read_text() == "A\n"  # inline plans run in the workspace root


async def test_detached_run_answers_at_once_and_goes_on(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, PLAN)
    await initialize(client, tmp_path)

    answer = await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}, "detach": True})

    assert set(answer) == {"runId"}
    finished = await wait_until(lambda: events(client, answer["runId"], kind="runFinished"), "runFinished")
    assert finished[0]["data"]["status"] == "succeeded"


async def test_output_flood_arrives_whole_and_in_order(client: LanguageClient, tmp_path):
    # line-by-line writes from two tasks at once: every line arrives, in order, before the task's end
    loop = 'i=0; while [ $i -lt 3000 ]; do echo "{t} line $i"; i=$((i+1)); done'
    await initialize(client, tmp_path)
    result = await request(client, "parex/run", {"plan": {"tasks": [
        {"id": t, "prompt": loop.format(t=t)} for t in ("x", "y")]}})

    for t in ("x", "y"):
        mine = events(client, result["runId"], t)
        text = "".join(e["data"]["text"] for e in mine if e["kind"] == "output")
        assert text == "".join(f"{t} line {i}\n" for i in range(3000))
        assert [e["kind"] for e in mine if e["kind"] != "output"] == ["queued", "started", "succeeded"]
        assert mine[-1]["kind"] == "succeeded"
        reports = client.progress_reports[f"parex/{result['runId']}/{t}"]
        assert reports[-2].message == f"{t} line 2999" and reports[-1].message == "succeeded"


async def test_editor_runs_prune_old_runs_to_keep_runs(client: LanguageClient, tmp_path):
    """Runs started from an editor keep `.parex/runs/` to `[run] keep_runs` as terminal runs do: the newest
    runs, and the latest run of every plan (another plan's older run stays)."""
    other = write_plan(tmp_path, '[[task]]\nid = "x"\nprompt = "echo x"\n', name="other.parex.toml")
    plan = write_plan(tmp_path, '[run]\nkeep_runs = 2\n[[task]]\nid = "a"\nprompt = "echo a"\n')
    await initialize(client, tmp_path)
    kept_other = (await request(client, "parex/run", {"plan": {"uri": other.as_uri()}}))["runId"]
    ids = [(await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}}))["runId"] for _ in range(4)]
    runs = {p.name for p in (tmp_path / ".parex" / "runs").iterdir()}
    # each run prunes before it starts: the last one kept the newest two before it, and the other plan's
    # latest run although it is older
    assert runs == {kept_other, ids[1], ids[2], ids[3]}, runs
