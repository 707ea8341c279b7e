"""`context` files: read once per run and put, identically, at the start of every prompt of the tasks that
use them (`[run] context`, then the task's own), so a model endpoint can cache the shared prefix.

Model agents get the text inside their leading system message; CLI agents as a preamble to the prompt;
shell tasks never (their prompt is a command).
"""

from __future__ import annotations

from pathlib import Path

from parex_lsp.plan.model import Plan, TaskSpec

MAX_CONTEXT_BYTES = 1024 * 1024  # of one file: context is sent with every request of every task using it
HEADER = "Context for this task: files of the project, as they were when the run started."


class ContextError(Exception):
    """A `context` file that cannot be read: the tasks naming it fail before their agent starts."""


class SharedContext:
    def __init__(self, plan: Plan, root: Path):
        self.plan, self.root = plan, root
        self._files: dict[str, str] = {}  # path -> its block, read once per run

    def text_for(self, spec: TaskSpec) -> str | None:
        """The task's context text, the same string for every task naming the same files; None without any."""
        patterns = list(dict.fromkeys([*self.plan.run.context, *spec.context]))
        if not patterns:
            return None
        paths = list(dict.fromkeys(p for pattern in patterns for p in self._expand(pattern)))
        return "\n\n".join([HEADER, *(self._block(p) for p in paths)])

    def _expand(self, pattern: str) -> list[str]:
        if any(c in pattern for c in "*?["):
            found = sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern) if p.is_file())
            if not found:
                raise ContextError(f"`context` pattern {pattern!r} matches no file in {self.root}")
            return found
        return [pattern]

    def _block(self, rel: str) -> str:
        if rel not in self._files:
            path = self.root / rel
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise ContextError(f"`context` file {rel} does not exist in {self.root}") from None
            except OSError as e:
                raise ContextError(f"`context` file {rel}: cannot read it ({e.strerror or e})") from None
            if len(data) > MAX_CONTEXT_BYTES:
                raise ContextError(f"`context` file {rel} has {len(data)} bytes, more than {MAX_CONTEXT_BYTES}")
            text = data.decode("utf-8", errors="replace").rstrip("\n")
            self._files[rel] = f"File `{rel}`:\n```\n{text}\n```"
        return self._files[rel]
