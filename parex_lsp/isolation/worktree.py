"""Worktree isolation: each task works in its own git worktree, on its own branch, merged back when it succeeds.

Layout: `<workspace>/.parex/worktrees/<runId>/<taskId>` on branch `parex/<runId>/<taskId>`, started from the
base branch's head at the moment the task starts (so a dependent sees the merged work of its dependencies).

What is never done: overwrite, stash or reset anything of the user's; delete a branch whose work is not merged.
A succeeded task is merged with `--no-ff` into the base branch in the main checkout, one merge at a time; a
conflict is aborted at once (the base branch and working tree stay as they were) and the task's branch is kept.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import git
from git.exc import GitCommandError, GitCommandNotFound, InvalidGitRepositoryError, NoSuchPathError

from parex_lsp import state

AUTHOR_NAME, AUTHOR_EMAIL = "parex", "parex@localhost"
RESCUE_MESSAGE = "parex: rescued uncommitted work"
COPIED_LIST = "parex-copied-files"  # in the worktree's private git dir: paths copied in, never committed
TRASH = ".removing"  # under the worktrees folder: removed worktrees whose files are being deleted
NEVER_COPIED = (".parex", ".git")  # parex's state and git's own: never a copy_files match

# Every git command parex runs: its own identity (the user may have none configured), no signing prompts,
# no background gc racing our ref updates, a parallel checkout, and no GIT_DIR & co. inherited from a hook
# that launched us.
GIT_ENV: dict[str, str | None] = {
    "GIT_AUTHOR_NAME": AUTHOR_NAME, "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
    "GIT_COMMITTER_NAME": AUTHOR_NAME, "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
    "GIT_CONFIG_COUNT": "4",
    "GIT_CONFIG_KEY_0": "gc.auto", "GIT_CONFIG_VALUE_0": "0",
    "GIT_CONFIG_KEY_1": "commit.gpgsign", "GIT_CONFIG_VALUE_1": "false",
    "GIT_CONFIG_KEY_2": "advice.detachedHead", "GIT_CONFIG_VALUE_2": "false",
    "GIT_CONFIG_KEY_3": "checkout.workers", "GIT_CONFIG_VALUE_3": "0",  # check a worktree out on every core
    "GIT_DIR": None, "GIT_WORK_TREE": None, "GIT_INDEX_FILE": None, "GIT_OBJECT_DIRECTORY": None,
    "GIT_TERMINAL_PROMPT": "0",
}


class WorktreeError(Exception):
    """Worktree isolation cannot start here; the message says why and what to do."""


@dataclass(slots=True)
class MergeOutcome:
    ok: bool
    commit: str | None
    conflicts: list[str] = field(default_factory=list)
    message: str = ""
    before: str | None = None  # the base branch's commit before the merge (to undo it)


@dataclass(slots=True)
class _Tree:
    task_id: str
    path: Path  # the worktree's root
    branch: str
    base: str  # the commit it started from


def _git(cwd: Path) -> git.Git:
    """git in the worktree `cwd`, which must exist: git started in a missing folder would run in our own
    working directory, the person's checkout, and commit their files. Nor may git look above `cwd` for a
    repository: a worktree whose `.git` link was deleted would otherwise be taken for part of the person's
    checkout (its `.parex/` folder), and `add -A` would stage their files."""
    if not cwd.is_dir():
        raise WorktreeError(f"the worktree {cwd} no longer exists")
    g = git.Git(str(cwd))
    g.update_environment(**GIT_ENV, GIT_CEILING_DIRECTORIES=str(cwd.resolve().parent))
    return g


def _intact(path: Path) -> bool:
    """Whether a task's worktree is still there and still a worktree (a task may delete either)."""
    return path.is_dir() and (path / ".git").is_file()


