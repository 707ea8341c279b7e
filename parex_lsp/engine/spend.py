"""What a run has spent, against its budget: tokens and USD, per task and in total, live.

Spend comes from model agents' `usage` events (running totals of one attempt, after each request) and
from CLI agents' reported usage at the end of an attempt. Each task's spend sums its attempts.

Model requests are admitted against the budget: while spend plus the requests in flight (each counted
at the largest request seen so far) would pass it, a request waits for those in flight to land; with
none in flight it goes, and once spend reaches the budget none does. So a run's spend ends at most one
request beyond its budget, however many tasks run at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from parex_lsp.agents.base import RequestRefused
from parex_lsp.contract import Reason


@dataclass(frozen=True, slots=True)
class Budget:
    usd: float | None = None
    tokens: int | None = None

    @classmethod
    def of(cls, table: dict[str, float], usd: float | None = None, tokens: int | None = None) -> Budget:
        """The plan's `[run] budget`, overridden key by key by the options (`--budget-usd`, `--budget-tokens`)."""
        usd = usd if usd is not None else table.get("usd")
        raw_tokens = tokens if tokens is not None else table.get("tokens")
        return cls(usd, int(raw_tokens) if raw_tokens is not None else None)

    def __bool__(self) -> bool:
        return self.usd is not None or self.tokens is not None

    def to_wire(self) -> dict[str, Any]:
        return {k: v for k, v in (("usd", self.usd), ("tokens", self.tokens)) if v is not None}


@dataclass(slots=True)
class Amount:
    prompt: int = 0
    completion: int = 0
    cost: float = 0.0
    priced: bool = False  # some usage came with a cost

    @property
    def tokens(self) -> int:
        return self.prompt + self.completion

    def add(self, other: Amount) -> None:
        self.prompt += other.prompt
        self.completion += other.completion
        self.cost += other.cost
        self.priced = self.priced or other.priced

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"promptTokens": self.prompt, "completionTokens": self.completion}
        if self.priced:
            d["costUsd"] = round(self.cost, 6)
        return d

    @classmethod
    def of(cls, usage: dict[str, Any] | None) -> Amount:
        u = usage or {}
        return cls(int(u.get("promptTokens") or 0), int(u.get("completionTokens") or 0),
                   float(u.get("costUsd") or 0.0), "costUsd" in u)


@dataclass(slots=True)
class _TaskSpend:
    done: Amount = field(default_factory=Amount)  # attempts that ended
    current: Amount = field(default_factory=Amount)  # the running attempt's totals so far

    @property
    def total(self) -> Amount:
        a = Amount()
        a.add(self.done)
        a.add(self.current)
        return a


class Ledger:
    """Spend per task and in total; tells `on_exhausted` once when the budget is reached."""

    def __init__(self, budget: Budget, on_exhausted: Callable[[], None]):
        self.budget = budget
        self._on_exhausted = on_exhausted
        self._tasks: dict[str, _TaskSpend] = {}
        self.total = Amount()
        self.exhausted = False
        self.in_flight = 0  # admitted model requests not yet landed
        self.largest = Amount()  # the largest single request seen: the estimate for one in flight
        self._changed = anyio.Event()

    # -- recording -----------------------------------------------------------------------------

    def attempt_usage(self, task_id: str, usage: dict[str, Any]) -> None:
        """A model agent's running totals for the task's current attempt (after each request)."""
        t = self._tasks.setdefault(task_id, _TaskSpend())
        now = Amount.of(usage)
        step = Amount(now.prompt - t.current.prompt, now.completion - t.current.completion,
                      now.cost - t.current.cost, now.priced)
        t.current = now
        self.largest = Amount(max(self.largest.prompt, step.prompt), max(self.largest.completion, step.completion),
                              max(self.largest.cost, step.cost), self.largest.priced or step.priced)
        self._add(step)

    def attempt_ended(self, task_id: str, usage: dict[str, Any] | None, live: bool) -> None:
        """An attempt ended: its usage was counted live (model agents), or is counted now (CLI agents)."""
        t = self._tasks.setdefault(task_id, _TaskSpend())
        if not live and usage:
            t.current = Amount.of(usage)
            self._add(t.current)
        t.done.add(t.current)
        t.current = Amount()

    def task(self, task_id: str) -> Amount:
        t = self._tasks.get(task_id)
        return t.total if t is not None else Amount()

    def _add(self, step: Amount) -> None:
        self.total.add(step)
        self._signal()
        if not self.exhausted and self.budget and self._reached(self.total):
            self.exhausted = True
            self._on_exhausted()

    def _reached(self, a: Amount) -> bool:
        b = self.budget
        return (b.tokens is not None and a.tokens >= b.tokens) or (b.usd is not None and a.cost >= b.usd)

    def _signal(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- admission -----------------------------------------------------------------------------

    def over_task_limit(self, task_id: str, max_cost: float | None) -> str | None:
        if max_cost is None:
            return None
        spent = self.task(task_id).cost
        return f"the task spent ${spent:.4f}, its max_cost is ${max_cost:g}" if spent >= max_cost else None

    def refusal(self) -> RequestRefused:
        return RequestRefused(Reason.BUDGET_EXCEEDED, f"the run's budget is spent ({self.summary()})")

    async def admit(self, task_id: str, max_cost: float | None) -> None:
        """Wait until one more request fits the budget; RequestRefused once it is spent (or the task's max_cost)."""
        while True:
            if self.exhausted:
                raise self.refusal()
            if (why := self.over_task_limit(task_id, max_cost)) is not None:
                raise RequestRefused(Reason.BUDGET_EXCEEDED, why)
            if self.in_flight == 0 or not self.budget or self._fits(self.in_flight + 1):
                self.in_flight += 1
                return
            await self._changed.wait()

    def landed(self) -> None:
        self.in_flight -= 1
        self._signal()

    def _fits(self, requests: int) -> bool:
        if self.largest.tokens == 0 and self.largest.cost == 0:
            return False  # the size of a request is not known yet: one at a time until it is
        a = Amount(self.total.prompt + requests * self.largest.prompt,
                   self.total.completion + requests * self.largest.completion,
                   self.total.cost + requests * self.largest.cost)
        b = self.budget
        return ((b.tokens is None or a.tokens <= b.tokens) and (b.usd is None or a.cost <= b.usd))

    # -- words ---------------------------------------------------------------------------------

    def spent(self) -> dict[str, Any]:
        d: dict[str, Any] = {"tokens": self.total.tokens, **self.total.to_wire()}
        if "costUsd" not in d:
            d["costUsd"] = 0.0
        return d

    def summary(self) -> str:
        """`spent 2,050 of 2,000 tokens`, `$4.12 of $5`, both when both are set."""
        b, parts = self.budget, []
        if b.tokens is not None:
            parts.append(f"{self.total.tokens:,} of {b.tokens:,} tokens")
        if b.usd is not None:
            parts.append(f"${self.total.cost:.4f} of ${b.usd:g}")
        return "spent " + ", ".join(parts) if parts else f"spent {self.total.tokens:,} tokens"
