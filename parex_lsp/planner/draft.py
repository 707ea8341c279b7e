"""The drafting loop: ask the planning agent, check its plan, send the problems back, up to `plan_rounds`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from parex_lsp.agents.http_pool import shared_client
from parex_lsp.agents.openai_stream import ApiError, Limits, stream_completion
from parex_lsp.plan.model import AgentSpec, Plan, Problem, RunConfig
from parex_lsp.plan.presets import builtin_agents
from parex_lsp.plan.resolve import WORKSPACE_PLAN, resolve
from parex_lsp.planner.answer import check, compose, toml_block
from parex_lsp.planner.files import NamedFileError, read_named, workspace_files
from parex_lsp.planner.prompt import fix_message, request_message, system_message

CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 300.0
REQUEST_TIMEOUT = 900.0
MAX_ANSWER_BYTES = 4 * 1024 * 1024
TRANSIENT_TRIES = 3  # a rate limit or dropped stream is tried again before the draft gives up


class PlanRequestError(Exception):
    """The request cannot be drafted at all (no planning agent, a bad --file, the endpoint refused);
    `problems` holds configuration problems with their positions when those are the reason."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass(slots=True)
class Draft:
    text: str  # the plan document (empty if the model never answered with a toml block)
    problems: list[Problem]  # what is left: empty, or warnings only, when the plan validates
    rounds: int  # model requests made
    history: list[list[Problem]] = field(default_factory=list)  # each round's problems

    @property
    def ok(self) -> bool:
        return bool(self.text) and not any(p.is_error for p in self.problems)


def _config(workspace: Path) -> tuple[Plan, str]:
    """The workspace's configuration and its parex.toml text ("" when it has none)."""
    path = workspace / WORKSPACE_PLAN
    got = resolve(path, running=False) if path.is_file() else None
    if got is None:
        return Plan([], builtin_agents(), RunConfig(), workspace), ""
    if got.plan is None:
        raise PlanRequestError(f"the workspace configuration {path} has problems", got.errors)
    return got.plan, path.read_text(encoding="utf-8")


def planning_agent(config: Plan) -> AgentSpec:
    """`[run] plan_agent`, else the first model agent of the workspace (by name)."""
    name = config.run.plan_agent
    if name is None:
        models = sorted(n for n, a in config.agents.items() if a.kind == "openai")
        if not models:
            raise PlanRequestError("no planning agent: define a model agent in parex.toml (`[agents.NAME]` with "
                                   '`kind = "openai"`, `base_url` and `model`) and set `[run] plan_agent = "NAME"`')
        name = models[0]
    return config.agents[name]  # validate() checked that plan_agent names a model agent


def _api_key(agent: AgentSpec) -> dict[str, str]:
    if not agent.api_key_env:
        return {}
    key = (agent.env.get(agent.api_key_env) or os.environ.get(agent.api_key_env) or "").strip()
    if not key:
        raise PlanRequestError(f"agent `{agent.name}`: environment variable {agent.api_key_env} is not set or empty "
                               "(it holds the API key)")
    return {"Authorization": f"Bearer {key}"}


async def draft_plan(workspace: Path, request: str, named: list[str] | None = None, *, output: str | None = None,
                     on_text: Callable[[str], None] | None = None) -> Draft:
    """Draft a plan for `request` in `workspace`. `output`: the path the plan will be saved at (problems
    name it); `on_text`: the model's answer as it streams. Raises PlanRequestError when nothing can be drafted."""
    workspace = workspace.resolve()
    if not request.strip():
        raise PlanRequestError("the request is empty: say what the plan should do")
    config, config_text = _config(workspace)
    agent = planning_agent(config)
    headers = {"Accept": "text/event-stream"} | _api_key(agent)
    try:
        files, cut = workspace_files(workspace)
        named_files = read_named(workspace, named or [])
    except NamedFileError as e:
        raise PlanRequestError(str(e)) from None
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_message(config.agents, config.run.default_agent)},
        {"role": "user", "content": request_message(request, files, cut, named_files)},
    ]
    source = output or str(workspace / "plan.parex.toml")
    body: dict[str, Any] = {"model": agent.model, "stream": True, "stream_options": {"include_usage": True}}
    if "temperature" in agent.extra:
        body["temperature"] = agent.extra["temperature"]
    url = (agent.base_url or "").rstrip("/") + "/chat/completions"
    limits = Limits(MAX_ANSWER_BYTES, MAX_ANSWER_BYTES, float(agent.extra.get("request_timeout", REQUEST_TIMEOUT)))
    timeout = httpx.Timeout(min(READ_TIMEOUT, limits.deadline), connect=CONNECT_TIMEOUT)
    draft = Draft("", [], 0)
    async with shared_client(f"plan-{uuid.uuid4().hex}", agent.name, timeout,
                             not url.lower().startswith("http://")) as client:
        for _ in range(config.run.plan_rounds):
            answer = await _ask(client, url, {**body, "messages": messages}, headers, on_text or (lambda _: None),
                                limits)
            draft.rounds += 1
            messages.append({"role": "assistant", "content": answer})
            block = toml_block(answer)
            if block is None:
                problems = [Problem("no-plan", "the answer holds no ```toml block", None, source)]
                offset = 0
            else:
                doc = compose(config_text, request, block)
                draft.text, offset = doc.text, doc.offset
                problems = check(doc.text, source, workspace)
            draft.problems = problems
            draft.history.append(problems)
            if draft.ok:
                return draft
            messages.append({"role": "user", "content": fix_message([p for p in problems if p.is_error], offset)})
    return draft


async def _ask(client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str],
               on_text: Callable[[str], None], limits: Limits) -> str:
    retrying = AsyncRetrying(retry=retry_if_exception(lambda e: isinstance(e, ApiError) and e.transient),
                             stop=stop_after_attempt(TRANSIENT_TRIES), wait=wait_exponential(min=1, max=30),
                             reraise=True)
    try:
        async for attempt in retrying:
            with attempt:
                reply = await stream_completion(client, url, body, headers, on_text, limits)
    except ApiError as e:
        raise PlanRequestError(f"the planning agent failed: {e.reason}") from None
    return reply.content
