"""`callN:` prompts in any document (or a range of it) → tasks with ids `callN`, no dependencies.

A prompt is the rest of its `callN:` line and the lines after it, up to the first blank line or the next
call: prose around the calls is never part of a prompt. tests/cases/call_lines.json is the grammar's table,
shared with the editor clients' tests.
"""

from __future__ import annotations

import re

from parex_lsp.plan.model import SourceRange, TaskSpec

# A call may sit behind a comment marker or a list bullet: `# call1: ...`, `// call2: ...`, `- call3: ...`.
LINE_BREAK = re.compile(r"\r\n|\r|\n")
CALL_LINE = re.compile(r"^(\s*(?:#+|//+|--|;+|\*|-|>)?\s*)(call\d+)\s*:\s?(.*)$")


def parse_calls(text: str, line_range: tuple[int, int] | None = None) -> list[TaskSpec]:
    """Tasks for the `callN:` lines of `text`; `line_range` (first, last, zero-based, inclusive) limits it."""
    lines = LINE_BREAK.split(text)  # as editors count lines: str.splitlines() also breaks at \f, \x1c, \u2028...
    if lines and lines[-1] == "":
        lines.pop()
    first, last = line_range if line_range else (0, len(lines) - 1)
    tasks: list[TaskSpec] = []
    body: list[str] | None = []

    def close() -> None:
        if tasks and body is not None:
            while body and not body[-1].strip():
                body.pop()
            tasks[-1].prompt = "\n".join(body).strip()

    for n in range(max(first, 0), min(last, len(lines) - 1) + 1):
        m = CALL_LINE.match(lines[n])
        if m:
            close()
            body = [m.group(3)]
            start = len(m.group(1))
            tasks.append(TaskSpec(id=m.group(2), prompt="", range=SourceRange.line(n, start, len(lines[n]))))
        elif tasks and body is not None:
            if not lines[n].strip():  # a blank line ends the prompt: prose after it never runs
                close()
                body = None
            else:
                body.append(lines[n])
    close()
    return tasks
