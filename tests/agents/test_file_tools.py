"""The model's file tools keep what they do not change, refuse repository and parex state at any depth,
and turn non-text files into tool errors; the stream reader and the secret scrubber on awkward input."""

from __future__ import annotations

import codecs
import random
import time
from pathlib import Path

import pytest

from parex_lsp.agents.sse import ResponseTooLarge, SSEParser
from parex_lsp.agents.tools import FileTools
from parex_lsp.redact import MASK, Redactor, redact_url
from tests.support.agent_helpers import Recorder, make_ctx, model, run
from tests.support.fake_openai import FakeOpenAI, Received, text, tool_calls


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    d.mkdir()
    return d


def tools(ws: Path) -> FileTools:
    return FileTools(ws, run_id="r", task_id="t")


async def test_edit_keeps_crlf_line_ends_and_the_byte_order_mark(ws: Path):
    original = codecs.BOM_UTF8 + b"first = 1\r\nsecond = 2\r\nthird = 3\r\n"
    (ws / "w.py").write_bytes(original)
    t = tools(ws)
    assert await t.call("read_file", '{"path": "w.py"}') == "first = 1\nsecond = 2\nthird = 3\n"
    assert await t.call("edit_file", '{"path": "w.py", "search": "second = 2\\nthird", "replace": "second = 22\\nthird"}') \
        == "edited w.py"
    assert (ws / "w.py").read_bytes() == codecs.BOM_UTF8 + b"first = 1\r\nsecond = 22\r\nthird = 3\r\n"
    await t.call("write_file", '{"path": "w.py", "content": "new = 1\\nnext = 2\\n"}')
    assert (ws / "w.py").read_bytes() == codecs.BOM_UTF8 + b"new = 1\r\nnext = 2\r\n"


async def test_edit_of_mixed_line_ends_changes_only_the_matched_text(ws: Path):
    (ws / "m.txt").write_bytes(b"a\r\nb\nc\r\n")
    assert await tools(ws).call("edit_file", '{"path": "m.txt", "search": "b", "replace": "B"}') == "edited m.txt"
    assert (ws / "m.txt").read_bytes() == b"a\r\nB\nc\r\n"


async def test_non_utf8_and_binary_files_are_tool_errors_and_the_task_goes_on(tmp_path: Path, ws: Path):
    (ws / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (ws / "blob.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    script = [tool_calls(("read_file", {"path": "latin.txt"}), ("edit_file", {"path": "blob.bin", "search": "PNG",
                                                                               "replace": "GIF"})),
              text("could not read them")]
    with FakeOpenAI(script) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert outcome.ok
    latin, blob = Received(srv.requests[1], {}).tool_results
    assert latin.startswith("error: `latin.txt` is not UTF-8 text")
    assert blob.startswith("error: `blob.bin` is not UTF-8 text")
    assert (ws / "blob.bin").read_bytes() == b"\x89PNG\r\n\x1a\n\x00\x00"


@pytest.mark.parametrize("path", ["vendor/lib/.git/config", "vendor/lib/.GIT/hooks/pre-commit", ".Git/config",
                                  "a/.parex/runs/x", "sub/.PAREX/locks", ".git"])
async def test_git_and_parex_folders_are_refused_at_any_depth_in_every_tool(ws: Path, path: str):
    (ws / "vendor" / "lib" / ".git").mkdir(parents=True)
    (ws / "vendor" / "lib" / ".git" / "config").write_text("[core]\n")
    t = tools(ws)
    for name, args in (("write_file", {"path": path, "content": "[core]\n\tfsmonitor = evil\n"}),
                       ("edit_file", {"path": path, "search": "[core]", "replace": "[core]\n\tfsmonitor = evil"}),
                       ("read_file", {"path": path}), ("list_files", {"path": path})):
        import json

        result = await t.call(name, json.dumps(args))
        assert result.startswith("error:") and "`.git` or `.parex`" in result, (name, result)
    assert (ws / "vendor" / "lib" / ".git" / "config").read_text() == "[core]\n"
    assert not (ws / ".git").exists() and not (ws / "a").exists()


