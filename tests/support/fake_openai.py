"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions streaming format, scripted per request.

    with FakeOpenAI([text("Hello there"), rate_limited(retry_after=1), text("ok")]) as srv:
        agent = AgentSpec(name="m", kind="openai", base_url=srv.base_url, model="fake")
        ...
        srv.requests        # the JSON bodies received, in arrival order
        srv.max_in_flight   # the most requests it was serving at one time

    with FakeOpenAI(script, limit=RateLimit(requests=10, window=1.0)) as srv:
        srv.refused         # how many requests it answered 429 (beyond `requests` a `window`, with Retry-After)

A script is a list of replies, served in arrival order, or a function `Received -> Reply`. `by_prompt`
routes concurrent conversations: each task gets its own list, indexed by the assistant turns so far.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK_DELAY = 0.01  # between streamed events, so that concurrent requests overlap observably


@dataclass
class Reply:
    status: int = 200
    events: list[dict[str, Any] | str] = field(default_factory=list)  # SSE `data` payloads, streamed in order
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # a plain JSON response (errors)
    cut_after: int | None = None  # drop the connection after this many events, mid-stream
    delay: float = CHUNK_DELAY
    raw: bytes | None = None  # a pre-encoded event-stream body, sent in `raw_chunk`-byte pieces without delay
    raw_chunk: int = 64 * 1024
    keepalive_for: float = 0.0  # first send `: keep-alive` comments for this long (a proxy holding the line)
    latency: float = 0.0  # wait this long before answering at all


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    peer: tuple[str, int] = ("", 0)  # the client's address: one port for calls over one kept-alive connection
    at: float = 0.0  # time.monotonic() when the request arrived

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def prompt(self) -> str:
        """The first user message: which task this conversation belongs to."""
        return next((m.get("content") or "" for m in self.messages if m.get("role") == "user"), "")

    @property
    def assistant_turns(self) -> int:
        return sum(1 for m in self.messages if m.get("role") == "assistant")

    @property
    def tool_results(self) -> list[str]:
        return [m.get("content") or "" for m in self.messages if m.get("role") == "tool"]


# -- replies -----------------------------------------------------------------------------------

def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake", "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}


def _pieces(content: str | list[str]) -> list[str]:
    """Text as it streams: word by word (spaces kept), unless the pieces are given."""
    if isinstance(content, list):
        return content
    words = content.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words) if w or i < len(words) - 1]


def text(content: str | list[str], *, usage: tuple[int, int] | None = (10, 5), delay: float = CHUNK_DELAY) -> Reply:
    """A streamed answer without tool calls."""
    events: list[dict[str, Any] | str] = [_chunk({"role": "assistant", "content": ""})]
    events += [_chunk({"content": p}) for p in _pieces(content)]
    events.append(_chunk({}, "stop"))
    if usage:
        events.append(_usage(*usage))
    events.append("[DONE]")
    return Reply(events=events, delay=delay)


def tool_calls(*calls: tuple[str, dict[str, Any]], content: str = "", usage: tuple[int, int] | None = (10, 5),
               delay: float = CHUNK_DELAY) -> Reply:
    """A streamed turn that calls tools: each call's arguments arrive in fragments, as real servers send them."""
    events: list[dict[str, Any] | str] = [_chunk({"role": "assistant", "content": None})]
    events += [_chunk({"content": p}) for p in _pieces(content)] if content else []
    for i, (name, args) in enumerate(calls):
        events.append(_chunk({"tool_calls": [{"index": i, "id": f"call_{i}_{name}", "type": "function",
                                              "function": {"name": name, "arguments": ""}}]}))
        raw = json.dumps(args)
        third = max(1, len(raw) // 3)
        for start in range(0, len(raw), third):
            events.append(_chunk({"tool_calls": [{"index": i, "function": {"arguments": raw[start:start + third]}}]}))
    events.append(_chunk({}, "tool_calls"))
    if usage:
        events.append(_usage(*usage))
    events.append("[DONE]")
    return Reply(events=events, delay=delay)


def sse_body(events: list[dict[str, Any] | str]) -> bytes:
    """Events encoded as one event-stream body, for `Reply(raw=...)`."""
    return b"".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events)


def completion(content: str | None, *, tool_calls: list[dict[str, Any]] | None = None, finish: str = "stop",
               usage: tuple[int, int] = (10, 5)) -> Reply:
    """A plain (non-streamed) `chat.completion` JSON answer, as a server that ignores `stream` sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return Reply(body={"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
                       "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                       "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}})


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One streamed chunk, for scripting unusual streams event by event."""
    return _chunk(delta, finish)


def error(status: int, message: str, *, type: str = "invalid_request_error",
          headers: dict[str, str] | None = None) -> Reply:
    """An HTTP error with OpenAI's error body."""
    return Reply(status=status, headers=headers or {},
                 body={"error": {"message": message, "type": type, "param": None, "code": None}})


