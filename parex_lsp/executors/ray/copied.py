"""`[run] copy_files` under Ray. The driver packs what the patterns match in the workspace (the matches a local
worktree gets: isolation/worktree.copy_matches) into one tar archive, put once per run in Ray's object store;
a node unpacks it once per run into its run folder, and each attempt copies from there into its worktree with
the local routine (isolation/worktree.copy_in): nothing over a checked-out file, nothing copied ever committed.

Symlinks travel as symlinks, as they are copied locally; regular files, folders and symlinks only (a FIFO or a
device is left out). The contents never enter a log or a Ray task's arguments: only the archive's object ref
does."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path

from parex_lsp.executors.base import ExecutorError
from parex_lsp.isolation.worktree import copy_matches

LIMIT = 64 * 1024 * 1024  # bytes of file contents: every node of the run gets them all


def _outermost(matches: list[Path]) -> list[Path]:
    """Matches not inside another match (`config` and `config/*.toml` pack `config` once)."""
    chosen = set(matches)
    return [m for m in matches if not any(parent in chosen for parent in m.parents)]


def _size(path: Path) -> int:
    """Bytes of the regular files at or under `path`, symlinks not followed."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        return info.st_size if stat.S_ISREG(info.st_mode) else 0
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            entry = os.lstat(os.path.join(folder, name))
            total += entry.st_size if stat.S_ISREG(entry.st_mode) else 0
    return total


def _amount(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Files, folders and symlinks only; no owner names from the driver's machine."""
    if not (info.isreg() or info.isdir() or info.issym()):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack(workspace: Path, patterns: Sequence[str]) -> bytes | None:
    """The archive of what `patterns` match in `workspace`; None when nothing matches. ExecutorError when the
    files hold more than LIMIT bytes, or cannot be read."""
    try:
        return _pack(workspace, patterns)
    except OSError as e:
        raise ExecutorError(f"[run] copy_files: cannot read {e.filename or 'a match'}: {e.strerror or e}") from e


def _pack(workspace: Path, patterns: Sequence[str]) -> bytes | None:
    matches = _outermost(copy_matches(workspace, patterns))
    if not matches:
        return None
    sizes = {m: _size(m) for m in matches}
    total = sum(sizes.values())
    if total > LIMIT:
        largest = sorted(sizes, key=lambda m: -sizes[m])[:3]
        shown = ", ".join(f"{m.relative_to(workspace).as_posix()} ({_amount(sizes[m])})" for m in largest)
        raise ExecutorError(f"[run] copy_files match {_amount(total)} ({shown}): under executor = \"ray\" "
                            f"they are sent to every node the run uses, at most {LIMIT // (1024 * 1024)} MiB. "
                            "Commit what every node needs, or make it on the node in `[run] setup`")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for m in matches:
            tar.add(m, arcname=m.relative_to(workspace).as_posix(), recursive=True, filter=_plain)
    return out.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    """Unpack an archive of `pack` into `dest`: nothing outside it (tarfile's `tar` filter), links as links."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="tar")
