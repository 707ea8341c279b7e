"""Prints what a coding-agent CLI prints in its JSON-lines mode, for tests that run it as a real subprocess.

    python fake_cli_agent.py claude|codex|gemini [--rate-limit] [--usage-limit-until EPOCH] [PROMPT]
    python fake_cli_agent.py claude|codex|gemini --version

Each format: the CLI's own event lines, one plain-text line (CLIs print banners and warnings), and a
final event with usage. `--rate-limit` ends the way each CLI ends on a 429, with exit code 1.
`--usage-limit-until EPOCH`: until then, ends as each CLI ends when its plan's usage limit is reached, naming
the reset time its own way (Claude: `…limit reached|EPOCH`; Codex: `try again in N seconds`; Gemini: an ISO
time), with exit code 1; from then on, succeeds.
The final answer is "Done: <PROMPT>" (PROMPT defaults to "add a test").
"""

from __future__ import annotations

import datetime
import json
import math
import sys
import time

PLAIN_LINE = "Loaded cached credentials."
VERSION = "1.0.42"


def claude(prompt: str, rate_limited: bool) -> tuple[list[object], int]:
    session = "3f1c2d4e-0000-4000-8000-000000000001"
    lines: list[object] = [
        {"type": "system", "subtype": "init", "cwd": "/work", "session_id": session, "model": "claude-sonnet-4-5",
         "tools": ["Read", "Edit", "Bash"], "permissionMode": "default"},
        PLAIN_LINE,
    ]
    if rate_limited:
        text = 'API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}}'
        lines += [
            {"type": "assistant", "message": {"id": "msg_1", "role": "assistant", "model": "<synthetic>",
                                              "content": [{"type": "text", "text": text}]},
             "session_id": session, "error": "rate_limit"},
            {"type": "result", "subtype": "success", "is_error": True, "duration_ms": 812, "num_turns": 1,
             "result": text, "session_id": session, "total_cost_usd": 0,
             "usage": {"input_tokens": 0, "output_tokens": 0}},
        ]
        return lines, 1
    lines += [
        {"type": "assistant", "message": {"id": "msg_1", "role": "assistant", "content": [
            {"type": "text", "text": "I'll look at the parser first."},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/work/parser.py"}}]},
         "session_id": session},
        {"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "def parse(s): ..."}]},
         "session_id": session},
        {"type": "assistant", "message": {"id": "msg_2", "role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_2", "name": "Edit",
             "input": {"file_path": "/work/tests/test_parser.py", "old_string": "", "new_string": "def test(): ..."}}]},
         "session_id": session},
        {"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
             "content": "File has not been read yet. Read it first before writing to it."}]},
         "session_id": session},
        {"type": "assistant", "message": {"id": "msg_3", "role": "assistant", "content": [
            {"type": "text", "text": f"Done: {prompt}"}]}, "session_id": session},
        {"type": "result", "subtype": "success", "is_error": False, "duration_ms": 5123, "num_turns": 3,
         "result": f"Done: {prompt}", "session_id": session, "total_cost_usd": 0.0123,
         "usage": {"input_tokens": 1200, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 500,
                   "output_tokens": 250}},
    ]
    return lines, 0