async def test_a_symlink_into_a_nested_git_folder_is_refused(ws: Path):
    (ws / "lib" / ".git").mkdir(parents=True)
    (ws / "innocent").symlink_to(ws / "lib" / ".git", target_is_directory=True)
    result = await tools(ws).call("write_file", '{"path": "innocent/config", "content": "x"}')
    assert result.startswith("error:") and "`.git` or `.parex`" in result
    assert not (ws / "lib" / ".git" / "config").exists()


async def test_list_files_hides_nested_git_state(ws: Path):
    (ws / "vendor" / ".git").mkdir(parents=True)
    (ws / "vendor" / ".git" / "HEAD").write_text("ref")
    (ws / "vendor" / "x.py").write_text("")
    (ws / "wt").mkdir()
    (ws / "wt" / ".git").write_text("gitdir: elsewhere")
    assert await tools(ws).call("list_files", "{}") == "vendor/x.py"


# -- the stream reader -------------------------------------------------------------------------------

def _events(chunks: list[bytes], max_bytes: int = 1 << 30, max_line: int = 1 << 22) -> list[str]:
    parser = SSEParser(max_bytes, max_line)
    return [e for c in chunks for e in parser.feed(c)] + parser.close()


def test_events_are_the_same_however_the_bytes_are_cut():
    body = ("data: {\"a\": \"é ü 漢\"}\r\n\r\n: keep-alive\n\nevent: x\ndata: one\ndata:two\nid: 3\n\n"
            "data\n\ndata: [DONE]\n\ndata: last").encode()
    expected = ['{"a": "é ü 漢"}', "one\ntwo", "", "[DONE]", "last"]
    rng = random.Random(7)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randint(0, 12)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=False)]
        assert _events(pieces) == expected


def test_reading_a_long_line_in_small_pieces_is_linear_and_bounded():
    pieces = [b"data: "] + [b"x" * 64] * 40_000 + [b"\n\n"]  # one 2.5 MB event in 64-byte pieces
    started = time.perf_counter()
    (event,) = _events(pieces)
    assert len(event) == 64 * 40_000 and time.perf_counter() - started < 2
    with pytest.raises(ResponseTooLarge, match="max_line_bytes"):
        _events(pieces, max_line=100_000)
    with pytest.raises(ResponseTooLarge, match="max_response_bytes"):
        _events(pieces, max_bytes=1_000_000)


# -- the scrubber ------------------------------------------------------------------------------------

def test_scrub_hides_every_secret_and_url_password_and_leaves_the_rest():
    r = Redactor(["sk-live-ABCDEFG\r", "tok_1234567"])
    out = r.scrub("key sk-live-ABCDEFG\r and sk-live-ABCDEFG, tok_1234567; url https://bob:s3cr3t@host:8443/v1 "
                  "and http://host:8080/a@b")
    assert out == (f"key {MASK} and {MASK}, {MASK}; url https://bob:{MASK}@host:8443/v1 and http://host:8080/a@b")
    assert redact_url("http://user:pw-123456@127.0.0.1:9/v1") == f"http://user:{MASK}@127.0.0.1:9/v1"
    assert Redactor(["short"]).scrub("short") == "short"  # too short to be a key: masking it would mask words
    assert r.scrub_data({"a": ["tok_1234567", 3], "b": None}) == {"a": [MASK, 3], "b": None}


def test_scrub_is_fast_on_large_text():
    r = Redactor([f"sk-key-number-{i:04d}" for i in range(20)])
    big = ("plain output line without secrets\n" * 200_000)
    started = time.perf_counter()
    assert r.scrub(big) is big or r.scrub(big) == big
    assert time.perf_counter() - started < 0.5
