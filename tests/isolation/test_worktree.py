"""Worktree isolation on real git repositories in tmp_path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import git
import pytest

from parex_lsp.contract import Event, EventKind, Wire
from parex_lsp.engine.journal import Journal, is_running
from parex_lsp.isolation.worktree import RESCUE_MESSAGE, MergeOutcome, WorktreeError, Worktrees
from parex_lsp.state import ensure_state_dir, worktrees_dir

REPO_ROOT = Path(__file__).resolve().parents[2]

NOT_RUNNING = lambda run_id: False  # noqa: E731  (no other run of these tests is running)


def _repo(path: Path, files: dict[str, str] | None = None, branch: str = "main") -> git.Repo:
    path.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(path, initial_branch=branch)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Test User")
        cw.set_value("user", "email", "test@example.com")
    for rel, text in (files or {"README.md": "hello\n", "src/app.py": "x = 1\ny = 2\n"}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    repo.git.add("-A")
    repo.git.commit("-m", "init")
    return repo


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    _repo(tmp_path / "ws")
    return tmp_path / "ws"


def _status(ws: Path) -> str:
    return git.Repo(ws).git.status("--porcelain")


def _worktree_paths(ws: Path) -> list[str]:
    out = git.Repo(ws).git.worktree("list", "--porcelain")
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]


def _branches(ws: Path) -> list[str]:
    return [b.strip() for b in git.Repo(ws).git.branch("--format=%(refname:short)").splitlines()]


def _prepared(ws: Path, run_id: str = "run1", **kw) -> Worktrees:
    wt = Worktrees(ws, run_id, lambda other: is_running(ws, other), **kw)
    wt.prepare()
    return wt


# ---------------------------------------------------------------------------------------------------------
# prepare


def test_not_a_git_repository_is_refused(tmp_path: Path):
    with pytest.raises(WorktreeError, match="not in a git repository"):
        Worktrees(tmp_path, "r", NOT_RUNNING).prepare()


def test_repository_without_commits_is_refused(tmp_path: Path):
    git.Repo.init(tmp_path)
    with pytest.raises(WorktreeError, match="no commit yet"):
        Worktrees(tmp_path, "r", NOT_RUNNING).prepare()


def test_detached_head_is_refused(ws: Path):
    repo = git.Repo(ws)
    repo.git.checkout("--detach", "HEAD")
    with pytest.raises(WorktreeError, match="HEAD is detached"):
        Worktrees(ws, "r", NOT_RUNNING).prepare()


def test_merge_in_progress_is_refused(ws: Path):
    repo = git.Repo(ws)
    repo.git.checkout("-b", "other")
    (ws / "README.md").write_text("other\n")
    repo.git.commit("-am", "other")
    repo.git.checkout("main")
    (ws / "README.md").write_text("main\n")
    repo.git.commit("-am", "main")
    with pytest.raises(git.GitCommandError):
        repo.git.merge("other")
    with pytest.raises(WorktreeError, match="a merge is in progress"):
        Worktrees(ws, "r", NOT_RUNNING).prepare()


def test_dirty_tracked_files_are_refused_with_what_to_do(ws: Path):
    (ws / "src" / "app.py").write_text("x = 99\n")
    with pytest.raises(WorktreeError) as err:
        Worktrees(ws, "r", NOT_RUNNING).prepare()
    message = str(err.value)
    assert "src/app.py" in message and "allow_dirty" in message and "commit or stash" in message


def test_staged_changes_count_as_dirty(ws: Path):
    (ws / "new.py").write_text("")
    git.Repo(ws).git.add("new.py")
    with pytest.raises(WorktreeError, match="new.py"):
        Worktrees(ws, "r", NOT_RUNNING).prepare()


def test_untracked_files_and_the_parex_gitignore_line_are_fine(ws: Path):
    repo = git.Repo(ws)
    (ws / ".gitignore").write_text("*.log")  # tracked, without a final newline
    repo.git.add(".gitignore")
    repo.git.commit("-m", "ignore logs")
    (ws / "scratch.txt").write_text("untracked")
    ensure_state_dir(ws)  # what a first run does: ignores .parex/ in .git/info/exclude, not in .gitignore
    assert (ws / ".gitignore").read_text() == "*.log"
    assert "/.parex/" in (ws / ".git" / "info" / "exclude").read_text().splitlines()
    (ws / ".gitignore").write_text("*.log\n.parex/\n")  # the line earlier versions added still counts as clean
    wt = _prepared(ws)
    path = wt.create("t")
    assert (path / "README.md").read_text() == "hello\n"
    assert wt.finish("t", True).ok
    (ws / ".gitignore").write_text("*.log\n.parex/\nbuild/\n")  # any other edit is the user's: dirty again
    with pytest.raises(WorktreeError, match=".gitignore"):
        Worktrees(ws, "r2", NOT_RUNNING).prepare()


# ---------------------------------------------------------------------------------------------------------
# tasks and merges


def test_independent_tasks_created_from_threads_merge_cleanly(ws: Path):
    wt = _prepared(ws)
    paths: dict[str, Path] = {}

    def start(task_id: str) -> None:
        paths[task_id] = wt.create(task_id)

    threads = [threading.Thread(target=start, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(paths) == ["t0", "t1", "t2", "t3"]
    for task_id, path in paths.items():
        assert path == (ws / ".parex" / "worktrees" / "run1" / task_id).resolve()
        assert git.Repo(path).active_branch.name == f"parex/run1/{task_id}"
        (path / f"{task_id}.txt").write_text(task_id)
    assert _status(ws) == ""  # the main checkout does not see the worktrees
    outcomes: dict[str, MergeOutcome] = {}
    threads = [threading.Thread(target=lambda t=t: outcomes.__setitem__(t, wt.finish(t, True))) for t in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o.ok and o.conflicts == [] for o in outcomes.values()), outcomes
    for task_id in paths:
        assert (ws / f"{task_id}.txt").read_text() == task_id
    repo = git.Repo(ws)
    merges = [c for c in repo.iter_commits("main") if len(c.parents) == 2]
    assert len(merges) == 4
    assert {o.commit for o in outcomes.values()} == {c.hexsha for c in merges}
    assert all(c.author.name == "parex" for c in merges)
    assert _branches(ws) == ["main"]  # merged branches are deleted
    assert _status(ws) == ""
    wt.close()
    assert _worktree_paths(ws) == [str(ws.resolve())]


def test_a_task_created_after_another_finished_sees_its_work(ws: Path):
    wt = _prepared(ws)
    (wt.create("schema") / "schema.sql").write_text("create table users();\n")
    assert wt.finish("schema", True).ok
    dependent = wt.create("api")
    assert (dependent / "schema.sql").read_text() == "create table users();\n"
    wt.close()


def test_same_line_edited_by_two_tasks_gives_one_conflict_and_keeps_the_branch(ws: Path):
    wt = _prepared(ws)
    a, b = wt.create("a"), wt.create("b")
    (a / "src" / "app.py").write_text("x = 'a'\ny = 2\n")
    (b / "src" / "app.py").write_text("x = 'b'\ny = 2\n")
    first, second = wt.finish("a", True), wt.finish("b", True)
    assert first.ok and first.commit
    assert not second.ok and second.commit is None
    assert second.conflicts == ["src/app.py"]
    assert "src/app.py" in second.message and "parex/run1/b" in second.message
    assert _status(ws) == ""
    assert (ws / "src" / "app.py").read_text() == "x = 'a'\ny = 2\n"
    assert not (Path(git.Repo(ws).git_dir) / "MERGE_HEAD").exists()
    assert _branches(ws) == ["main", "parex/run1/b"]
    kept = git.Repo(ws).git.show("parex/run1/b:src/app.py")
    assert kept == "x = 'b'\ny = 2"
    wt.close()
    assert _worktree_paths(ws) == [str(ws.resolve())]
    assert _branches(ws) == ["main", "parex/run1/b"]


def test_failed_task_keeps_its_work_on_its_branch(ws: Path):
    wt = _prepared(ws)
    path = wt.create("broken")
    (path / "half.py").write_text("def f(:\n")
    assert wt.finish("broken", False) is None
    assert not path.exists()
    repo = git.Repo(ws)
    assert "parex/run1/broken" in _branches(ws)
    assert repo.git.show("parex/run1/broken:half.py") == "def f(:"
    assert not (ws / "half.py").exists()
    wt.close()


def test_a_task_that_changes_nothing_merges_as_nothing(ws: Path):
    wt = _prepared(ws)
    head = git.Repo(ws).head.commit.hexsha
    wt.create("noop")
    outcome = wt.finish("noop", True)
    assert outcome.ok and outcome.commit is None
    assert git.Repo(ws).head.commit.hexsha == head
    assert _branches(ws) == ["main"]


def test_create_is_idempotent_and_finish_of_an_unknown_task_is_none(ws: Path):
    wt = _prepared(ws)
    assert wt.create("t") == wt.create("t")
    assert wt.finish("never-created", True) is None
    wt.close()


def test_close_removes_unfinished_worktrees_and_keeps_their_work(ws: Path):
    wt = _prepared(ws)
    (wt.create("slow") / "partial.txt").write_text("half done")
    wt.create("idle")
    wt.close()
    assert _worktree_paths(ws) == [str(ws.resolve())]
    assert not (worktrees_dir(ws) / "run1").exists()
    assert git.Repo(ws).git.show("parex/run1/slow:partial.txt") == "half done"
    assert set(_branches(ws)) == {"main", "parex/run1/slow", "parex/run1/idle"}


def test_base_branch_switched_mid_run_is_not_merged_into(ws: Path):
    wt = _prepared(ws)
    (wt.create("t") / "t.txt").write_text("t")
    git.Repo(ws).git.checkout("-b", "elsewhere")
    outcome = wt.finish("t", True)
    assert not outcome.ok and "no longer checked out" in outcome.message and "parex/run1/t" in outcome.message
    assert "parex/run1/t" in _branches(ws)


def test_allow_dirty_never_touches_the_users_uncommitted_changes(ws: Path):
    (ws / "src" / "app.py").write_text("x = 'mine, uncommitted'\ny = 2\n")
    wt = _prepared(ws, allow_dirty=True)
    clash, other = wt.create("clash"), wt.create("other")
    assert (clash / "src" / "app.py").read_text() == "x = 1\ny = 2\n"  # tasks start from the last commit
    (clash / "src" / "app.py").write_text("x = 1\ny = 'task'\n")
    (other / "docs.md").write_text("docs")
    refused, merged = wt.finish("clash", True), wt.finish("other", True)
    assert not refused.ok and refused.conflicts == ["src/app.py"]
    assert "src/app.py" in refused.message and "parex/run1/clash" in refused.message
    assert merged.ok and (ws / "docs.md").read_text() == "docs"
    assert (ws / "src" / "app.py").read_text() == "x = 'mine, uncommitted'\ny = 2\n"
    assert _status(ws).split() == ["M", "src/app.py"]  # still modified, unstaged
    wt.close()


def test_untracked_file_in_the_way_refuses_the_merge_without_losing_it(ws: Path):
    wt = _prepared(ws)
    (wt.create("t") / "notes.txt").write_text("from the task")
    (ws / "notes.txt").write_text("the user's own, untracked")
    outcome = wt.finish("t", True)
    assert not outcome.ok and outcome.conflicts == ["notes.txt"] and "parex/run1/t" in outcome.message
    assert (ws / "notes.txt").read_text() == "the user's own, untracked"


def test_copy_files_are_copied_in_and_never_committed(ws: Path):
    (ws / ".env").write_text("SECRET=1\n")
    (ws / "config").mkdir()
    (ws / "config" / "local.toml").write_text("debug = true\n")
    wt = _prepared(ws, copy_files=[".env", "config/*.toml", "README.md", "missing.txt"])
    path = wt.create("t")
    assert (path / ".env").read_text() == "SECRET=1\n"
    assert (path / "config" / "local.toml").read_text() == "debug = true\n"
    (path / ".env").write_text("SECRET=changed by the task\n")
    (path / "out.txt").write_text("result")
    assert wt.finish("t", True).ok
    tracked = git.Repo(ws).git.ls_files().splitlines()
    assert "out.txt" in tracked and ".env" not in tracked and "config/local.toml" not in tracked
    assert (ws / ".env").read_text() == "SECRET=1\n"


def test_workspace_in_a_subfolder_of_the_repository(tmp_path: Path):
    _repo(tmp_path / "mono", {"svc/app.py": "a = 1\n", "lib/util.py": "u = 1\n"})
    ws = tmp_path / "mono" / "svc"
    wt = _prepared(ws)
    workdir = wt.create("t")
    assert workdir.name == "svc" and (workdir / "app.py").read_text() == "a = 1\n"
    assert (workdir.parent / "lib" / "util.py").exists()
    (workdir / "new.py").write_text("n = 1\n")
    assert wt.finish("t", True).ok
    assert (ws / "new.py").read_text() == "n = 1\n"
    wt.close()


# ---------------------------------------------------------------------------------------------------------
# orphans of crashed runs

CRASHING_RUN = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from parex_lsp.contract import Event, EventKind, Wire
    from parex_lsp.engine.journal import Journal
    from parex_lsp.isolation.worktree import Worktrees
    ws = Path(sys.argv[1])
    journal = Journal(ws, "crashed")
    journal.append(Event("crashed", None, EventKind.RUN_STARTED, data=Wire({"pid": os.getpid(), "tasks": ["t"]})))
    wt = Worktrees(ws, "crashed", lambda run_id: False)
    wt.prepare()
    path = wt.create("t")
    (path / "src" / "app.py").write_text("x = 'edited'\\ny = 2\\n")
    (path / "new_file.py").write_text("unsaved = True\\n")
    print("working", flush=True)
    time.sleep(600)
""")