def _stderr(error: GitCommandError) -> str:
    """What git printed, without GitPython's `stderr: '...'` wrapping."""
    raw: str | bytes = error.stderr or ""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    text = text.strip()
    if text.startswith("stderr: '"):
        text = text[len("stderr: '"):].removesuffix("'")
    return text


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


class Worktrees:
    """One run's worktrees. `create` and `finish` are thread-safe; merges into the base branch are serialized."""

    def __init__(self, workspace: Path, run_id: str, is_live_run: Callable[[str], bool],
                 copy_files: Sequence[str] = (), allow_dirty: bool = False):
        self.workspace = workspace.resolve()
        self.run_id = run_id
        self.is_live_run = is_live_run  # whether another run's worktrees are still in use
        self.copy_files = list(copy_files)
        self.allow_dirty = allow_dirty
        self.dir = state.worktrees_dir(self.workspace) / run_id
        self._trees: dict[str, _Tree] = {}
        self._lock = threading.Lock()  # guards _trees
        # git reads every worktree's metadata when it adds, removes or prunes one, or deletes a branch; two of
        # those at once can see a worktree half made ("failed to read .git/worktrees/<name>/commondir")
        self._admin_lock = threading.RLock()
        self._merge_lock = threading.Lock()  # one merge into the main checkout at a time
        self._repo: git.Repo | None = None  # found by prepare()
        self.root = self.workspace
        self.sub = PurePosixPath(".")  # the workspace inside the repository (a monorepo subfolder)
        self.base_branch = ""

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            raise WorktreeError("Worktrees.prepare() must run before the repository is used")
        return self._repo

    # -- starting ------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Check that worktrees can be used here, then clear worktrees left by runs that are no longer running."""
        try:
            repo = git.Repo(self.workspace, search_parent_directories=True)
        except (InvalidGitRepositoryError, NoSuchPathError):
            raise WorktreeError(f"{self.workspace} is not in a git repository: worktree isolation needs one "
                                "(git init && git add -A && git commit -m init), or use isolation = \"none\"") from None
        if repo.bare or repo.working_tree_dir is None:
            raise WorktreeError(f"{self.workspace} is a bare git repository: worktree isolation needs a checkout")
        repo.git.update_environment(**GIT_ENV)
        self._repo = repo
        self.root = Path(repo.working_tree_dir).resolve()
        self.sub = PurePosixPath(self.workspace.relative_to(self.root).as_posix())
        if not repo.head.is_valid():
            raise WorktreeError(f"the git repository at {self.root} has no commit yet: "
                                "make a first commit before running with isolation = \"worktree\"")
        if repo.head.is_detached:
            raise WorktreeError(f"HEAD is detached (at {repo.head.commit.hexsha[:12]}) in {self.root}: "
                                "check out the branch the tasks' work should be merged into (git switch <branch>)")
        self.base_branch = repo.active_branch.name
        for marker, what in (("MERGE_HEAD", "a merge"), ("CHERRY_PICK_HEAD", "a cherry-pick"),
                             ("REVERT_HEAD", "a revert"), ("rebase-merge", "a rebase"), ("rebase-apply", "a rebase")):
            if Path(repo.git_dir, marker).exists():
                raise WorktreeError(f"{what} is in progress in {self.root}: finish or abort it first")
        if not self.allow_dirty:
            dirty = self._dirty_paths()
            if dirty:
                shown = ", ".join(dirty[:10]) + (f" and {len(dirty) - 10} more" if len(dirty) > 10 else "")
                raise WorktreeError(
                    f"uncommitted changes to tracked files in {self.root}: {shown}. Tasks start from the last "
                    "commit of " + self.base_branch + " and would not see them: commit or stash them first, "
                    "or set allow_dirty = true (merges that would touch those files are then refused)")
        self._commit_parex_ignore()
        state.ensure_state_dir(self.workspace)  # the worktrees live inside the checkout; git must never see them
        self._prune_orphans()

    def _dirty_paths(self) -> list[str]:
        """Tracked paths with uncommitted changes, staged or not; the `.parex/` line parex itself adds to
        `.gitignore` on a first run is not counted."""
        out = self.repo.git.status("--porcelain=v1", "-z", "--untracked-files=no")
        fields = out.split("\0")
        paths: list[str] = []
        i = 0
        while i < len(fields):
            entry = fields[i]
            i += 1
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if "R" in code or "C" in code:
                i += 1  # the rename's source path follows
            paths.append(path)
        return [p for p in paths if not self._only_parex_ignored(p)]

    def _commit_parex_ignore(self) -> None:
        """Worktree runs commit to the base branch anyway; the `.parex/` ignore line goes in as its own commit
        so the checkout stays clean and no merge trips over it."""
        gitignore = (self.sub / ".gitignore").as_posix().removeprefix("./")
        changed = self.repo.git.status("--porcelain=v1", "--untracked-files=no", "--", gitignore)
        if changed and self._only_parex_ignored(gitignore):
            self.repo.git.commit("-q", "--no-verify", "-m", "Ignore .parex/ (parex run state)", "--", gitignore)

    def _only_parex_ignored(self, path: str) -> bool:
        gitignore = (self.sub / ".gitignore").as_posix().removeprefix("./")
        if path != gitignore:
            return False
        try:
            committed = self.repo.git.show(f"HEAD:{gitignore}")
            current = (self.root / gitignore).read_text()
        except (GitCommandError, OSError):
            return False

        def rest(text: str) -> list[str]:
            return [ln for ln in text.splitlines() if ln.strip().rstrip("/") not in (".parex", "/.parex")]

        return rest(committed) == rest(current)

    # -- orphans -------------------------------------------------------------------------------------------

    def _registered(self) -> dict[Path, str | None]:
        """Worktrees git knows of: path -> branch (None when detached)."""
        out = self.repo.git.worktree("list", "--porcelain")
        found: dict[Path, str | None] = {}
        path: Path | None = None
        for line in out.splitlines():
            if line.startswith("worktree "):
                path = Path(line[len("worktree "):]).resolve()
                found[path] = None
            elif line.startswith("branch ") and path is not None:
                found[path] = line[len("branch "):].removeprefix("refs/heads/")
        return found

    def _prune_orphans(self) -> None:
        """Remove worktrees of runs that are no longer running. Their branches stay, with any uncommitted
        work committed onto them first."""
        root = state.worktrees_dir(self.workspace)
        if root.is_dir():
            registered = self._registered()
            for run_dir in sorted(root.iterdir()):
                if run_dir.name == TRASH:  # left by a runner that stopped before its deletions ended
                    threading.Thread(target=shutil.rmtree, args=(run_dir, True), daemon=True).start()
                    continue
                if run_dir.name == self.run_id or not run_dir.is_dir():
                    continue
                if self.is_live_run(run_dir.name):
                    continue
                for path in [p for p in registered if run_dir.resolve() in p.parents]:
                    if registered[path] is not None and _intact(path):  # a detached tree has no branch to keep work on
                        commit_all(path, RESCUE_MESSAGE)
                    self._remove(path)
                _rmdir_if_empty(run_dir)
        self.repo.git.worktree("prune")

    # -- one task ------------------------------------------------------------------------------------------

    def branch_for(self, task_id: str) -> str:
        return f"parex/{self.run_id}/{task_id}"

    def create(self, task_id: str, from_branch: str | None = None) -> Path:
        """The task's working directory in a new worktree (the same one again if it exists already).
        `from_branch`: continue on that existing branch (a retry with feedback) instead of a new one."""
        self._require_prepared()
        with self._lock:
            tree = self._trees.get(task_id)
            if tree is not None:
                return self._workdir(tree)
            base = self.repo.git.rev_parse("--verify", f"refs/heads/{self.base_branch}")
            path = self.dir / task_id
            if path.resolve().parent != self.dir.resolve():  # ids are checked by the plan; this guards the tree
                raise WorktreeError(f"task id {task_id!r} cannot name a worktree folder")
            tree = _Tree(task_id, path, from_branch or self.branch_for(task_id), base)
            self._trees[task_id] = tree
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with self._admin_lock:
                if from_branch is not None:
                    self.repo.git.worktree("add", "--quiet", "--no-checkout", str(tree.path), from_branch)
                else:
                    self._set_aside_old_branch(tree.branch)
                    self.repo.git.worktree("add", "--quiet", "--no-checkout", "-b", tree.branch, str(tree.path),
                                           base)
            _git(tree.path).reset("--quiet", "--hard")  # the checkout itself, in parallel with other tasks'
            copy_in(self.workspace, tree.path, self.sub, self.copy_files)
        except Exception as e:
            with self._lock:
                self._trees.pop(task_id, None)
            if tree.path.exists():
                self._remove(tree.path)
            if isinstance(e, GitCommandError):
                raise WorktreeError(f"could not create a worktree for task {task_id}: "
                                    f"{_stderr(e) or e}") from e
            if isinstance(e, GitCommandNotFound):  # its folder went while git was started in it
                raise WorktreeError(f"could not create a worktree for task {task_id}: {tree.path} was deleted "
                                    "while it was made") from e
            raise
        return self._workdir(tree)

    def _workdir(self, tree: _Tree) -> Path:
        return tree.path / self.sub if str(self.sub) != "." else tree.path

    def _set_aside_old_branch(self, branch: str) -> None:
        """A branch of this name from an earlier attempt keeps its work under another name."""
        if not self._branch_exists(branch):
            return
        n = 1
        while self._branch_exists(f"{branch}-kept-{n}"):
            n += 1
        self.repo.git.branch("-m", branch, f"{branch}-kept-{n}")

    def _branch_exists(self, branch: str) -> bool:
        try:
            self.repo.git.rev_parse("--verify", "--quiet", f"refs/heads/{branch}")
            return True
        except GitCommandError:
            return False

    def _remove(self, path: Path) -> None:
        """Remove one task's worktree; never anything outside the worktrees folder."""
        root = state.worktrees_dir(self.workspace).resolve()
        if root not in path.resolve().parents or path.resolve().parent == root:
            raise WorktreeError(f"refusing to remove {path}: not a task worktree under {root}")
        with self._admin_lock:
            # Deleting a big checkout's files takes long and would hold up every other task's worktree here:
            # the folder is renamed aside (instant), git forgets it, and its files go in the background.
            trash = root / TRASH / f"{path.name}-{uuid.uuid4().hex[:8]}"
            try:
                trash.parent.mkdir(exist_ok=True)
                path.rename(trash)
            except OSError:
                trash = path
            try:
                if trash == path:
                    self.repo.git.worktree("remove", "--force", "--force", str(path))
                else:
                    self.repo.git.worktree("prune")
            except GitCommandError:
                self.repo.git.worktree("prune")
        if trash.exists():
            threading.Thread(target=shutil.rmtree, args=(trash, True), daemon=True,
                             name="parex-worktree-removal").start()

    def branch_of(self, task_id: str) -> str | None:
        """The branch of the task's current worktree."""
        with self._lock:
            tree = self._trees.get(task_id)
        return tree.branch if tree is not None else None

    def finish(self, task_id: str, succeeded: bool, merge: bool = True) -> MergeOutcome | None:
        """Commit the task's work to its branch and remove its worktree; when it succeeded (and `merge`), merge
        the branch into the base branch. None when the task did not succeed (its branch is kept), when it is
        not to be merged now (`merge` false: its branch is kept), or when it never had a worktree."""
        with self._lock:
            tree = self._trees.pop(task_id, None)
        if tree is None:
            return None
        deleted = not _intact(tree.path)
        if not deleted:
            try:
                if succeeded:
                    commit_all(tree.path, f"parex: task {task_id} (run {self.run_id})")
                else:
                    commit_all(tree.path,
                                     f"parex: work of task {task_id} (run {self.run_id}), which did not succeed")
            except (GitCommandError, GitCommandNotFound, WorktreeError):
                if _intact(tree.path):
                    raise
                deleted = True  # deleted while it was being committed (by a sibling task, say)
            finally:
                if not deleted:
                    self._remove(tree.path)
        if deleted:
            with self._admin_lock:
                if tree.path.exists():
                    self._remove(tree.path)
                self.repo.git.worktree("prune")
            if not succeeded:
                return None
            return MergeOutcome(False, None, [], f"the worktree of task {task_id} ({tree.path}) was deleted before "
                                                 f"its work was committed: nothing to merge; branch {tree.branch} "
                                                 "keeps what it had committed")
        if not succeeded or not merge:
            return None
        with self._merge_lock:
            outcome = self._merge(tree)
        if outcome.ok:
            with self._admin_lock:
                self.repo.git.branch("-D", tree.branch)
        return outcome

    def merge_branch(self, task_id: str, branch: str) -> MergeOutcome:
        """Merge a kept branch into the base branch (`--no-ff`, in the main checkout); the branch stays.
        The outcome's `before` is the base branch's commit before the merge, for `undo_merge`."""
        self._require_prepared()
        with self._merge_lock:
            before = self.repo.git.rev_parse("HEAD")
            outcome = self._merge(_Tree(task_id, self.dir / task_id, branch, before))
        outcome.before = before
        return outcome

    def undo_merge(self, before: str) -> None:
        """Put the base branch back at `before` (its commit before a merge). `reset --keep` leaves any of the
        person's uncommitted changes in place and refuses, rather than overwrite one, if a file differs."""
        with self._merge_lock:
            self.repo.git.reset("--quiet", "--keep", before)

    def base_head(self) -> str:
        return str(self.repo.git.rev_parse(f"refs/heads/{self.base_branch}"))

    def delete_branch(self, branch: str) -> None:
        with self._admin_lock:
            self.repo.git.branch("-D", branch)

    def branch_exists(self, branch: str) -> bool:
        return self._branch_exists(branch)

    def _merge(self, tree: _Tree) -> MergeOutcome:
        g = self.repo.git
        kept = f"the task's work is kept on branch {tree.branch}"
        try:
            current = g.symbolic_ref("--quiet", "--short", "HEAD")
        except GitCommandError:
            current = "a detached HEAD"
        if current != self.base_branch:
            return MergeOutcome(False, None, [], f"cannot merge task {tree.task_id}: {self.base_branch} is no longer "
                                                 f"checked out in {self.root} (now {current}); {kept}")
        if g.rev_list("--count", f"HEAD..{tree.branch}") == "0":
            return MergeOutcome(True, None, [], f"task {tree.task_id} changed nothing")
        try:
            g.merge("--no-ff", "--no-edit", "--no-verify", "-m",
                    f"parex: merge task {tree.task_id} (run {self.run_id})", tree.branch)
        except GitCommandError as e:
            return self._merge_failed(tree, e, kept)
        commit = g.rev_parse("HEAD")
        return MergeOutcome(True, commit, [], f"merged {tree.branch} into {self.base_branch} ({commit[:12]})")

    def _merge_failed(self, tree: _Tree, error: GitCommandError, kept: str) -> MergeOutcome:
        g = self.repo.git
        conflicts = _lines(g.diff("--name-only", "--diff-filter=U"))
        if Path(self.repo.git_dir, "MERGE_HEAD").exists():
            g.merge("--abort")  # back to exactly where the base branch was
        if conflicts:
            return MergeOutcome(False, None, conflicts,
                                f"merge conflict in {', '.join(conflicts)}: {kept} "
                                f"(resolve with: git merge {tree.branch})")
        # git refused before touching anything, e.g. uncommitted or untracked files in the way
        stderr = _stderr(error)
        blocked = [ln.strip() for ln in stderr.splitlines() if ln.startswith("\t")]
        reason = next((ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("\t")),
                      "git merge failed")
        reason = reason.removeprefix("error: ").removeprefix("fatal: ").rstrip(":")
        shown = f" ({', '.join(blocked)})" if blocked else ""
        return MergeOutcome(False, None, blocked, f"git refused to merge task {tree.task_id}: {reason}{shown}; {kept}")

    # -- ending --------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Remove this run's remaining worktrees (their work committed to their kept branches) and prune."""
        if self._repo is None:
            return
        with self._lock:
            left = list(self._trees.values())
            self._trees.clear()
        for tree in left:
            if not _intact(tree.path):
                if tree.path.exists():
                    self._remove(tree.path)
                continue
            try:
                commit_all(tree.path, f"parex: work of task {tree.task_id} (run {self.run_id}), unfinished")
            finally:
                self._remove(tree.path)
        _rmdir_if_empty(self.dir)
        with self._admin_lock:
            self.repo.git.worktree("prune")

    def _require_prepared(self) -> None:
        if self._repo is None:
            raise WorktreeError("Worktrees.prepare() must run before create()")


