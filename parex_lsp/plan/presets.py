"""Built-in agents: `shell`, and command templates for the common coding-agent CLIs.

Each preset is only an argv template; `{prompt}` is always one argv element, never seen by a shell.
A plan's `[agents.<name>]` table with a preset's name overrides fields of that preset.
"""

from __future__ import annotations

from typing import Any

from parex_lsp.plan.model import AgentSpec

# Output patterns that mean "try again later", shared by the hosted-model CLIs.
TRANSIENT = ["rate limit", "rate_limit", "overloaded", "429", "503", "ECONNRESET", "ETIMEDOUT", "timed out"]

PRESETS: dict[str, dict[str, Any]] = {
    "claude": {"command": ["claude", "-p", "{prompt}", "--output-format", "stream-json", "--verbose"],
               "output_format": "json-lines"},
    "gemini": {"command": ["gemini", "-p", "{prompt}", "--output-format", "stream-json"],
               "output_format": "json-lines"},
    "codex": {"command": ["codex", "exec", "--json", "{prompt}"], "output_format": "json-lines"},
    "aider": {"command": ["aider", "--yes-always", "--no-pretty", "--message", "{prompt}"]},
    "kiro-cli": {"command": ["kiro-cli", "chat", "--no-interactive", "{prompt}"]},
}


def builtin_agents() -> dict[str, AgentSpec]:
    agents = {"shell": AgentSpec(name="shell", kind="shell")}
    for name, fields in PRESETS.items():
        agents[name] = AgentSpec(name=name, kind="command", command=list(fields["command"]),
                                 output_format=fields.get("output_format", "text"),
                                 retry_on=list(TRANSIENT))
    return agents
