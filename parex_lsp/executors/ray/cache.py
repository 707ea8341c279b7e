"""What a node keeps for a run: its repository (cloned once per run and node from the run's bundle), the
attempts' worktrees, and the run's `copy_files`, under `$PAREX_RAY_CACHE/<run id>/<node>/` (default
`<tmp>/parex-ray`), each guarded by a file lock shared by the run's workers on this machine.

A run's folder goes when the run ends (`forget`, sent by the driver to each node it used). A driver killed
before then sends nothing, so each folder records the Ray job of the run that made it (`owner`: the cluster's
session name and the job id), and when a run starts on a node, or ends there, the folders of this machine
whose job the cluster's GCS reports as ended go too (`sweep`). A folder of another cluster, of a job the GCS
does not know, or without a record is left alone: only a job known to be over is proof that nothing uses it."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from parex_lsp.executors.ray import bundle, copied

CACHE_VAR = "PAREX_RAY_CACHE"  # where a node keeps the runs' repositories (default: <tmp>/parex-ray)
READY = "parex-ready"  # written once the run's bundle is in the node's repository
COPIED_READY = "copied.ready"  # written once the run's copy_files are unpacked
OWNER = "owner"  # the run's Ray job: `<session name> <job id>`


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_VAR) or Path(tempfile.gettempdir(), "parex-ray"))


@dataclass(frozen=True, slots=True)
class Job:
    """A Ray job of one cluster: the cluster's session name (new at each `ray start --head`) and the job id."""

    session: str
    job: str

    @classmethod
    def read(cls, path: Path) -> Job | None:
        try:
            session, job = path.read_text().split()
        except (OSError, ValueError):
            return None
        return cls(session, job)

    def write(self, path: Path) -> None:
        path.write_text(f"{self.session} {self.job}\n")


class NodeRepo:
    """One run's repository on this node, shared by the run's attempts here; its worktrees are theirs."""

    def __init__(self, run_id: str, node_id: str, job: Job | None = None):
        self.root = cache_root() / run_id / node_id[:16]
        self.git_dir = self.root / "repo.git"
        self.copied = self.root / "copied"  # the run's copy_files, as the workspace holds them
        self.job = job  # the run's Ray job, recorded in the folder
        self.lock = FileLock(str(self.root) + ".lock")  # other workers on this node, the same run

    def ensure(self, run_bundle: Callable[[], bytes]) -> int | None:
        """Clone the run's history from its bundle, once (`run_bundle` is fetched only then): its size in
        bytes when this call cloned it, None when it was there."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            self.root.mkdir(mode=0o700, exist_ok=True)  # the run's code and copy_files: for this user only
            if self.job is not None and not (self.root / OWNER).exists():
                self.job.write(self.root / OWNER)
            if (self.git_dir / READY).exists():
                return None
            shutil.rmtree(self.git_dir, ignore_errors=True)  # a clone cut short by a dead worker
            self.git_dir.mkdir(parents=True)
            bundle.git_in(self.git_dir).init("--quiet", "--bare")
            data = run_bundle()
            bundle.fetch(self.git_dir, data)
            bundle.git_in(self.git_dir).update_ref("refs/parex/initial", "FETCH_HEAD")
            (self.git_dir / READY).write_text("")
            return len(data)

    def ensure_copied(self, archive: Callable[[], bytes]) -> int | None:
        """Unpack the run's copy_files, once (`archive` is fetched only then): the archive's size when this call
        unpacked it, None when they were there."""
        with self.lock:
            if (self.root / COPIED_READY).exists():
                return None
            shutil.rmtree(self.copied, ignore_errors=True)  # unpacking cut short by a dead worker
            self.copied.mkdir(mode=0o700)
            data = archive()
            copied.unpack(data, self.copied)
            (self.root / COPIED_READY).write_text("")
            return len(data)

    def checkout(self, start: str, delta: bytes | None, name: str) -> Path:
        """A worktree at `start` (fetched first from `delta` when the base moved since the run began)."""
        path = self.root / "trees" / f"{name}-{uuid.uuid4().hex[:8]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        g = bundle.git_in(self.git_dir)
        with self.lock:  # FETCH_HEAD and the worktree list are the repository's, not the attempt's
            if delta is not None:
                bundle.fetch(self.git_dir, delta)
                g.update_ref(f"refs/parex/starts/{start}", start)  # keeps the objects referenced
            g.worktree("add", "--quiet", "--detach", str(path), start)
        return path

    def remove(self, path: Path) -> None:
        with self.lock:
            shutil.rmtree(path, ignore_errors=True)
            bundle.git_in(self.git_dir).worktree("prune")

    def forget(self, wait: float = -1) -> bool:
        """The run is over: its repository and worktrees on this node go. Whether they went (False: another
        process held the folder's lock for longer than `wait` seconds; -1 waits as long as it takes)."""
        try:
            with self.lock.acquire(timeout=wait):
                shutil.rmtree(self.root, ignore_errors=True)
        except Timeout:
            return False
        Path(self.lock.lock_file).unlink(missing_ok=True)
        try:
            self.root.parent.rmdir()  # the run's folder, once no node of this machine has anything in it
        except OSError:
            pass
        return True


def sweep(current: Job, ended: Iterable[str], keep: str) -> list[str]:
    """Remove this machine's folders of runs whose Ray job, on `current`'s cluster, is among `ended` (their
    driver died before it could send `forget`); never `keep`'s, the run asking. The run ids removed."""
    over = set(ended)
    removed: list[str] = []
    root = cache_root()
    for run_dir in sorted(root.iterdir()) if root.is_dir() else []:
        if run_dir.name == keep or not run_dir.is_dir():
            continue
        try:
            node_dirs = sorted(p for p in run_dir.iterdir() if p.is_dir())
        except OSError:  # gone meanwhile (another sweep), or not ours to read
            continue
        for node_dir in node_dirs:
            owner = Job.read(node_dir / OWNER)
            if owner is None or owner.session != current.session or owner.job not in over:
                continue
            try:
                gone = NodeRepo(run_dir.name, node_dir.name).forget(wait=0)
            except OSError:
                continue
            if gone and run_dir.name not in removed:
                removed.append(run_dir.name)
    return removed
