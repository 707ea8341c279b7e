"""The planner's messages: what parex's plan format is, what the workspace holds, and what to fix."""

from __future__ import annotations

from parex_lsp.plan.model import AgentSpec, Problem

FORMAT = """\
You plan work for parex, which runs many coding agents at once. Split the request into tasks that can run \
in parallel where possible, and answer with ONE fenced ```toml block holding only [[task]] tables \
(the workspace's [run] and [agents] are added by parex; do not write them). Each task:

[[task]]
id = "short-name"            # letters, digits, `-`, `_`, `.`; unique
prompt = \"\"\"What the agent must do, complete and self-contained.\"\"\"
agent = "NAME"               # one of the agents listed below
depends_on = ["other-id"]    # tasks that must succeed first (no cycles)
files = ["src/api/**"]       # the files it may write, relative to the workspace; tasks whose files overlap run one at a time
context = ["docs/architecture.md"]  # files the agent should read first (put the files you relied on here)

Rules: every `agent` must be one listed below; `depends_on` names ids of this plan and forms no cycle; \
paths are relative to the workspace and never absolute or with `..`; give parallel tasks distinct `files`. \
After the block you may add nothing else."""


def system_message(agents: dict[str, AgentSpec], default_agent: str) -> str:
    lines = [FORMAT, "", "Agents of this workspace:"]
    for name, agent in sorted(agents.items()):
        what = {"shell": "runs the prompt as a shell command", "openai": f"model {agent.model}",
                "command": "a coding agent program"}.get(agent.kind, agent.kind)
        lines.append(f"- {name}: {what}" + (" (the default)" if name == default_agent else ""))
    return "\n".join(lines)


def request_message(request: str, files: list[str], cut: bool, named: list[tuple[str, str]]) -> str:
    parts = [f"Request: {request}", "", "Files of the workspace" + (" (the list is cut)" if cut else "") + ":"]
    parts += files or ["(none)"]
    for path, text in named:
        parts += ["", f"File `{path}`:", "```", text.rstrip("\n"), "```"]
    return "\n".join(parts)


def fix_message(problems: list[Problem], offset: int) -> str:
    """The problems of the last draft, with lines counted within the model's own toml block."""
    lines = ["Your plan has these problems; answer with the whole corrected ```toml block:"]
    for p in problems:
        where = ""
        if p.range is not None and p.range.start_line >= offset:
            where = f"line {p.range.start_line - offset + 1}: "
        lines.append(f"- {where}{p.message}")
    return "\n".join(lines)
