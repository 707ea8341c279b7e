"""Looking at a task's branch without touching any checkout: its change summary, a dry merge against another
commit (`git merge-tree --write-tree`, git >= 2.38), and its per-file diff against where it started.

Everything here reads the object database only; the person's working tree and index are never read or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import git
from git.exc import GitCommandError

MAX_INLINE = 256 * 1024  # file contents larger than this are given as blob ids only


@dataclass(frozen=True, slots=True)
class Changes:
    """What a branch changed since it left its base: the `changes` field of results, events and the journal."""

    files: int
    added: int
    removed: int
    commits: int

    @property
    def size(self) -> int:
        return self.added + self.removed

    def to_wire(self) -> dict[str, int]:
        return {"files": self.files, "added": self.added, "removed": self.removed, "commits": self.commits}


def merge_base(g: git.Git, a: str, b: str) -> str:
    return str(g.merge_base(a, b)).strip()


def changes(g: git.Git, base: str, branch: str) -> Changes:
    """`branch` against its merge base with `base`; binary files count as changed files with no lines."""
    start = merge_base(g, base, branch)
    files = added = removed = 0
    for line in str(g.diff("--numstat", "--no-renames", start, branch)).splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        files += 1
        added += int(parts[0]) if parts[0].isdigit() else 0
        removed += int(parts[1]) if parts[1].isdigit() else 0
    commits = int(str(g.rev_list("--count", f"{start}..{branch}")).strip() or 0)
    return Changes(files, added, removed, commits)


def predict_conflicts(g: git.Git, ours: str, theirs: str) -> list[str]:
    """The files a merge of `theirs` into `ours` would leave conflicted; [] when it merges cleanly.
    A dry run: the merged tree is written to the object store only, no ref or checkout moves."""
    try:
        g.merge_tree("--write-tree", "--name-only", "--no-messages", ours, theirs)
        return []
    except GitCommandError as e:
        if e.status != 1:  # 1 means conflicts; anything else is git failing
            raise
        raw: Any = e.stdout
        out = (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")).strip()
        if out.startswith("stdout: '"):
            out = out[len("stdout: '"):].removesuffix("'")
        lines = [ln for ln in out.splitlines() if ln.strip()]
        return sorted(dict.fromkeys(lines[1:]))  # the first line is the merged tree's id


def _blob(g: git.Git, rev: str, path: str) -> str | None:
    try:
        return str(g.rev_parse("--verify", "--quiet", f"{rev}:{path}")).strip() or None
    except GitCommandError:
        return None


def _content(g: git.Git, blob: str | None) -> str | None:
    if blob is None:
        return None
    size = int(str(g.cat_file("-s", blob)).strip())
    if size > MAX_INLINE:
        return None
    data: bytes = g.cat_file("blob", blob, stdout_as_string=False, strip_newline_in_stdout=False)
    if b"\0" in data[:8000]:
        return None  # binary: the blob id is the answer
    return data.decode("utf-8", errors="replace")


def file_diffs(g: git.Git, base: str, branch: str) -> dict[str, Any]:
    """`parex/diff`: the branch's changed files since its merge base with `base`, each with both blob ids and
    (when text and not too large) both contents, and the whole unified diff."""
    start = merge_base(g, base, branch)
    head = str(g.rev_parse(branch)).strip()
    files: list[dict[str, Any]] = []
    for line in str(g.diff("--name-status", "--no-renames", start, head)).splitlines():
        status, _, path = line.partition("\t")
        if not path:
            continue
        base_blob, result_blob = _blob(g, start, path), _blob(g, head, path)
        files.append({"path": path, "status": {"A": "added", "D": "deleted"}.get(status[:1], "modified"),
                      "baseBlob": base_blob, "resultBlob": result_blob,
                      "base": _content(g, base_blob), "result": _content(g, result_blob)})
    diff = str(g.diff("--no-renames", "--no-color", start, head, strip_newline_in_stdout=False))
    return {"base": start, "head": head, "files": files, "diff": diff}
