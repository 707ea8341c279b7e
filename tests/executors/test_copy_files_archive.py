"""`[run] copy_files` as they travel to Ray nodes: the driver's archive holds what a local worktree would get,
unpacked on a node it matches the same patterns the same way, and what cannot go is refused with a reason."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parex_lsp.executors.base import ExecutorError
from parex_lsp.executors.ray import copied
from parex_lsp.isolation.worktree import copy_matches


def _unpacked(ws: Path, patterns: list[str], dest: Path) -> Path:
    data = copied.pack(ws, patterns)
    assert data is not None
    copied.unpack(data, dest)
    return dest


def test_the_archive_holds_the_matches_as_they_are(tmp_path: Path):
    ws = tmp_path / "ws"
    (ws / "config").mkdir(parents=True)
    (ws / ".env").write_text("SECRET=1\n")
    (ws / ".env").chmod(0o600)
    (ws / "config" / "local.toml").write_text("debug = true\n")
    (ws / "config" / "other.txt").write_text("not matched\n")
    (ws / "tool.sh").write_text("#!/bin/sh\n")
    (ws / "tool.sh").chmod(0o755)
    os.symlink(".env", ws / "env.link")  # a link stays a link
    (ws / ".parex").mkdir()
    (ws / ".parex" / "x.env").write_text("parex's own\n")
    out = _unpacked(ws, [".env", "*.env", "**/*.env", "config/*.toml", "tool.sh", "env.link", "missing"],
                    tmp_path / "out")
    found = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert found == [".env", "config", "config/local.toml", "env.link", "tool.sh"], found
    assert (out / ".env").read_text() == "SECRET=1\n" and (out / ".env").stat().st_mode & 0o777 == 0o600
    assert (out / "tool.sh").stat().st_mode & 0o111
    assert os.readlink(out / "env.link") == ".env"
    assert copied.pack(ws, ["nothing-*"]) is None


def test_nothing_below_a_folder_that_leads_out_of_the_workspace_is_sent(tmp_path: Path):
    """`validate` refuses a pattern whose fixed part leaves the workspace; a wildcard can still reach through a
    symlinked folder, and the match is left out, here as in a local worktree."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "id_rsa").write_text("private\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "inside").mkdir()
    (ws / "inside" / "id_rsa").write_text("in the workspace\n")
    os.symlink(tmp_path / "outside", ws / "linked")
    assert [p.relative_to(ws).as_posix() for p in copy_matches(ws, ["*/id_rsa"])] == ["inside/id_rsa"]
    out = _unpacked(ws, ["*/id_rsa"], tmp_path / "out")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["inside", "inside/id_rsa"]


def test_more_than_the_limit_is_refused_naming_the_largest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(copied, "LIMIT", 1000)
    (tmp_path / "deps").mkdir()
    (tmp_path / "deps" / "big.bin").write_bytes(b"x" * 1500)
    (tmp_path / ".env").write_text("A=1\n")
    too_much = r"copy_files match 1504 bytes \(deps \(1500 bytes\), \.env \(4 bytes\)\)"
    with pytest.raises(ExecutorError, match=too_much) as e:
        copied.pack(tmp_path, [".env", "deps"])
    assert "Commit what every node needs" in str(e.value)
    assert copied.pack(tmp_path, [".env"]) is not None


NAMES = st.sampled_from([".env", "a.toml", "b.txt", "conf", "local.env", "x"])
PATTERNS = st.sampled_from([".env", "*.env", "*.toml", "conf", "conf/*", "**/*.env", "*/a.toml", "x/**", "*"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(NAMES, min_size=1, max_size=3), min_size=1, max_size=8),
       st.lists(PATTERNS, min_size=1, max_size=3))
def test_unpacked_on_a_node_the_patterns_match_what_they_matched_in_the_workspace(paths: list[list[str]],
                                                                                  patterns: list[str]):
    """The node copies into each worktree by matching the same patterns in the unpacked archive: it must find
    exactly what a local worktree gets from the workspace."""
    with tempfile.TemporaryDirectory() as tmp:
        ws, out = Path(tmp, "ws"), Path(tmp, "out")
        ws.mkdir()
        for parts in paths:
            path = ws.joinpath(*parts)
            if any(p.is_file() for p in [path, *path.parents]) or path.is_dir():
                continue  # a file where a folder would go, or the reverse
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("/".join(parts))
        local = [p.relative_to(ws) for p in copy_matches(ws, patterns)]
        data = copied.pack(ws, patterns)
        if data is None:
            assert local == []
            return
        copied.unpack(data, out)
        assert [p.relative_to(out) for p in copy_matches(out, patterns)] == local
        for rel in local:
            if (ws / rel).is_file():
                assert (out / rel).read_text() == (ws / rel).read_text()
