"""A model agent: any OpenAI-compatible chat-completions endpoint, streamed, with file tools under locks.

One `run` is one attempt: a loop of streamed model calls, each followed by the tool calls it asked for,
until the model answers without tools or `max_steps` calls were made. Retries belong to the engine, which
reads `Outcome.transient` and `Outcome.retry_after`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from parex_lsp.agents.base import (
    API_ERROR,
    EXIT_CODE,
    LOCK_TIMEOUT,
    SETUP_FAILED,
    AgentContext,
    Outcome,
    RequestRefused,
)
from parex_lsp.agents.http_pool import shared_client
from parex_lsp.agents.openai_stream import (
    ApiError,
    Completion,
    Limits,
    ToolCallAssembler,
    go_duration,
    retry_after_seconds,
    stream_completion,
)
from parex_lsp.agents.tools import COMMAND_TIMEOUT, FileTools
from parex_lsp.contract import EventKind, TaskWarning
from parex_lsp.contract import Usage as UsageEvent
from parex_lsp.isolation.registry import LockOwner, LockTimeout
from parex_lsp.plan.model import AgentSpec
from parex_lsp.redact import Redactor, redact_url, url_secrets

__all__ = ["ApiError", "Completion", "OpenAIAgent", "ToolCallAssembler", "Usage", "go_duration",
           "retry_after_seconds", "stream_completion"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SYSTEM_PROMPT = (
    "You are a coding agent working in a project directory. Use the tools to look at and change files; "
    "paths are relative to the project directory and must stay inside it. Make the change the user asks "
    "for, completely, then answer with a short summary of what you changed."
)
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 300.0  # between two received bytes: a slow local model may think for minutes
REQUEST_TIMEOUT = 900.0  # a whole response, however the server trickles it (keep-alive comments included)
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # what an Authorization header value may hold
OPTIONS = {  # option -> allowed values (None: any)
    "on_truncated": ("warn", "fail"),
    "tool_call_content": ("empty", "null", "omit"),
}


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


class _Setup(Exception):
    """A configuration problem: the attempt fails with `setup-failed` before anything is sent."""


class OpenAIAgent:
    """`OpenAIAgent()` takes its settings from `ctx.agent`; `OpenAIAgent(spec)` pins them.

    `usage` is one attempt's running total; the engine sums a task's attempts (engine/spend.py), so the
    tokens a failed attempt spent are still counted.
    """

    def __init__(self, spec: AgentSpec | None = None):
        self.spec = spec
        self.usage = Usage()

    async def run(self, ctx: AgentContext) -> Outcome:
        spec = self.spec or ctx.agent
        self.usage = Usage()
        try:
            if not spec.model:
                raise _Setup("no `model` configured")
            key, raw = _api_key(spec, {**spec.env, **ctx.env})
            options = _options(spec)
        except _Setup as e:
            return Outcome(False, code=SETUP_FAILED, reason=f"agent `{spec.name}`: {e}",
                           usage=self.usage.to_wire(spec.prices))
        conversation = _Conversation(ctx, spec, options, self.usage, key,
                                     Redactor([*url_secrets(spec.base_url), key or "", raw or ""]))
        return await conversation.run()


def _api_key(spec: AgentSpec, env: dict[str, str]) -> tuple[str | None, str | None]:
    """The key (stripped) and the variable's raw value, from the agent's `env` table, else the environment."""
    name = spec.api_key_env
    if not name:
        return None, None
    raw = env.get(name) if name in env else os.environ.get(name)
    key = (raw or "").strip()  # a .env saved with CRLF line ends leaves a `\r` on the value
    if not key:
        raise _Setup(f"environment variable {name} is not set or empty (it holds the API key)")
    if not HEADER_SAFE.fullmatch(key):
        raise _Setup(f"environment variable {name} holds a value that cannot be sent as an API key "
                     "(it has spaces, control characters or non-ASCII text inside)")
    return key, raw


class _Conversation:
    """One attempt: model calls and the tool calls they ask for, until an answer or `max_steps`."""

    def __init__(self, ctx: AgentContext, spec: AgentSpec, options: dict[str, Any], usage: Usage,
                 key: str | None, hide: Redactor):
        self.ctx, self.spec, self.options, self.usage, self.hide = ctx, spec, options, usage, hide
        self.headers = {"Accept": "text/event-stream"} | ({"Authorization": f"Bearer {key}"} if key else {})
        self.screen = _Screen(ctx.output.write)
        self.warnings: list[dict[str, Any]] = []
        self.tools = FileTools(ctx.workdir, run_id=ctx.run_id, task_id=ctx.task.id, workspace=ctx.workspace,
                               locks=ctx.locks, lock_timeout=ctx.task.lock_timeout, on_wait=self._on_lock_wait,
                               allow_commands=spec.allow_commands, command_timeout=options["command_timeout"],
                               command_ctx=dataclasses.replace(ctx, agent=spec), strict=options["strict_tools"])
        self.messages: list[dict[str, Any]] = [
            # the run's `context` files after the system prompt: one prefix, identical for every task using them
            {"role": "system", "content": "\n\n".join(
                [spec.extra.get("system_prompt", SYSTEM_PROMPT), *filter(None, [ctx.shared_context])])},
            {"role": "user", "content": ctx.task.prompt},
        ]
        self.body: dict[str, Any] = {"model": spec.model, "stream": True, "stream_options": {"include_usage": True},
                                     "tools": self.tools.schemas()}
        if "temperature" in spec.extra:
            self.body["temperature"] = spec.extra["temperature"]
        self.url = (spec.base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self.limits = Limits(options["max_response_bytes"], options["max_line_bytes"], options["request_timeout"])

    async def run(self) -> Outcome:
        timeout = httpx.Timeout(min(READ_TIMEOUT, self.limits.deadline), connect=CONNECT_TIMEOUT)
        tls = not self.url.lower().startswith("http://")
        async with shared_client(self.ctx.run_id, self.spec.name, timeout, tls) as client, \
                anyio.create_task_group() as tg:
            tg.start_soon(self.screen.keep_flushed)
            try:
                outcome = await self._steps(client)
            finally:
                tg.cancel_scope.cancel()
                self.screen.flush()  # a cancelled or timed-out attempt still shows what the model had sent
        return outcome

    async def _steps(self, client: httpx.AsyncClient) -> Outcome:
        ctx, spec, screen = self.ctx, self.spec, self.screen
        for step in range(spec.max_steps):
            try:
                reply = await ctx.gate.send(  # the engine's budget and quota, at each request
                    lambda: stream_completion(client, self.url, {**self.body, "messages": self.messages},
                                              self.headers, screen.write, self.limits))
            except RequestRefused as e:
                return self._outcome(False, code=e.code, reason=e.reason)
            except ApiError as e:
                return self._outcome(False, code=e.code, transient=e.transient, retry_after=e.retry_after,
                                     reason=e.reason.replace(self.url, redact_url(self.url)))
            self.usage.add(reply)
            ctx.emit(EventKind.USAGE, UsageEvent(self.usage.to_wire(spec.prices)))
            if reply.finish_reason == "length":
                message = f"the model's answer was cut at its length limit (finish_reason \"length\") in call {step + 1}"
                if self.options["on_truncated"] == "fail":
                    return self._outcome(False, code=API_ERROR, reason=message + ' (on_truncated = "fail")')
                warning = TaskWarning("truncated", message)
                self.warnings.append(warning.to_wire())
                ctx.emit(EventKind.WARNING, warning)
                screen.end_line()
                screen.write(f"  warning: {message}\n")
            self.messages.append(_assistant_message(reply, self.options["tool_call_content"]))
            if not reply.tool_calls:
                return self._outcome(True, exit_code=0, answer=reply.content)
            for call in reply.tool_calls:
                name, arguments = call["function"]["name"], call["function"]["arguments"]
                screen.end_line()
                screen.write(f"→ {name} {_tool_subject(arguments)}".rstrip() + "\n")
                try:
                    result = await self.tools.call(name, arguments)
                except LockTimeout as e:
                    return self._outcome(False, code=LOCK_TIMEOUT, reason=f"{name}: {e}")
                if result.startswith("error:"):
                    screen.write(f"  {result}\n")
                self.messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        return self._outcome(False, code=EXIT_CODE,
                             reason=f"the model still wanted tools after max_steps={spec.max_steps} calls; "
                                    "raise `max_steps` or split the task")

    def _outcome(self, ok: bool, **kw: Any) -> Outcome:
        self.screen.end_line()
        if kw.get("reason"):
            kw["reason"] = self.hide.scrub(kw["reason"])
        return Outcome(ok, usage=self.usage.to_wire(self.spec.prices), warnings=self.warnings or None, **kw)

    def _on_lock_wait(self, key: str, owner: LockOwner) -> None:
        self.screen.end_line()
        self.screen.write(f"  waiting for {key}\n")
        if self.ctx.on_lock_wait is not None:
            self.ctx.on_lock_wait(key, owner)  # the engine reports whom it waits for


def _options(spec: AgentSpec) -> dict[str, Any]:
    """The agent's finer settings, checked: a wrong value fails the task naming the option."""
    extra = spec.extra
    for key, allowed in OPTIONS.items():
        if key in extra and extra[key] not in allowed:
            raise _Setup(f"`{key}` must be " + " or ".join(f'"{a}"' for a in allowed) + f", not {extra[key]!r}")
    out: dict[str, Any] = {
        "on_truncated": extra.get("on_truncated", "warn"),
        "tool_call_content": extra.get("tool_call_content", "empty"),
        "strict_tools": bool(extra.get("strict_tools", False)),
    }
    for key, default in (("request_timeout", REQUEST_TIMEOUT), ("command_timeout", COMMAND_TIMEOUT),
                         ("max_response_bytes", MAX_RESPONSE_BYTES), ("max_line_bytes", MAX_LINE_BYTES)):
        value = extra.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise _Setup(f"`{key}` must be a positive number, not {value!r}")
        out[key] = float(value) if key.endswith("timeout") else int(value)
    return out


