"""Broken framing never kills the server nor leaves it deaf: huge lengths are refused, wrong lengths and
lowercase headers are read through, malformed messages with an id are answered. Against the real process."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parex_lsp.lsp.framing import Framer, Message
from tests.lsp.raw import StdioServer, frame, initialize, note, req


@pytest.fixture
def server(tmp_path):
    s = StdioServer(tmp_path)
    s.send(initialize(1, tmp_path))
    s.out.answer(1)
    yield s
    s.close()


def status_works(server: StdioServer, msg_id: int) -> None:
    server.send(req(msg_id, "parex/status"))
    assert server.out.answer(msg_id)["result"] == {"runs": []}


@pytest.mark.parametrize("length", [10**15, 10**20])
def test_a_huge_content_length_is_refused_and_the_server_goes_on(server, length):
    body = json.dumps(req(5, "parex/status")).encode()
    server.write(b"Content-Length: %d\r\n\r\n" % length + body)
    answer = server.out.answer(5)
    assert answer["error"]["code"] == -32600 and "over the limit" in answer["error"]["message"]
    status_works(server, 6)
    assert server.proc.poll() is None


@pytest.mark.parametrize("delta", [-3, -1, 1, 3])
def test_a_length_a_few_bytes_off_is_read_through(server, delta):
    server.write(frame(req(5, "parex/status"), length_delta=delta))
    server.write(frame(req(6, "parex/status")))
    assert server.out.answer(5)["result"] == {"runs": []}
    assert server.out.answer(6)["result"] == {"runs": []}


def test_a_too_long_length_on_the_last_message_is_still_answered(server):
    server.write(frame(req(5, "parex/status"), length_delta=7))  # then silence
    assert server.out.answer(5, timeout=10)["result"] == {"runs": []}


def test_a_lowercase_header_is_read(server):
    server.write(frame(req(5, "parex/status"), header=b"content-length"))
    assert server.out.answer(5)["result"] == {"runs": []}


def test_malformed_messages_with_an_id_get_an_error_and_the_server_goes_on(server):
    server.write(b'Content-Length: 30\r\n\r\n{"jsonrpc": "2.0", "id": 7, "m')  # not JSON
    server.write(frame({"jsonrpc": "1.0", "id": 8, "method": "parex/status"}))  # not JSON-RPC 2.0
    server.write(frame({"jsonrpc": "2.0", "id": 9, "method": "textDocument/hover", "params": 5}))  # bad params
    server.write(frame([1, 2]))  # not an object, no id: nothing to answer
    assert server.out.answer(7)["error"]["code"] == -32700
    assert server.out.answer(8)["error"]["code"] == -32600
    assert server.out.answer(9)["error"]["code"] == -32602
    status_works(server, 10)


def test_garbage_between_messages_is_skipped(server):
    server.write(b"\r\nhello\r\n\r\n\x00\xff" + frame(req(5, "parex/status")))
    assert server.out.answer(5)["result"] == {"runs": []}
    server.send(req(6, "shutdown", None))
    server.out.answer(6)
    server.send(note("exit"))
    assert server.wait() == 0


messages = st.lists(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=20)), max_size=3),
                    min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(messages, st.lists(st.integers(1, 64), min_size=1, max_size=20), st.booleans())
def test_well_framed_messages_come_out_whole_however_the_bytes_are_cut(values, cuts, lower):
    data = b"".join(frame(v, header=b"content-length" if lower else b"Content-Length") for v in values)
    framer, out, pos, i = Framer(), [], 0, 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        out += framer.feed(data[pos:pos + n])
        pos, i = pos + n, i + 1
    assert out == [Message(v) for v in values]
