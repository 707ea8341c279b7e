"""JSON-lines output of the coding-agent CLIs, from a real subprocess that prints what they print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parex_lsp.agents.jsonlines import JsonLinesParser
from parex_lsp.engine.output import compile_patterns
from parex_lsp.plan.presets import PRESETS, TRANSIENT

FAKE_CLI = Path(__file__).resolve().parents[1] / "support" / "fake_cli_agent.py"


def run_cli(fmt: str, *args: str) -> tuple[JsonLinesParser, list[str], int]:
    """Run the fake CLI and feed its stdout to a parser line by line, as the command agent does."""
    proc = subprocess.run([sys.executable, str(FAKE_CLI), fmt, *args], capture_output=True, text=True, timeout=30)
    parser = JsonLinesParser()
    shown: list[str] = []
    for line in proc.stdout.splitlines(keepends=True):
        text = parser.feed(line)
        if text is not None:
            shown.extend(text.splitlines())
    rest = parser.finish()
    if rest:
        shown.extend(rest.splitlines())
    return parser, shown, proc.returncode


def test_presets_that_use_this_parser():
    assert {n for n, p in PRESETS.items() if p.get("output_format") == "json-lines"} == {"claude", "codex", "gemini"}


def test_claude_stream_json():
    parser, shown, code = run_cli("claude", "write", "tests")
    assert code == 0
    assert shown == [
        "Loaded cached credentials.",
        "I'll look at the parser first.",
        "→ Read /work/parser.py",
        "→ Edit /work/tests/test_parser.py",
        "  ✗ File has not been read yet. Read it first before writing to it.",
        "Done: write tests",
    ]
    assert parser.answer == "Done: write tests"
    # cache writes and reads are prompt tokens too
    assert parser.usage == {"promptTokens": 2000, "completionTokens": 250, "costUsd": 0.0123}
    assert parser.error is None


def test_codex_exec_json():
    parser, shown, code = run_cli("codex", "write", "tests")
    assert code == 0
    assert shown == [
        "Loaded cached credentials.",
        "→ $ bash -lc 'pytest -q'",
        "  ✗ exit code 1",
        "→ add tests/test_parser.py",
        "Done: write tests",
    ]
    assert parser.answer == "Done: write tests"
    assert parser.usage == {"promptTokens": 2400, "completionTokens": 310}
    assert parser.error is None


def test_gemini_stream_json_joins_delta_pieces_into_lines():
    parser, shown, code = run_cli("gemini", "write", "tests")
    assert code == 0
    assert shown == [
        "Loaded cached credentials.",
        "Let me read the parser.",
        "→ read_file /work/parser.py",
        "→ write_file /work/tests/test_parser.py",
        "  ✗ Tool execution denied by policy.",
        "Done: write tests",
    ]
    assert parser.answer == "Done: write tests"  # the text after the last tool call
    assert parser.usage == {"promptTokens": 3100, "completionTokens": 250}
    assert parser.error is None


@pytest.mark.parametrize("fmt", ["claude", "codex", "gemini"])
def test_a_rate_limit_is_reported_once_and_matches_the_presets_retry_on(fmt: str):
    parser, shown, code = run_cli(fmt, "--rate-limit")
    assert code == 1
    assert parser.error and "429" in parser.error
    assert sum(parser.error in line for line in shown) == 1  # the CLI repeats it; the output does not
    assert compile_patterns(TRANSIENT).search(parser.error)
    assert parser.answer is None


def test_lines_that_are_not_json_objects_pass_through_raw():
    parser = JsonLinesParser()
    assert parser.feed("Warning: something odd\n") == "Warning: something odd"
    assert parser.feed("[1, 2, 3]") == "[1, 2, 3]"
    assert parser.feed('{"type": "assistant", "message": ') == '{"type": "assistant", "message": '
    assert parser.feed("   \n") is None
    assert parser.feed('{"type": "some.future_event", "x": 1}') is None
    assert parser.feed('{"no_type": true}') is None
    assert (parser.usage, parser.answer, parser.error) == (None, None, None)


def test_usage_adds_up_over_codex_turns():
    parser = JsonLinesParser()
    for line in ['{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":3}}',
                 '{"type":"turn.completed","usage":{"input_tokens":20,"cached_input_tokens":5,"output_tokens":4}}']:
        assert parser.feed(line) is None
    assert parser.usage == {"promptTokens": 30, "completionTokens": 7}


def test_a_gemini_message_left_open_at_the_end_is_given_by_finish():
    parser = JsonLinesParser()
    assert parser.feed('{"type":"message","role":"assistant","content":"no newline yet","delta":true}') is None
    assert parser.finish() == "no newline yet"
    assert parser.finish() is None
    assert parser.answer == "no newline yet"


def test_a_claude_run_that_hit_max_turns_is_an_error():
    parser = JsonLinesParser()
    shown = parser.feed('{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":5,'
                        '"total_cost_usd":0.2,"usage":{"input_tokens":100,"output_tokens":10}}')
    assert shown == "error: error_max_turns"
    assert parser.error == "error_max_turns"
    assert parser.usage == {"promptTokens": 100, "completionTokens": 10, "costUsd": 0.2}
