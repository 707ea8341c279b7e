"""Readable output, usage, answer and errors from the JSON-lines streams of coding-agent CLIs.

One parser understands the three formats the presets ask for; each event names its own type, so the
format needs no configuration:

- Claude Code `--output-format stream-json`: `system`, `assistant` / `user` (messages with content
  blocks), and a final `result` with `usage` and `total_cost_usd`.
- Codex `exec --json`: `thread.started`, `turn.started|completed|failed`, `item.started|updated|completed`
  (agent_message, reasoning, command_execution, file_change, mcp_tool_call, web_search, error), `error`.
- Gemini CLI `--output-format stream-json`: `init`, `message` (assistant text, possibly as `delta`
  pieces), `tool_use`, `tool_result`, `error`, and a final `result` with `stats`.

Lines that are not JSON objects pass through unchanged.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DETAIL = 200  # a tool's subject (a path, a command) is cut to this on the output line


class JsonLinesParser:
    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None  # {promptTokens, completionTokens, costUsd?}
        self.answer: str | None = None  # the agent's final text
        self.error: str | None = None  # the last error the CLI reported (rate limits included)
        self._pending = ""  # Gemini `delta` text not yet ended by a newline
        self._turn_text: list[str] = []  # Gemini assistant text since the last tool call

    def feed(self, line: str) -> str | None:
        """The text to show for one stdout line (may span lines), or None to show nothing."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return None
        try:
            event = json.loads(line)
        except ValueError:
            return line
        if not isinstance(event, dict):
            return line
        kind = str(event.get("type") or "")
        if "." in kind or kind == "error" and "severity" not in event:
            shown = self._codex(kind, event)
        elif kind in ("assistant", "user", "system") or kind == "result" and _is_claude_result(event):
            shown = self._claude(kind, event)
        elif kind in ("init", "message", "tool_use", "tool_result", "result", "error"):
            shown = self._gemini(kind, event)
        elif isinstance(event.get("msg"), dict):
            shown = self._codex_legacy(event["msg"])
        else:
            return None  # an event type we do not know: nothing a person needs to read
        if kind != "message" and self._pending:  # any other event ends a streamed Gemini message
            shown = _join(self.finish(), shown)
        return shown

    def finish(self) -> str | None:
        """Text still held back at the end of the stream (a Gemini message without its last newline)."""
        rest, self._pending = self._pending, ""
        return rest or None

    # -- Claude Code ---------------------------------------------------------------------------

    def _claude(self, kind: str, event: dict[str, Any]) -> str | None:
        if kind == "assistant":
            message = event.get("message") or {}
            parts = []
            for block in message.get("content") or []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "text" and block.get("text"):
                    parts.append(block["text"])
                elif block.get("type") == "tool_use":
                    parts.append(_tool_line(block.get("name"), block.get("input")))
            api_error = next((p for p in parts if p.startswith("API Error")), None)  # rate limits, overload
            if event.get("error") or api_error:
                self.error = api_error or _text(parts) or str(event["error"])
            return _text(parts)
        if kind == "user":  # tool results: shown only when they failed
            content = (event.get("message") or {}).get("content") or []
            failed = [_first_line(_block_text(b.get("content"))) for b in content
                      if isinstance(b, dict) and b.get("type") == "tool_result" and b.get("is_error")]
            return _text([f"  ✗ {f}" for f in failed])
        if kind == "result":
            usage = event.get("usage") or {}
            prompt = sum(int(usage.get(k) or 0) for k in
                         ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
            self._add_usage(prompt, int(usage.get("output_tokens") or 0),
                            event.get("total_cost_usd", event.get("cost_usd")))
            result = event.get("result")
            if event.get("is_error") or event.get("subtype", "success") != "success":
                return self._report_error(str(result or event.get("subtype") or "error"))
            if isinstance(result, str):
                self.answer = result
            return None
        return None  # system: session init, hooks

    # -- Codex ---------------------------------------------------------------------------------

    def _codex(self, kind: str, event: dict[str, Any]) -> str | None:
        if kind == "turn.completed":
            usage = event.get("usage") or {}
            self._add_usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))
            return None
        if kind == "turn.failed":
            return self._report_error(str((event.get("error") or {}).get("message") or "turn failed"))
        if kind == "error":
            return self._report_error(str(event.get("message") or "error"))
        item = event.get("item")
        if not isinstance(item, dict):
            return None
        itype = item.get("type")
        if kind == "item.started":
            if itype == "command_execution":
                return _tool_line("$", item.get("command"))
            return None
        if kind != "item.completed":
            return None
        if itype == "agent_message":
            self.answer = item.get("text") or ""
            return self.answer or None
        if itype == "command_execution":
            code = item.get("exit_code")
            return f"  ✗ exit code {code}" if code not in (None, 0) else None
        if itype == "file_change":
            return _text([_tool_line(c.get("kind", "change"), c.get("path"))
                          for c in item.get("changes") or [] if isinstance(c, dict)])
        if itype == "mcp_tool_call":
            return _tool_line(f"{item.get('server', 'mcp')}.{item.get('tool', '?')}", None)
        if itype == "web_search":
            return _tool_line("search", item.get("query"))
        if itype == "error":
            return f"error: {item.get('message', '')}"
        return None  # reasoning, todo_list: internal

    def _codex_legacy(self, msg: dict[str, Any]) -> str | None:
        """Codex releases before the `item.*` events wrapped each event as `{"id": .., "msg": {...}}`."""
        mtype = msg.get("type")
        if mtype == "agent_message":
            self.answer = msg.get("message") or ""
            return self.answer or None
        if mtype == "exec_command_begin":
            command = msg.get("command")
            return _tool_line("$", " ".join(command) if isinstance(command, list) else command)
        if mtype == "token_count":
            info = msg.get("info") or {}
            total = info.get("total_token_usage") or msg
            self.usage = None  # totals, not increments
            self._add_usage(int(total.get("input_tokens") or 0), int(total.get("output_tokens") or 0))
            return None
        if mtype in ("error", "stream_error"):
            return self._report_error(str(msg.get("message") or "error"))
        return None

    # -- Gemini CLI ----------------------------------------------------------------------------

    def _gemini(self, kind: str, event: dict[str, Any]) -> str | None:
        if kind == "message":
            if event.get("role") != "assistant":
                return None
            content = _block_text(event.get("content"))
            self._turn_text.append(content)
            self.answer = "".join(self._turn_text)
            if not event.get("delta"):
                return _join(self.finish(), content or None)
            # Pieces of one message: show whole lines as they complete, the rest at the next event.
            text = self._pending + content
            cut = text.rfind("\n")
            self._pending = text[cut + 1:]
            return text[:cut] if cut >= 0 else None
        if kind == "tool_use":
            self._turn_text = []
            return _tool_line(event.get("tool_name"), event.get("parameters"))
        if kind == "tool_result":
            if event.get("status") == "error":
                err = event.get("error")
                return f"  ✗ {_first_line(err.get('message') if isinstance(err, dict) else str(err))}"
            return None
        if kind == "error":
            message = str(event.get("message") or "error")
            if event.get("severity") == "warning":
                return f"warning: {message}"
            return self._report_error(message)
        if kind == "result":
            stats = event.get("stats") or {}
            prompt = stats.get("input_tokens", stats.get("prompt_tokens"))
            completion = stats.get("output_tokens", stats.get("candidates_tokens"))
            if prompt is not None or completion is not None:
                self._add_usage(int(prompt or 0), int(completion or 0))
            if event.get("status") not in (None, "success"):
                err = event.get("error")
                return self._report_error(str(err.get("message") if isinstance(err, dict) else err or event.get("status")))
            return None
        return None  # init

    # -- shared --------------------------------------------------------------------------------

    def _report_error(self, message: str) -> str | None:
        """Remember the error; show it unless it was just shown (CLIs repeat it in their final event)."""
        if message == self.error:
            return None
        self.error = message
        return f"error: {message}"

    def _add_usage(self, prompt: int, completion: int, cost: Any = None) -> None:
        u = self.usage or {"promptTokens": 0, "completionTokens": 0}
        u["promptTokens"] += prompt
        u["completionTokens"] += completion
        if cost is not None:
            u["costUsd"] = round(u.get("costUsd", 0.0) + float(cost), 6)
        self.usage = u


def _is_claude_result(event: dict[str, Any]) -> bool:
    if any(k in event for k in ("subtype", "is_error", "total_cost_usd", "num_turns")):
        return True
    return "stats" not in event and "status" not in event  # Gemini's result has those


def _tool_line(name: Any, args: Any) -> str:
    """`→ Edit src/app.py`: the tool and what it is about (a path, a command, a pattern)."""
    subject = args
    if isinstance(args, dict):
        subject = next((args[k] for k in ("file_path", "absolute_path", "path", "command", "pattern", "url",
                                          "query", "description") if args.get(k)), "")
    subject = _first_line(str(subject or ""))[:MAX_DETAIL]
    return f"→ {name or 'tool'} {subject}".rstrip()


def _block_text(content: Any) -> str:
    """Message content that is a string or a list of `{"type": "text", "text": ...}` blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return "" if content is None else str(content)


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def _text(parts: list[str]) -> str | None:
    return "\n".join(p for p in parts if p) or None


def _join(a: str | None, b: str | None) -> str | None:
    return _text([a or "", b or ""])
