"""One chat-completions call: the request, the streamed (or plain JSON) answer, and its failures classified.

Everything the server sends is checked for shape: a chunk that is not what the API defines is a
permanent protocol error naming the field, never a crash. The answer is collected in pieces and joined
once (linear in its size), and the response is bounded in bytes, in line length and in total time.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from parex_lsp.agents.base import API_ERROR, SETUP_FAILED, RateLimit
from parex_lsp.agents.sse import DONE, ResponseTooLarge, SSEParser

MAX_ERROR_BODY = 64 * 1024  # bytes of an error response read for its message
MAX_REASON = 500  # characters of a server's message kept in a reason
DRAIN_TIMEOUT = 1.0  # seconds to read what follows `[DONE]` (the response's end) before dropping the connection


class ApiError(Exception):
    """One failed model call, already classified."""

    def __init__(self, reason: str, *, transient: bool, retry_after: float | None = None, code: str = API_ERROR):
        super().__init__(reason)
        self.reason, self.transient, self.retry_after, self.code = reason, transient, retry_after, code


class RateLimitedError(ApiError, RateLimit):
    """A 429 or an overload answer: the engine's gate waits out the agent's cooldown and sends it again."""


def protocol_error(what: str) -> ApiError:
    return ApiError(f"protocol error: {what}", transient=False)


@dataclass(slots=True)
class Limits:
    max_bytes: int  # decoded response bytes
    max_line: int  # bytes of one SSE line
    deadline: float  # seconds for the whole response


@dataclass(slots=True)
class Completion:
    """What one call produced."""

    text: str = ""  # the content so far; grown in place (see `add_text`)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # assistant-message form
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None

    def add_text(self, piece: str) -> None:
        # Taken out of the object, the string has one reference, and CPython then grows it in place
        # (`+=` on a sole reference reallocates): linear in the answer's size, and the answer is held
        # once, never as pieces plus their join. `reply.text += piece` would copy it every time.
        text, self.text = self.text, ""
        text += piece
        self.text = text

    @property
    def content(self) -> str:
        return self.text


class ToolCallAssembler:
    """Tool calls arrive in pieces (`index`, then name and argument fragments); this joins them.

    Servers differ: most send the name once, some repeat the whole name in every fragment (it is then
    not appended again), some send each call whole without `index`, some give `arguments` as a JSON
    object instead of a string.
    """

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, deltas: Any) -> None:
        if not isinstance(deltas, list):
            raise protocol_error(f"`delta.tool_calls` is {_kind(deltas)}, expected a list")
        for d in deltas:
            if not isinstance(d, dict):
                raise protocol_error(f"an item of `delta.tool_calls` is {_kind(d)}, expected an object")
            index = d.get("index")
            if index is None:
                index = len(self._calls)
            elif not isinstance(index, int):
                raise protocol_error(f"`tool_calls[].index` is {_kind(index)}, expected an integer")
            call = self._calls.setdefault(index, {"id": None, "name": "", "arguments": []})
            if d.get("id"):
                call["id"] = str(d["id"])
            fn = d.get("function") or {}
            if not isinstance(fn, dict):
                raise protocol_error(f"`tool_calls[].function` is {_kind(fn)}, expected an object")
            name = fn.get("name")
            if name:
                if not isinstance(name, str):
                    raise protocol_error(f"`tool_calls[].function.name` is {_kind(name)}, expected a string")
                if name != call["name"]:  # the same whole name again is a repeat, not a fragment
                    call["name"] += name
            args = fn.get("arguments")
            if isinstance(args, str):
                call["arguments"].append(args)
            elif isinstance(args, (dict, list)):
                call["arguments"] = [json.dumps(args)]  # given whole, as JSON: the latest one counts
            elif args is not None:
                raise protocol_error(f"`tool_calls[].function.arguments` is {_kind(args)}, expected a string")

    def calls(self) -> list[dict[str, Any]]:
        return [{"id": c["id"] or f"call_{i}", "type": "function",
                 "function": {"name": c["name"], "arguments": "".join(c["arguments"]) or "{}"}}
                for i, c in sorted(self._calls.items())]


async def stream_completion(client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str],
                            on_text: Callable[[str], None], limits: Limits) -> Completion:
    """POST one streaming chat completion; content deltas go to `on_text` as they arrive.

    Raises `ApiError`: transient for 429, 408, 5xx, a dropped connection, a timeout or a stream that stops
    before its end; permanent for other errors, redirects (a configuration error) and malformed answers.
    """
    try:
        with anyio.fail_after(limits.deadline):
            async with client.stream("POST", url, json=body, headers=headers) as response:
                return await _read(response, url, on_text, limits)
    except TimeoutError as e:
        raise ApiError(f"no complete answer from {url} within request_timeout={limits.deadline:g}s",
                       transient=True) from e
    except httpx.TimeoutException as e:
        raise ApiError(f"no answer from {url} in time ({type(e).__name__})", transient=True) from e
    except httpx.TransportError as e:
        raise ApiError(f"connection to {url} failed: {str(e) or type(e).__name__}", transient=True) from e
    except ResponseTooLarge as e:
        raise ApiError(f"the response from {url} {e}", transient=False) from e


async def _read(response: httpx.Response, url: str, on_text: Callable[[str], None], limits: Limits) -> Completion:
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("location", "(no Location header)")
        raise ApiError(f"{url} redirects (HTTP {status}) to {location}: set the agent's base_url to the new "
                       "location", transient=False, code=SETUP_FAILED)
    if status >= 400:
        return _raise_http_error(response, await _read_capped(response, MAX_ERROR_BODY))
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":  # a server that ignores `stream: true` answers with one whole completion
        raw = await _read_capped(response, limits.max_bytes, fail=True)
        return _whole_completion(_json(raw), on_text)
    return await _read_stream(response, SSEParser(limits.max_bytes, limits.max_line), on_text)


async def _read_stream(response: httpx.Response, parser: SSEParser, on_text: Callable[[str], None]) -> Completion:
    """Events are handled a network chunk at a time; after `[DONE]` the rest is read and dropped, so the
    connection goes back to the pool for the next call."""
    reply, calls = Completion(), ToolCallAssembler()
    finished = False
    chunks = response.aiter_bytes()
    async for chunk in chunks:
        if _events(parser.feed(chunk), reply, calls, on_text):
            finished = True
            break
    if finished:
        with anyio.move_on_after(DRAIN_TIMEOUT):  # a server that keeps the response open after [DONE]
            async for _ in chunks:
                pass
    else:
        finished = _events(parser.close(), reply, calls, on_text)
    if not finished and reply.finish_reason is None:
        raise ApiError("the response stream ended before the model finished", transient=True)
    reply.tool_calls = calls.calls()
    return reply


def _events(events: list[str], reply: Completion, calls: ToolCallAssembler, on_text: Callable[[str], None]) -> bool:
    """Read events into `reply`; True once `[DONE]` came."""
    for data in events:
        if data == DONE:
            return True
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            continue  # a stray non-JSON event is not worth failing a task for
        if not isinstance(chunk, dict):
            raise protocol_error(f"a stream chunk is {_kind(chunk)}, expected an object")
        if "error" in chunk and chunk["error"]:
            raise stream_error(chunk["error"])
        _usage(chunk, reply)
        for choice in _choices(chunk):
            _take(choice, "delta", reply, calls, on_text)
    return False


def _whole_completion(data: Any, on_text: Callable[[str], None]) -> Completion:
    """A non-streamed `chat.completion` object, read as the stream would have been."""
    if not isinstance(data, dict):
        raise protocol_error(f"the JSON answer is {_kind(data)}, expected an object")
    if data.get("error"):
        raise stream_error(data["error"])
    reply, calls = Completion(), ToolCallAssembler()
    _usage(data, reply)
    choices = _choices(data)
    if not choices:
        raise protocol_error("the JSON answer has no `choices`")
    _take(choices[0], "message", reply, calls, on_text)
    reply.tool_calls = calls.calls()
    return reply


def _take(choice: dict[str, Any], part: str, reply: Completion, calls: ToolCallAssembler,
          on_text: Callable[[str], None]) -> None:
    """One choice's `delta` (a stream chunk) or `message` (a whole answer): its text, tool calls, finish."""
    message = choice.get(part) or {}
    if not isinstance(message, dict):
        raise protocol_error(f"`choices[].{part}` is {_kind(message)}, expected an object")
    content = message.get("content")
    if content:
        if not isinstance(content, str):
            raise protocol_error(f"`choices[].{part}.content` is {_kind(content)}, expected a string")
        reply.add_text(content)
        on_text(content)
    if message.get("tool_calls"):
        calls.add(message["tool_calls"])
    _finish_reason(choice, reply)


