"""A model agent: any OpenAI-compatible chat-completions endpoint, streamed, with file tools under locks.

One `run` is one attempt: a loop of streamed model calls, each followed by the tool calls it asked for,
until the model answers without tools or `max_steps` calls were made. Retries belong to the engine, which
reads `Outcome.transient` and `Outcome.retry_after`.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from parex_lsp.agents.base import (
    API_ERROR,
    EXIT_CODE,
    LOCK_TIMEOUT,
    SETUP_FAILED,
    AgentContext,
    Outcome,
    RateLimit,
    RequestRefused,
)
from parex_lsp.agents.sse import DONE, sse_data
from parex_lsp.agents.tools import COMMAND_TIMEOUT, FileTools
from parex_lsp.contract import EventKind
from parex_lsp.contract import Usage as UsageEvent
from parex_lsp.isolation.registry import LockOwner, LockTimeout
from parex_lsp.plan.model import AgentSpec

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SYSTEM_PROMPT = (
    "You are a coding agent working in a project directory. Use the tools to look at and change files; "
    "paths are relative to the project directory and must stay inside it. Make the change the user asks "
    "for, completely, then answer with a short summary of what you changed."
)
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 300.0  # between two streamed chunks: a slow local model may think for minutes


class ApiError(Exception):
    """One failed model call, already classified."""

    def __init__(self, reason: str, *, transient: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.transient, self.retry_after = reason, transient, retry_after


class RateLimitedError(ApiError, RateLimit):
    """A 429 or an overload answer: the engine's gate waits out the agent's cooldown and sends it again."""


@dataclass(slots=True)
class Completion:
    """What one streamed call produced."""

    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # assistant-message form
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, c: Completion) -> None:
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens

    def to_wire(self, prices: dict[str, float]) -> dict[str, Any]:
        d: dict[str, Any] = {"promptTokens": self.prompt_tokens, "completionTokens": self.completion_tokens}
        if prices:
            d["costUsd"] = round((self.prompt_tokens * prices.get("input", 0.0)
                                  + self.completion_tokens * prices.get("output", 0.0)) / 1_000_000, 6)
        return d


class ToolCallAssembler:
    """Tool calls arrive in pieces (`index`, then name and argument fragments); this joins them."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, deltas: list[dict[str, Any]]) -> None:
        for d in deltas:
            # Some servers send each call whole, without `index`: then each one is a call of its own.
            index = d["index"] if "index" in d else len(self._calls)
            call = self._calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
            if d.get("id"):
                call["id"] = d["id"]
            fn = d.get("function") or {}
            if fn.get("name"):
                call["name"] += fn["name"]
            if fn.get("arguments"):
                args = fn["arguments"]
                call["arguments"] += args if isinstance(args, str) else json.dumps(args)

    def calls(self) -> list[dict[str, Any]]:
        return [{"id": c["id"] or f"call_{i}", "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"] or "{}"}}
                for i, c in sorted(self._calls.items())]