def codex(prompt: str, rate_limited: bool) -> tuple[list[object], int]:
    lines: list[object] = [
        {"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"},
        PLAIN_LINE,
        {"type": "turn.started"},
    ]
    if rate_limited:
        message = "stream error: exceeded retry limit, last status: 429 Too Many Requests"
        lines += [{"type": "error", "message": message}, {"type": "turn.failed", "error": {"message": message}}]
        return lines, 1
    lines += [
        {"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "**Looking at the parser**"}},
        {"type": "item.started", "item": {"id": "item_1", "type": "command_execution", "command": "bash -lc 'pytest -q'",
                                          "aggregated_output": "", "exit_code": None, "status": "in_progress"}},
        {"type": "item.completed", "item": {"id": "item_1", "type": "command_execution", "command": "bash -lc 'pytest -q'",
                                            "aggregated_output": "1 failed", "exit_code": 1, "status": "failed"}},
        {"type": "item.completed", "item": {"id": "item_2", "type": "file_change", "status": "completed",
                                            "changes": [{"path": "tests/test_parser.py", "kind": "add"}]}},
        {"type": "item.completed", "item": {"id": "item_3", "type": "agent_message", "text": f"Done: {prompt}"}},
        {"type": "turn.completed", "usage": {"input_tokens": 2400, "cached_input_tokens": 1024, "output_tokens": 310}},
    ]
    return lines, 0


def gemini(prompt: str, rate_limited: bool) -> tuple[list[object], int]:
    ts = "2025-10-10T12:00:00.000Z"
    lines: list[object] = [
        PLAIN_LINE,
        {"type": "init", "timestamp": ts, "session_id": "c25acda3", "model": "gemini-2.5-pro"},
        {"type": "message", "timestamp": ts, "role": "user", "content": prompt},
    ]
    if rate_limited:
        message = "[API Error: You have exhausted your capacity on this model. 429 RESOURCE_EXHAUSTED]"
        lines += [
            {"type": "error", "timestamp": ts, "severity": "error", "message": message},
            {"type": "result", "timestamp": ts, "status": "error", "error": {"type": "FatalError", "message": message},
             "stats": {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0, "duration_ms": 300, "tool_calls": 0}},
        ]
        return lines, 1
    lines += [
        {"type": "message", "timestamp": ts, "role": "assistant", "content": "Let me read ", "delta": True},
        {"type": "message", "timestamp": ts, "role": "assistant", "content": "the parser.\n", "delta": True},
        {"type": "tool_use", "timestamp": ts, "tool_name": "read_file", "tool_id": "read_file-1",
         "parameters": {"absolute_path": "/work/parser.py"}},
        {"type": "tool_result", "timestamp": ts, "tool_id": "read_file-1", "status": "success", "output": ""},
        {"type": "tool_use", "timestamp": ts, "tool_name": "write_file", "tool_id": "write_file-2",
         "parameters": {"file_path": "/work/tests/test_parser.py", "content": "def test(): ..."}},
        {"type": "tool_result", "timestamp": ts, "tool_id": "write_file-2", "status": "error",
         "error": {"type": "permission_denied", "message": "Tool execution denied by policy."}},
        {"type": "message", "timestamp": ts, "role": "assistant", "content": "Done: ", "delta": True},
        {"type": "message", "timestamp": ts, "role": "assistant", "content": prompt, "delta": True},
        {"type": "result", "timestamp": ts, "status": "success",
         "stats": {"total_tokens": 3350, "input_tokens": 3100, "output_tokens": 250, "duration_ms": 4200,
                   "tool_calls": 2}},
    ]
    return lines, 0


FORMATS = {"claude": claude, "codex": codex, "gemini": gemini}


def usage_limited(fmt: str, reset: float) -> list[object]:
    """What each CLI prints when the plan's usage limit is reached, with the reset time."""
    if fmt == "claude":
        text = f"Claude AI usage limit reached|{math.ceil(reset)}"
        return [{"type": "assistant", "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
                 "error": "rate_limit"},
                {"type": "result", "subtype": "success", "is_error": True, "result": text, "total_cost_usd": 0,
                 "usage": {"input_tokens": 0, "output_tokens": 0}}]
    if fmt == "codex":
        wait = max(1, math.ceil(reset - time.time()))
        message = f"You've hit your usage limit. Upgrade to Pro or try again in {wait} seconds."
        return [{"type": "error", "message": message}, {"type": "turn.failed", "error": {"message": message}}]
    when = datetime.datetime.fromtimestamp(reset, datetime.UTC).isoformat().replace("+00:00", "Z")
    message = f"Quota exceeded for this model; your usage limit resets at {when}."
    return [{"type": "error", "severity": "error", "message": message},
            {"type": "result", "status": "error", "error": {"type": "FatalError", "message": message}, "stats": {}}]


def main(argv: list[str]) -> int:
    until = None
    if "--usage-limit-until" in argv:
        i = argv.index("--usage-limit-until")
        until = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    args = [a for a in argv if a != "--rate-limit"]
    if not args or args[0] not in FORMATS:
        print(f"usage: fake_cli_agent.py {'|'.join(FORMATS)} [--rate-limit] [PROMPT]", file=sys.stderr)
        return 2
    if args[1:] == ["--version"]:  # as each CLI answers it: a version line, exit 0
        print(f"{VERSION} (fake {args[0]})")
        return 0
    prompt = " ".join(args[1:]) or "add a test"
    if until is not None and time.time() < until:
        for line in usage_limited(args[0], until):
            print(json.dumps(line), flush=True)
        return 1
    lines, code = FORMATS[args[0]](prompt, "--rate-limit" in argv)
    for line in lines:
        print(line if isinstance(line, str) else json.dumps(line), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
