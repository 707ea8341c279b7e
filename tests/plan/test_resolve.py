"""One rule for every front end: which documents are plans, which folder is the workspace, which agent
answers `callN:` prompts; and a broken workspace configuration is reported, never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from parex_lsp.plan import find_workspace, is_plan_file, lint, resolve, resolve_inline

MODEL = '[agents.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
TASK = '[[task]]\nid = "t"\nprompt = "true"\nfiles = ["src/*.py"]\n'


@pytest.mark.parametrize("name,plan", [("parex.toml", True), ("nightly.parex.toml", True), ("pyproject.toml", False),
                                       ("parex.toml.bak", False), ("notes.md", False), ("plan.toml", False)])
def test_only_parex_toml_and_named_plans_are_plans(name: str, plan: bool):
    assert is_plan_file(Path("/w/sub") / name) is plan


def test_a_sub_plan_has_the_same_workspace_from_an_editor_at_the_parent_and_from_a_terminal(
        workspace: Path, monkeypatch: pytest.MonkeyPatch):
    sub = workspace / "sub"
    sub.mkdir()
    (sub / "parex.toml").write_text(TASK)
    from_editor = resolve(sub / "parex.toml", editor_root=workspace)
    monkeypatch.chdir(workspace)  # `parex-lsp run sub/parex.toml` (or `run sub`) in the parent folder
    from_terminal, folder = resolve("sub/parex.toml", editor_root=Path.cwd()), resolve("sub", editor_root=Path.cwd())
    assert from_editor.workspace == from_terminal.workspace == folder.workspace == sub.resolve()
    assert from_editor.plan.workspace == from_terminal.plan.workspace == sub.resolve()
    assert from_terminal.plan.source == "sub/parex.toml"  # problems name the path as it was typed


def test_a_named_plan_belongs_to_the_nearest_folder_with_git_or_parex_toml(workspace: Path):
    deep = workspace / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "x.parex.toml").write_text(TASK)
    assert resolve(deep / "x.parex.toml").workspace == workspace.resolve()  # .git
    (workspace / "a" / "parex.toml").write_text("[run]\n")
    assert resolve(deep / "x.parex.toml").workspace == (workspace / "a").resolve()


def test_without_markers_the_editor_root_then_the_documents_folder(tmp_path: Path):
    root = tmp_path / "project"
    (root / "docs").mkdir(parents=True)
    assert find_workspace(root / "docs", editor_root=root) == root.resolve()
    assert find_workspace(root / "docs") == (root / "docs").resolve()
    (tmp_path / ".git").mkdir()  # above the editor root: not the editor's project
    assert find_workspace(root / "docs", editor_root=root) == root.resolve()
    assert find_workspace(root / "docs") == tmp_path.resolve()


def test_a_folder_stands_for_its_parex_toml(workspace: Path):
    (workspace / "parex.toml").write_text(TASK)
    got = resolve(workspace)
    assert got.plan is not None and got.plan.source == str(workspace / "parex.toml")


def test_a_configuration_only_parex_toml_lints_clean_but_does_not_run(workspace: Path):
    path = workspace / "parex.toml"
    path.write_text('[run]\nmax_concurrency = 2\n' + MODEL)
    assert resolve(path, running=False).problems == [] and lint(path.read_text(), str(path), workspace) == []
    got = resolve(path)
    assert got.plan is None and [p.format() for p in got.problems] == [
        f"{path}:1:1: the plan has no tasks: add a [[task]] with `id` and `prompt`"]
    assert resolve(workspace / "empty.parex.toml", text="").problems[0].code == "no-tasks"
    assert resolve_inline([], workspace).problems[0].message.startswith("the plan has no tasks")


def test_call_lines_go_to_the_workspace_model_agent(workspace: Path):
    (workspace / "parex.toml").write_text(MODEL)
    doc = workspace / "docs" / "notes.md"
    doc.parent.mkdir()
    doc.write_text("call1: summarise the design\n")
    got = resolve(doc)
    assert got.workspace == workspace.resolve() and got.config == workspace.resolve() / "parex.toml"
    assert [(t.id, t.agent) for t in got.plan.tasks] == [("call1", "local")]


def test_call_lines_never_run_as_commands_unless_chosen(workspace: Path):
    doc = workspace / "notes.md"
    doc.write_text("Some prose.\n\ncall1: rm -rf build and tidy up\n")
    got = resolve(doc)
    assert got.plan is None and [p.code for p in got.problems] == ["no-call-agent"]
    p = got.problems[0]
    assert p.format().startswith(f"{doc}:3:1:") and 'kind = "openai"' in p.message and "call_agent" in p.message
    assert resolve(doc, call_agent="shell").plan.tasks[0].agent == "shell"  # the front end's explicit option
    (workspace / "parex.toml").write_text('[run]\ncall_agent = "shell"\n')
    assert resolve(doc).plan.tasks[0].agent == "shell"  # the workspace's explicit choice
    (workspace / "parex.toml").write_text('[run]\ndefault_agent = "shell"\n')
    assert resolve(doc).plan is None  # tasks' default agent is not a choice for prose


def test_a_broken_workspace_configuration_stops_call_documents(workspace: Path):
    config = workspace / "parex.toml"
    config.write_text('[run]\ncall_agent = "shell"\nmax_concurency = 2\n')
    doc = workspace / "notes.md"
    doc.write_text("call1: echo hi\n")
    got = resolve(doc)
    assert got.plan is None and got.config == config.resolve()
    assert [p.format().split(": ")[0] for p in got.problems] == [f"{config.resolve()}:3:1", f"{doc}:1:1"]
    assert "did you mean `max_concurrency`?" in got.problems[0].message
    inline = resolve_inline([{"id": "a", "prompt": "true"}], workspace)
    assert inline.plan is None and "max_concurency" in inline.problems[0].message


def test_a_range_takes_the_calls_in_it_and_its_first_line_for_problems(workspace: Path):
    doc = workspace / "notes.md"
    doc.write_text("call1: echo a\n\ncall2: echo b\n\nprose\n")
    assert [t.id for t in resolve(doc, (2, 3), call_agent="shell").plan.tasks] == ["call2"]
    got = resolve(doc, (4, 4), call_agent="shell")
    assert got.plan is None and got.problems[0].format().startswith(f"{doc}:5:1:")


def test_files_are_relative_to_the_workspace(workspace: Path, tmp_path: Path):
    (tmp_path / "outside").mkdir()
    (workspace / "out").symlink_to(tmp_path / "outside")
    sub = workspace / "plans"
    sub.mkdir()
    (sub / "x.parex.toml").write_text('[[task]]\nid = "t"\nprompt = "true"\nfiles = ["out/*"]\n')
    got = resolve(sub / "x.parex.toml")
    assert got.workspace == workspace.resolve() and [p.code for p in got.problems] == ["path-escape"]


def test_the_editor_text_wins_over_the_file(workspace: Path):
    path = workspace / "parex.toml"
    path.write_text("not toml at all = = =\n")
    assert resolve(path, text=TASK).plan is not None
