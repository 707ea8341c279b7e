"""Diagnostics: live plan validation while typing, task failures at their lines, file:line output, code actions."""

from __future__ import annotations

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support.lsp_helpers import initialize, line_of, request, wait_until, write_plan

FAILING = """
[[task]]
id = "lint"
prompt = "echo checking; echo 'src/app.py:2:5: undefined name x'; echo 'elsewhere.py:1: outside'; exit 3"

[[task]]
id = "report"
prompt = "echo report"
depends_on = ["lint"]

[[task]]
id = "fine"
prompt = "echo fine"
"""

INVALID = """
[[task]]
id = "a"
prompt = "echo a"
depends_on = ["missing"]

[[task]]
id = "a"
prompt = "echo again"
"""

VALID = """
[[task]]
id = "a"
prompt = "echo a"
"""


def by_code(diags) -> dict:
    return {d.code: d for d in diags}


async def test_failed_task_diagnostic_output_diagnostics_and_code_actions(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, FAILING)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("import os\nprint(x)\n")
    await initialize(client, tmp_path)

    result = await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}})

    run_id = result["runId"]
    assert result["status"] == "failed"
    assert {t["id"]: t["status"] for t in result["tasks"]} == {"lint": "failed", "report": "skipped",
                                                               "fine": "succeeded"}
    diags = client.diagnostics[plan.as_uri()]
    assert len(diags) == 2
    failed = by_code(diags)["exit-code"]
    assert failed.range.start.line == line_of(plan, 'id = "lint"')
    assert failed.severity == types.DiagnosticSeverity.Error and failed.source == "parex"
    assert "undefined name x" in failed.message  # the reason and the tail of the output
    assert failed.data == {"runId": run_id, "taskId": "lint"}
    assert failed.related_information[0].location.uri == (tmp_path / f".parex/runs/{run_id}/lint.log").as_uri()
    skipped = by_code(diags)["dependency-failed"]
    assert skipped.range.start.line == line_of(plan, 'id = "report"')
    assert skipped.severity == types.DiagnosticSeverity.Warning

    app = (tmp_path / "src" / "app.py").as_uri()
    [named] = client.diagnostics[app]
    assert (named.range.start.line, named.range.start.character) == (1, 4)
    assert named.message == "[lint] undefined name x" and named.source == "parex"
    assert not any("elsewhere" in uri for uri in client.diagnostics)  # no such file in the workspace

    actions = await request(client, "textDocument/codeAction", types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=plan.as_uri()), range=failed.range,
        context=types.CodeActionContext(diagnostics=[failed])))
    assert [(a["title"], a["kind"], a["command"]["command"], a["command"]["arguments"]) for a in actions] == [
        ("Retry task lint", "quickfix", "parex.retryTask", [{"runId": run_id, "taskId": "lint"}]),
        ("Show log", "quickfix", "parex.showLog", [{"runId": run_id, "taskId": "lint"}])]

    # fix the task on disk, then retry it from the code action's command: a rerun clears its diagnostics
    plan.write_text(plan.read_text().replace("exit 3", "exit 0"))
    retry = await request(client, "workspace/executeCommand", types.ExecuteCommandParams(
        command="parex.retryTask", arguments=[{"runId": run_id, "taskId": "lint"}]))
    finished = await wait_until(lambda: [e for e in client.events if e["runId"] == retry["runId"]
                                         and e["kind"] == "runFinished"], "the retry to finish")
    data = finished[0]["data"]
    assert data["status"] == "succeeded"
    assert [t["id"] for t in data["tasks"] if "reusedFrom" not in t] == ["lint"]
    started = [e for e in client.events if e["runId"] == retry["runId"] and e["kind"] == "runStarted"][0]
    assert started["data"]["resumedFrom"] == run_id
    assert list(client.diagnostics[app]) == []
    assert [d.code for d in client.diagnostics[plan.as_uri()]] == ["dependency-failed"]  # `report` was not rerun


async def test_live_validation_while_typing(client: LanguageClient, tmp_path):
    plan = tmp_path / "build.parex.toml"
    uri = plan.as_uri()
    await initialize(client, tmp_path)

    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="toml", version=1, text=INVALID.lstrip())))
    diags = await wait_until(lambda: client.diagnostics.get(uri), "validation diagnostics")
    assert sorted(d.code for d in diags) == ["duplicate-id", "unknown-dependency"]
    assert all(d.source == "parex" and d.severity == types.DiagnosticSeverity.Error for d in diags)
    lines = INVALID.lstrip().splitlines()
    dup = by_code(diags)["duplicate-id"]
    assert lines[dup.range.start.line] == 'id = "a"' and dup.range.start.line > 3

    # typing: a TOML syntax error, then a valid plan (full-text changes)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="[[task]]\nid = \n")]))
    diags = await wait_until(lambda: [d for d in client.diagnostics.get(uri, []) if d.code not in
                                      ("duplicate-id", "unknown-dependency")], "syntax diagnostics")
    assert len(client.diagnostics[uri]) == 1 and diags[0].range.start.line == 1

    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=VALID.lstrip())]))
    await wait_until(lambda: list(client.diagnostics.get(uri, [None])) == [], "diagnostics cleared")

    # the open buffer is what runs, not the (absent) file on disk
    result = await request(client, "parex/run", {"plan": {"uri": uri}})
    assert result["status"] == "succeeded" and [t["id"] for t in result["tasks"]] == ["a"]


async def test_run_diagnostics_and_validation_merge_on_one_document(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, FAILING)
    uri = plan.as_uri()
    await initialize(client, tmp_path)
    await request(client, "parex/run", {"plan": {"uri": uri}})
    assert len(client.diagnostics[uri]) == 2

    # an edit that breaks the plan: validation problems join the run's diagnostics, replacing none of them
    text = plan.read_text() + '\n[[task]]\nid = "fine"\nprompt = "again"\n'
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="toml", version=1, text=text)))
    diags = await wait_until(lambda: len(client.diagnostics[uri]) == 3 and client.diagnostics[uri], "merged")
    assert sorted(d.code for d in diags) == ["dependency-failed", "duplicate-id", "exit-code"]