def test_worktrees_of_a_killed_run_are_pruned_and_their_work_rescued(tmp_path: Path, ws: Path):
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_RUN)
    child = subprocess.Popen([sys.executable, str(script), str(ws)], stdout=subprocess.PIPE, text=True,
                             cwd=REPO_ROOT)
    assert child.stdout.readline().strip() == "working"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    orphan = worktrees_dir(ws) / "crashed" / "t"
    assert orphan.is_dir()

    wt = _prepared(ws, run_id="next")
    assert not orphan.exists() and not (worktrees_dir(ws) / "crashed").exists()
    assert _worktree_paths(ws) == [str(ws.resolve())]
    repo = git.Repo(ws)
    rescued = repo.commit("parex/crashed/t")
    assert rescued.message.strip() == RESCUE_MESSAGE
    assert repo.git.show("parex/crashed/t:new_file.py") == "unsaved = True"
    assert repo.git.show("parex/crashed/t:src/app.py") == "x = 'edited'\ny = 2"
    assert _status(ws) == ""
    wt.close()


def test_worktrees_of_a_live_run_are_left_alone(ws: Path):
    journal = Journal(ws, "live")
    journal.append(Event("live", None, EventKind.RUN_STARTED, data=Wire({"pid": os.getpid(), "tasks": ["t"]})))
    live = _prepared(ws, run_id="live")
    path = live.create("t")
    (path / "wip.txt").write_text("in progress")
    _prepared(ws, run_id="other")
    assert (path / "wip.txt").read_text() == "in progress"
    assert str(path) in _worktree_paths(ws)
    live.close()
    journal.close()


def test_worktrees_without_a_journal_are_orphans(ws: Path):
    gone = _prepared(ws, run_id="no-journal")
    gone.create("t")
    assert not (ws / ".parex" / "runs" / "no-journal").exists()
    _prepared(ws, run_id="next")
    assert _worktree_paths(ws) == [str(ws.resolve())]
    assert "parex/no-journal/t" in _branches(ws)  # an untouched branch is kept too