def copy_matches(source: Path, patterns: Sequence[str]) -> list[Path]:
    """What `copy_files` patterns match under `source` (the workspace, or a node's copy of its matches), each
    once, in order: never parex's state or git's own folder, and nothing whose folder really lies outside
    `source` (a match below a symlinked folder). A match that is a symlink is taken as the link, not its target."""
    root = os.path.realpath(source)
    found: dict[Path, None] = {}
    for pattern in patterns:
        for src in sorted(source.glob(pattern)):
            rel = src.relative_to(source)
            if not rel.parts or rel.parts[0] in NEVER_COPIED:
                continue
            folder = os.path.realpath(src.parent)
            if folder != root and not folder.startswith(root.rstrip("/") + "/"):
                continue
            found.setdefault(src)
    return list(found)


def copy_in(source: Path, tree: Path, sub: PurePosixPath, patterns: Sequence[str]) -> list[str]:
    """Copy what `patterns` match under `source` into the worktree `tree` (its folder `sub`, where the
    workspace is), never over a file that is there (a checked-out one); symlinks stay symlinks. The copied
    paths (relative to the repository) are noted in the worktree's private git dir, so that `commit_all`
    never commits them; they are returned."""
    copied: list[str] = []
    dest_root = tree / sub if str(sub) != "." else tree
    for src in copy_matches(source, patterns):
        rel = src.relative_to(source)
        dest = dest_root / rel
        if dest.exists() or dest.is_symlink():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dest, symlinks=True)
        else:
            shutil.copy2(src, dest, follow_symlinks=False)
        copied.append((sub / rel.as_posix()).as_posix().removeprefix("./"))
    if copied:
        (_private_dir(tree) / COPIED_LIST).write_text("\n".join(copied) + "\n")
    return copied


def _private_dir(path: Path) -> Path:
    """The worktree's own git dir (`.git/worktrees/<name>`), which git never checks out or commits."""
    return Path(path, _git(path).rev_parse("--absolute-git-dir"))


def commit_all(path: Path, message: str) -> str | None:
    """Commit everything in the worktree `path` (parex's identity) except the files `copy_in` copied there;
    the new commit, or None if nothing changed."""
    g = _git(path)
    g.add("-A")
    listed = _private_dir(path) / COPIED_LIST
    if listed.is_file():
        copied = _lines(listed.read_text())
        if copied:
            g.reset("-q", "--", *copied)
    if not g.diff("--cached", "--name-only"):
        return None
    g.commit("-q", "--no-verify", "-m", message)
    return str(g.rev_parse("HEAD"))


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
