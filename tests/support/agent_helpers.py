"""Helpers for model-agent tests: an AgentContext over the real TaskOutput, recording every event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parex_lsp.agents.base import AgentContext, Outcome
from parex_lsp.agents.openai_agent import OpenAIAgent
from parex_lsp.engine.output import TaskOutput
from parex_lsp.isolation.table import WorkspaceLocks
from parex_lsp.plan.model import AgentSpec, TaskSpec
from tests.support.fake_openai import FakeOpenAI

RUN_ID = "run-1"


class Recorder:
    """Every event the agent produced, tagged with its task, as the engine would tag them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def output_lines(self, task_id: str) -> list[str]:
        return [ln for t, kind, d in self.events if t == task_id and kind == "output" for ln in d["text"].splitlines()]

    def of_kind(self, task_id: str, kind: str) -> list[dict[str, Any]]:
        return [d for t, k, d in self.events if t == task_id and k == kind]


class RecordingOutput(TaskOutput):
    """The real TaskOutput, remembering each `write` so tests can see text arrive piece by piece."""

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)
        super().write(text)


def model(srv: FakeOpenAI, **kw: Any) -> AgentSpec:
    return AgentSpec(name="local", kind="openai", base_url=srv.base_url, model="fake-coder", **kw)


def make_ctx(tmp_path: Path, workdir: Path, agent: AgentSpec, rec: Recorder, task_id: str = "t1",
             prompt: str = "do the thing", locks: WorkspaceLocks | None = None,
             env: dict[str, str] | None = None) -> AgentContext:
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    output = RecordingOutput(logs / f"{task_id}.log", lambda d: rec.events.append((task_id, "output", d.to_wire())))
    return AgentContext(RUN_ID, TaskSpec(id=task_id, prompt=prompt), agent, workdir, workdir, 1, output,
                        lambda kind, data: rec.events.append((task_id, kind, data.to_wire())), locks=locks,
                        on_lock_wait=lambda key, owner: rec.events.append(
                            (task_id, "lockWait", {"path": key, "holder": owner.to_dict()})),
                        env=env or {})


async def run(ctx: AgentContext) -> Outcome:
    try:
        return await OpenAIAgent().run(ctx)
    finally:
        ctx.output.close()