class OpenAIAgent:
    """`OpenAIAgent()` takes its settings from `ctx.agent`; `OpenAIAgent(spec)` pins them."""

    def __init__(self, spec: AgentSpec | None = None):
        self.spec = spec

    async def run(self, ctx: AgentContext) -> Outcome:
        spec = self.spec or ctx.agent
        headers = {"Accept": "text/event-stream"}
        if spec.api_key_env:
            key = ctx.env.get(spec.api_key_env) or os.environ.get(spec.api_key_env)
            if not key:
                return Outcome(False, code=SETUP_FAILED,
                               reason=f"agent `{spec.name}`: environment variable {spec.api_key_env} is not set "
                                      "(it holds the API key)")
            headers["Authorization"] = f"Bearer {key}"
        if not spec.model:
            return Outcome(False, code=SETUP_FAILED, reason=f"agent `{spec.name}`: no `model` configured")

        screen = _Screen(ctx.output.write)

        def on_lock_wait(key: str, owner: LockOwner) -> None:
            screen.end_line()
            screen.write(f"  waiting for {key}\n")
            if ctx.on_lock_wait is not None:
                ctx.on_lock_wait(key, owner)  # the engine reports whom it waits for

        tools = FileTools(ctx.workdir, run_id=ctx.run_id, task_id=ctx.task.id, workspace=ctx.workspace,
                          locks=ctx.locks, lock_timeout=ctx.task.lock_timeout, on_wait=on_lock_wait,
                          allow_commands=spec.allow_commands,
                          command_timeout=float(spec.extra.get("command_timeout", COMMAND_TIMEOUT)), env=ctx.env)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": spec.extra.get("system_prompt", SYSTEM_PROMPT)},
            {"role": "user", "content": ctx.task.prompt},
        ]
        body: dict[str, Any] = {"model": spec.model, "stream": True, "stream_options": {"include_usage": True},
                                "tools": tools.schemas()}
        if "temperature" in spec.extra:
            body["temperature"] = spec.extra["temperature"]
        url = (spec.base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        timeout = httpx.Timeout(float(spec.extra.get("request_timeout", READ_TIMEOUT)), connect=CONNECT_TIMEOUT)
        usage = Usage()

        def outcome(ok: bool, **kw: Any) -> Outcome:
            screen.end_line()
            return Outcome(ok, usage=usage.to_wire(spec.prices), **kw)

        async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
            for _ in range(spec.max_steps):
                try:
                    reply = await ctx.gate.send(  # the engine's budget and quota, at each request
                        lambda: stream_completion(client, url, {**body, "messages": messages}, screen.write))
                except RequestRefused as e:
                    return outcome(False, code=e.code, reason=e.reason)
                except ApiError as e:
                    return outcome(False, code=API_ERROR, transient=e.transient, retry_after=e.retry_after,
                                   reason=e.reason)
                usage.add(reply)
                ctx.emit(EventKind.USAGE, UsageEvent(usage.to_wire(spec.prices)))
                messages.append(_assistant_message(reply))
                if not reply.tool_calls:
                    return outcome(True, exit_code=0, answer=reply.content)
                for call in reply.tool_calls:
                    name, arguments = call["function"]["name"], call["function"]["arguments"]
                    screen.end_line()
                    screen.write(f"→ {name} {_tool_subject(arguments)}".rstrip() + "\n")
                    try:
                        result = await tools.call(name, arguments)
                    except LockTimeout as e:
                        return outcome(False, code=LOCK_TIMEOUT, reason=f"{name}: {e}")
                    if result.startswith("error:"):
                        screen.write(f"  {result}\n")
                    messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        return outcome(False, code=EXIT_CODE,
                       reason=f"the model still wanted tools after max_steps={spec.max_steps} calls; "
                              "raise `max_steps` or split the task")


async def stream_completion(client: httpx.AsyncClient, url: str, body: dict[str, Any],
                            on_text: Callable[[str], None]) -> Completion:
    """POST one streaming chat completion; content deltas go to `on_text` as they arrive.

    Raises `ApiError`: transient for 429, 5xx, a dropped connection or a stream that stops before its end.
    """
    reply, calls = Completion(), ToolCallAssembler()
    finished = False
    try:
        async with client.stream("POST", url, json=body) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _http_error(response)
            async for data in sse_data(response.aiter_lines()):
                if data == DONE:
                    finished = True
                    break
                try:
                    chunk = json.loads(data)
                except json.JSONDecodeError:
                    continue  # a stray non-JSON event is not worth failing a task for
                if "error" in chunk:
                    raise _stream_error(chunk["error"])
                if chunk.get("usage"):
                    reply.prompt_tokens = int(chunk["usage"].get("prompt_tokens") or 0)
                    reply.completion_tokens = int(chunk["usage"].get("completion_tokens") or 0)
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        reply.content += delta["content"]
                        on_text(delta["content"])
                    if delta.get("tool_calls"):
                        calls.add(delta["tool_calls"])
                    if choice.get("finish_reason"):
                        reply.finish_reason = choice["finish_reason"]
    except httpx.TimeoutException as e:
        raise ApiError(f"no answer from {url} in time ({type(e).__name__})", transient=True) from e
    except httpx.TransportError as e:
        raise ApiError(f"connection to {url} failed: {e or type(e).__name__}", transient=True) from e
    if not finished and reply.finish_reason is None:
        raise ApiError("the response stream ended before the model finished", transient=True)
    reply.tool_calls = calls.calls()
    return reply


def _http_error(response: httpx.Response) -> ApiError:
    status = response.status_code
    message = _error_message(response)
    transient = status == 429 or status >= 500 or status == 408
    limited = status in (429, 529) or (status == 503 and "overload" in message.lower())
    return (RateLimitedError if limited else ApiError)(
        f"HTTP {status}: {message}", transient=transient,
        retry_after=retry_after_seconds(response.headers) if transient else None)


def _error_message(response: httpx.Response) -> str:
    """The API's own words: `{"error": {"message": ...}}` (OpenAI), `{"error": "..."}` or `{"message": ...}`."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if data.get("detail"):
            return str(data["detail"])
    return json.dumps(data)[:500]


def _stream_error(err: Any) -> ApiError:
    """An error sent inside a 200 stream (vLLM, OpenRouter do this); classified by its code or type."""
    if not isinstance(err, dict):
        return ApiError(f"stream error: {err}", transient=False)
    code, kind = str(err.get("code") or ""), str(err.get("type") or "")
    transient = code == "429" or code.startswith("5") or any(
        w in (kind + " " + code).lower() for w in ("rate", "overloaded", "server_error", "unavailable"))
    limited = code == "429" or any(w in (kind + " " + code).lower() for w in ("rate", "overloaded"))
    return (RateLimitedError if limited else ApiError)(f"stream error: {err.get('message') or kind or code}",
                                                       transient=transient)


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """`retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    if ms := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _assistant_message(reply: Completion) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    if reply.tool_calls:
        msg["tool_calls"] = reply.tool_calls
    return msg


def _tool_subject(arguments: str) -> str:
    """What a tool call is about, for the output line: its path or command."""
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return ""
    if not isinstance(args, dict):
        return ""
    subject = args.get("path") or args.get("command") or ""
    return str(subject).splitlines()[0][:200] if subject else ""


class _Screen:
    """Streams text to the task output, remembering whether the last line is open, so that tool lines
    always start on a line of their own."""

    def __init__(self, write: Callable[[str], None]):
        self._write = write
        self._open = False

    def write(self, text: str) -> None:
        if text:
            self._write(text)
            self._open = not text.endswith("\n")

    def end_line(self) -> None:
        if self._open:
            self.write("\n")