def rate_limited(retry_after: float | None = 1, message: str = "Rate limit reached for requests") -> Reply:
    """429, with `Retry-After` in seconds unless None."""
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return error(429, message, type="rate_limit_error", headers=headers)


def cut(content: str | list[str], after: int = 2) -> Reply:
    """Starts streaming `content`, then drops the connection after `after` events."""
    reply = text(content)
    reply.cut_after = after
    return reply


@dataclass
class RateLimit:
    """A provider's requests-per-window limit: a request beyond `requests` served in the last `window`
    seconds is answered 429 with the seconds until a place frees up (`Retry-After` rounded up, as HTTP
    wants whole seconds, and `retry-after-ms`, as OpenAI sends)."""

    requests: int
    window: float = 60.0


# -- routing -----------------------------------------------------------------------------------

def by_prompt(conversations: dict[str, list[Reply]]) -> Callable[[Received], Reply]:
    """Route each request to the conversation whose key occurs in its prompt; the reply is the one for
    the number of assistant turns the request already holds, so concurrent tasks never steal replies."""

    def handle(req: Received) -> Reply:
        for key, replies in conversations.items():
            if key in req.prompt:
                if req.assistant_turns < len(replies):
                    return replies[req.assistant_turns]
                return error(400, f"fake server: conversation {key!r} has no reply #{req.assistant_turns + 1}")
        return error(400, f"fake server: no conversation matches prompt {req.prompt[:80]!r}")

    return handle


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a fan-out connects all at once; the default backlog of 5 drops connections


class FakeOpenAI:
    def __init__(self, script: list[Reply] | Callable[[Received], Reply], limit: RateLimit | None = None):
        self._script = script
        self._limit = limit
        self._served: list[float] = []  # when the requests inside the limit's window were accepted
        self.refused = 0  # 429s answered for the limit
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.model_lists: list[dict[str, str]] = []  # headers of each `GET /models`
        self.in_flight = 0
        self.max_in_flight = 0
        self._server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.received]

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _begin(self, req: Received) -> Reply:
        with self._lock:
            n = len(self.received)
            self.received.append(req)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self._limit is not None:
                now, limit = time.monotonic(), self._limit
                self._served = [t for t in self._served if now - t < limit.window]
                if len(self._served) >= limit.requests:
                    self.refused += 1
                    wait = self._served[0] + limit.window - now
                    return error(429, f"Rate limit reached: {limit.requests} requests per {limit.window:g}s",
                                 type="rate_limit_error",
                                 headers={"Retry-After": str(max(1, math.ceil(wait))),
                                          "retry-after-ms": str(max(1, int(wait * 1000)))})
                self._served.append(now)
        if callable(self._script):
            return self._script(req)
        if n < len(self._script):
            return self._script[n]
        return error(400, f"fake server: no reply scripted for request #{n + 1}")

    def _end(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _make_handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked streaming, so a dropped connection is a visible cut

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            """`GET /models`, as `parex-lsp doctor` asks it: the request is kept (headers included)."""
            if not self.path.rstrip("/").endswith("/models"):
                self._json(404, {"error": {"message": f"unknown path {self.path}", "type": "not_found"}})
                return
            fake.model_lists.append({k.lower(): v for k, v in self.headers.items()})
            self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"unknown path {self.path}", "type": "not_found"}})
                return
            req = Received(json.loads(raw or b"{}"), {k.lower(): v for k, v in self.headers.items()},
                           self.client_address[:2], time.monotonic())
            try:
                try:
                    reply = fake._begin(req)
                except Exception as e:  # a broken test handler shows up as a permanent API error
                    reply = error(400, f"fake server: handler failed: {e!r}")
                if reply.latency:
                    time.sleep(reply.latency)
                if reply.body is not None or reply.status != 200:
                    self._json(reply.status, reply.body or {}, reply.headers)
                else:
                    self._stream(reply)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away (a cancelled task)
            finally:
                fake._end()

        def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if reply.keepalive_for:
                until = time.monotonic() + reply.keepalive_for
                while time.monotonic() < until:
                    self._piece(b": keep-alive\n\n")
                    time.sleep(0.05)
            if reply.raw is not None:
                for start in range(0, len(reply.raw), reply.raw_chunk):
                    self._piece(reply.raw[start:start + reply.raw_chunk])
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
            for i, event in enumerate(reply.events):
                if reply.cut_after is not None and i >= reply.cut_after:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                data = event if isinstance(event, str) else json.dumps(event)
                self._piece(f"data: {data}\n\n".encode())
                if reply.delay and i < len(reply.events) - 1:
                    time.sleep(reply.delay)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _piece(self, payload: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()

    return Handler
