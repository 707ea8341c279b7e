"""`parex-lsp plan REQUEST`: draft a plan with the workspace's planning agent and save (or print) it."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from parex_lsp.plan.resolve import find_workspace
from parex_lsp.planner import PlanRequestError, draft_plan

EXIT_OK, EXIT_PROBLEMS, EXIT_INVALID = 0, 1, 2


def plan_command(request: str, output: str | None, files: list[str], workspace: str | None) -> int:
    """0: the plan validates; 1: it was saved with the problems left after `plan_rounds` (printed as
    path:line:col); 2: nothing could be drafted (no planning agent, a bad --file, the endpoint failed)."""
    ws = Path(workspace).resolve() if workspace else find_workspace(Path.cwd())
    target = str(Path(output).resolve()) if output else None
    try:
        draft = anyio.run(lambda: draft_plan(ws, request, files, output=target))
    except PlanRequestError as e:
        print(f"parex: {e}", file=sys.stderr)
        for p in e.problems:
            print(p.format(), file=sys.stderr)
        return EXIT_INVALID
    for n, problems in enumerate(draft.history[:-1], 1):
        errors = sum(p.is_error for p in problems)
        print(f"parex: draft {n}: {errors} problem{'s' * (errors != 1)}, sent back to the planner", file=sys.stderr)
    if draft.text:
        if target:
            Path(target).write_text(draft.text, encoding="utf-8")
        else:
            sys.stdout.write(draft.text)
    for p in draft.problems:
        print(p.format(), file=sys.stderr)
    if draft.ok:
        if target:
            print(f"parex: wrote {target} (valid after {draft.rounds} draft{'s' * (draft.rounds != 1)}); "
                  f"run it with `parex-lsp run {output}`", file=sys.stderr)
        return EXIT_OK
    left = sum(p.is_error for p in draft.problems)
    print(f"parex: the plan still has {left} problem{'s' * (left != 1)} after {draft.rounds} drafts"
          + (f"; saved to {target} for editing" if target and draft.text else ""), file=sys.stderr)
    return EXIT_PROBLEMS