def _assistant_message(reply: Completion, tool_call_content: str) -> dict[str, Any]:
    """The model's turn as it goes back in the history. With tool calls and no text, `content` is "" by
    default: llama.cpp and LM Studio reject null, which OpenAI sends; `tool_call_content` picks."""
    msg: dict[str, Any] = {"role": "assistant"}
    content = reply.content
    if content or not reply.tool_calls:
        msg["content"] = content
    elif tool_call_content == "empty":
        msg["content"] = ""
    elif tool_call_content == "null":
        msg["content"] = None
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
    always start on a line of their own.

    Text that arrives within `INTERVAL` of the last write is held and written together (by the next
    write after the interval, or by `keep_flushed`): the first piece after a quiet spell shows at once,
    and a fast stream of small deltas costs one write, one log append and one event per interval, not
    per delta. Editors are sent output at this pace anyway.
    """

    INTERVAL = 0.05

    def __init__(self, write: Callable[[str], None]):
        self._write = write
        self._open = False
        self._pending: list[str] = []
        self._last = 0.0

    def write(self, text: str) -> None:
        if not text:
            return
        self._pending.append(text)
        self._open = not text.endswith("\n")
        if time.monotonic() - self._last >= self.INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._write(text)
        self._last = time.monotonic()

    def end_line(self) -> None:
        if self._open:
            self.write("\n")
        self.flush()

    async def keep_flushed(self) -> None:
        """Write held text once it is `INTERVAL` old, so a stream that pauses still shows all it sent."""
        while True:
            await anyio.sleep(self.INTERVAL)
            if self._pending and time.monotonic() - self._last >= self.INTERVAL:
                self.flush()
