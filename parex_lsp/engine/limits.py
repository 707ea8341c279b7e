"""The run's spend and its agents' quotas, as one task's attempts meet them (task.py calls these).

- before an attempt: the budget (and the task's `max_cost`) may refuse it; a cooling agent is waited out;
- each model request goes through the task's `TaskGate` (quota.py) and the ledger's admission (spend.py);
- after an attempt: CLI usage is counted, and a CLI's "usage limit reached, resets at …" starts the
  agent's cooldown and asks for the attempt again, which spends none of the task's retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parex_lsp.agents.base import Outcome, RequestRefused
from parex_lsp.agents.usage_limit import reset_delay
from parex_lsp.contract import Cooldown, EventKind, Payload, Reason, Usage
from parex_lsp.engine.quota import AgentQuota, TaskGate
from parex_lsp.engine.spend import Budget, Ledger
from parex_lsp.plan.model import Plan, TaskSpec

AgentEvent = Callable[[EventKind, Payload], None]


class Limits:
    def __init__(self, plan: Plan, budget: Budget, max_concurrency: int, announce: AgentEvent,
                 look_again: Callable[[], None]):
        """`look_again`: the scheduler should look at its ready tasks (the budget is spent, a slot was freed)."""
        self.plan = plan
        self.ledger = Ledger(budget, look_again)
        self._look_again = look_again
        self._holder: dict[object, str] = {}  # task (or candidate) -> the agent whose slot it holds
        def agent_event(payload: Payload) -> None:
            announce(EventKind.COOLDOWN if isinstance(payload, Cooldown) else EventKind.CONCURRENCY, payload)

        self.quotas = {name: AgentQuota(name, min(a.max_concurrency or max_concurrency, max_concurrency),
                                        agent_event) for name, a in plan.agents.items()}
        self._gates: dict[tuple[str, str], TaskGate] = {}

    def wait_max(self, agent: str) -> float:
        own = self.plan.agents[agent].rate_limit_wait_max
        return self.plan.run.rate_limit_wait_max if own is None else own

    def gate(self, task: TaskSpec, agent: str) -> TaskGate:
        """The task's gate, kept across its attempts (its rate-limit allowance is the task's, not an attempt's)."""
        g = self._gates.get((task.id, agent))  # per agent: a best-of task's candidates may have several
        if g is None:
            async def admit() -> None:
                await self.ledger.admit(task.id, task.max_cost)
            g = self._gates[task.id, agent] = TaskGate(self.quotas[agent], admit, self.ledger.landed,
                                                       self.wait_max(agent))
        return g

    def is_model(self, agent: str) -> bool:
        return self.plan.agents[agent].kind == "openai"

    async def before_attempt(self, task: TaskSpec, agent: str) -> Outcome | None:
        """None when the attempt may go; else how the task ends."""
        try:
            if self.ledger.exhausted:
                raise self.ledger.refusal()
            if (why := self.ledger.over_task_limit(task.id, task.max_cost)) is not None:
                raise RequestRefused(Reason.BUDGET_EXCEEDED, why)
            gate = self.gate(task, agent)
            if gate.wait_max > 0:
                await gate.wait()
        except RequestRefused as e:
            return Outcome(False, code=e.code, reason=e.reason, usage=self.usage_of(task.id))
        return None

    def after_attempt(self, task: TaskSpec, agent: str, outcome: Outcome, tail: list[str]) -> bool:
        """Count the attempt's spend; True when its agent's quota failed it and it should run again."""
        model = self.is_model(agent)
        self.ledger.attempt_ended(task.id, outcome.usage, live=model)
        if model:
            return False  # a model agent's requests are re-sent by its gate; an attempt that failed stays failed
        quota = self.quotas[agent]
        if outcome.ok:
            quota.succeeded()
            return False
        if self.wait_max(agent) <= 0 or outcome.code in (Reason.CANCELLED, Reason.TIMEOUT):
            return False
        delay = reset_delay("\n".join([outcome.reason or "", *tail[-5:]]))
        if delay is None and not outcome.rate_limited:
            return False
        quota.limited(delay if delay is not None else outcome.retry_after, _first_line(outcome.reason))
        return True

    def usage(self, task_id: str, payload: Payload) -> Payload:
        """A model agent's `usage` event (its attempt's running totals) → the task's and the run's totals."""
        if isinstance(payload, Usage):
            self.ledger.attempt_usage(task_id, payload.values)
        return Usage(self.usage_values(task_id))

    def cli_usage(self, task_id: str) -> Payload:
        return Usage(self.usage_values(task_id))

    def usage_values(self, task_id: str) -> dict[str, Any]:
        d: dict[str, Any] = {**self.ledger.task(task_id).to_wire(), "run": self.ledger.total.to_wire()}
        if self.ledger.budget:
            d["budget"] = self.ledger.budget.to_wire()
        return d

    def usage_of(self, task_id: str) -> dict[str, Any] | None:
        a = self.ledger.task(task_id)
        return a.to_wire() if a.tokens or a.priced else None


    # -- an agent's running tasks: the one place that decides whether one more may start ------------------

    def may_start(self, agent: str) -> bool:
        """The scheduler's question: may one more task of `agent` start now (no cooldown, under its level,
        no candidate waiting for its turn)?"""
        return self.quotas[agent].may_start()

    def take(self, agent: str, task: object) -> None:
        """The scheduler starts `task`, an agent process of `agent` (after `may_start`)."""
        self.quotas[agent].take(task)
        self._holder[task] = agent

    async def start(self, agent: str, task: object) -> None:
        """A best-of candidate waits for its agent's slot: queued before any task the scheduler starts later."""
        await self.quotas[agent].start(task)
        self._holder[task] = agent

    def give_back(self, task: object) -> None:
        """`task` ended (or never ran an agent process): its agent's slot, if it holds one, goes to the next."""
        agent = self._holder.pop(task, None)
        if agent is not None:
            self.quotas[agent].give_back(task)
            self._look_again()

    def next_change(self) -> float | None:
        """Seconds until the first cooldown ends, so the scheduler looks again then."""
        left = [q.cooling() for q in self.quotas.values() if q.cooling() > 0]
        return min(left) if left else None

    def status(self) -> dict[str, Any]:
        """The agents' quota state and the run's spend, for `parex/status`."""
        agents = {name: {"level": q.level, "max": q.max_level,
                         "cooldownUntil": q.until if q.cooling() > 0 else None, "reason": q.reason or None}
                  for name, q in self.quotas.items() if q.level < q.max_level or q.cooling() > 0}
        d: dict[str, Any] = {"agents": agents, "spent": self.ledger.spent()}
        if self.ledger.budget:
            d["budget"] = self.ledger.budget.to_wire()
        return d


def _first_line(text: str | None) -> str:
    return (text or "rate limited").strip().split("\n", 1)[0][:200]