def _choices(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise protocol_error(f"`choices` is {_kind(choices)}, expected a list")
    for c in choices:
        if not isinstance(c, dict):
            raise protocol_error(f"an item of `choices` is {_kind(c)}, expected an object")
    return choices


def _finish_reason(choice: dict[str, Any], reply: Completion) -> None:
    reason = choice.get("finish_reason")
    if reason:
        if not isinstance(reason, str):
            raise protocol_error(f"`choices[].finish_reason` is {_kind(reason)}, expected a string")
        reply.finish_reason = reason


def _usage(chunk: dict[str, Any], reply: Completion) -> None:
    usage = chunk.get("usage")
    if not usage:
        return
    if not isinstance(usage, dict):
        raise protocol_error(f"`usage` is {_kind(usage)}, expected an object")
    for name in ("prompt_tokens", "completion_tokens"):
        value = usage.get(name) or 0
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise protocol_error(f"`usage.{name}` is {_kind(value)}, expected a number")
        setattr(reply, name, int(value))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise protocol_error(f"the JSON answer does not parse ({e})") from None


async def _read_capped(response: httpx.Response, limit: int, fail: bool = False) -> bytes:
    parts, size = [], 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            if fail:
                raise ResponseTooLarge(f"is larger than {limit} bytes (max_response_bytes)")
            break
    return b"".join(parts)[:limit]


# -- errors ------------------------------------------------------------------------------------

def _raise_http_error(response: httpx.Response, raw: bytes) -> Completion:
    status = response.status_code
    message = _error_message(raw, response.reason_phrase)
    transient = status == 429 or status >= 500 or status == 408
    limited = status in (429, 529) or (status == 503 and "overload" in message.lower())
    raise (RateLimitedError if limited else ApiError)(
        f"HTTP {status}: {message}", transient=transient,
        retry_after=retry_after_seconds(response.headers) if transient else None)


def _error_message(raw: bytes, fallback: str) -> str:
    """The API's own words: `{"error": {"message": ...}}` (OpenAI), `{"error": "..."}` or `{"message": ...}`.
    Only the message is kept, never the whole body: some proxies echo the request's headers in it."""
    try:
        data = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", errors="replace").strip()
        return _one_line(text) if text else fallback
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return _one_line(str(err["message"]))
        if isinstance(err, str):
            return _one_line(err)
        for key in ("message", "detail"):
            if isinstance(data.get(key), str):
                return _one_line(data[key])
    return fallback


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "…"


def stream_error(err: Any) -> ApiError:
    """An error sent inside a 200 stream (vLLM, OpenRouter do this); classified by its code or type."""
    if not isinstance(err, dict):
        return ApiError(f"stream error: {_one_line(str(err))}", transient=False)
    code, kind = str(err.get("code") or ""), str(err.get("type") or "")
    transient = code == "429" or code.startswith("5") or any(
        w in (kind + " " + code).lower() for w in ("rate", "overloaded", "server_error", "unavailable"))
    limited = code == "429" or any(w in (kind + " " + code).lower() for w in ("rate", "overloaded"))
    return (RateLimitedError if limited else ApiError)(
        f"stream error: {_one_line(str(err.get('message') or kind or code))}", transient=transient)


# -- Retry-After ---------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def go_duration(value: str) -> float | None:
    """`1s`, `6m0s`, `20ms`, `1h2m3.5s` (OpenAI's x-ratelimit-reset-*) in seconds; a bare number is seconds."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """The least wait the server asked for, from the first of these that parses:
    `retry-after-ms`; `Retry-After` (seconds or an HTTP date); `llm_provider-retry-after` (LiteLLM);
    OpenAI's `x-ratelimit-reset-requests` / `-tokens` durations, each counted only when its
    `x-ratelimit-remaining-…` is 0 or absent (the longer one when both apply)."""
    if ms := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    for name in ("retry-after", "llm_provider-retry-after"):
        if (value := headers.get(name)) and (seconds := _seconds_or_date(value)) is not None:
            return seconds
    resets = [go_duration(headers[f"x-ratelimit-reset-{kind}"]) for kind in ("requests", "tokens")
              if f"x-ratelimit-reset-{kind}" in headers
              and headers.get(f"x-ratelimit-remaining-{kind}", "0").strip() in ("0", "")]
    known = [r for r in resets if r is not None]
    return max(known) if known else None


def _seconds_or_date(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
