"""Agents that are local processes: the built-in `shell`, and command templates (the CLI presets)."""

from __future__ import annotations

import shutil

from parex_lsp.agents.base import AGENT_NOT_FOUND, AgentContext, Outcome
from parex_lsp.agents.process import run_process

SHELL = "/bin/sh"


class ShellAgent:
    """The prompt is a shell command line, run by `/bin/sh -c` in the workdir."""

    async def run(self, ctx: AgentContext) -> Outcome:
        return await run_process([SHELL, "-c", ctx.task.prompt], ctx)


def render_argv(template: list[str], ctx: AgentContext) -> list[str]:
    """Substitute `{prompt}`, `{task_id}`, `{workdir}` in each element; the prompt stays one argv element."""
    values = {"{prompt}": ctx.task.prompt, "{task_id}": ctx.task.id, "{workdir}": str(ctx.workdir)}
    argv = []
    for part in template:
        if part in values:
            argv.append(values[part])
            continue
        for key, value in values.items():
            part = part.replace(key, value)
        argv.append(part)
    return argv


class CommandAgent:
    """An argv template; no shell ever sees the prompt."""

    async def run(self, ctx: AgentContext) -> Outcome:
        argv = render_argv(ctx.agent.command, ctx)
        path = ctx.env.get("PATH") or ctx.agent.env.get("PATH")
        if "/" not in argv[0] and shutil.which(argv[0], path=path) is None:
            return Outcome(False, code=AGENT_NOT_FOUND,
                           reason=f"agent `{ctx.agent.name}`: executable `{argv[0]}` not found on PATH")
        if ctx.agent.output_format != "json-lines":
            return await run_process(argv, ctx)
        from parex_lsp.agents.jsonlines import JsonLinesParser

        parser = JsonLinesParser()

        def show(line: str) -> None:
            text = parser.feed(line)
            if text:
                ctx.output.show(text if text.endswith("\n") else text + "\n")

        outcome = await run_process(argv, ctx, line_filter=show)
        rest = parser.finish()  # text a CLI streamed without a final newline or closing event
        if rest:
            ctx.output.show(rest if rest.endswith("\n") else rest + "\n")
        outcome.usage, outcome.answer = parser.usage, parser.answer
        if not outcome.ok and parser.error:
            outcome.reason = f"{outcome.reason}: {parser.error}"
        return outcome
