"""One cooldown per rate-limited agent, and its adaptive concurrency (AIMD).

A 429, an overload answer or a CLI's "usage limit reached" pauses every task of that agent until the time
the far side named: one shared cooldown, so N tasks do not each find the limit again. Waiting it out is
not an attempt: a task waits at most `rate_limit_wait_max` in all, then fails `rate-limited`.

The agent's effective concurrency halves on a rate limit (once per cooldown, however many requests of
the burst were refused) and grows by one after as many successes in a row as the current level, up to
the agent's `max_concurrency`. For model agents it bounds requests in flight; for every agent, the tasks
running at once, ordinary ones and best-of candidates alike: the scheduler takes a slot when one is free
(`may_start`, `take`), a candidate waits for its turn (`start`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from parex_lsp.agents.base import RateLimit, RequestRefused
from parex_lsp.contract import Concurrency, Cooldown, Payload, Reason

T = TypeVar("T")
FIRST_COOLDOWN = 1.0  # seconds, when the far side named no time; doubles while the limits go on
MAX_GUESSED_COOLDOWN = 60.0
EXTEND_NOTICE = 0.25  # a cooldown pushed later by less than this is not announced again

Announce = Callable[[Payload], None]  # an agent-wide event (taskId null)


class AgentQuota:
    def __init__(self, agent: str, max_level: int, announce: Announce, clock: Callable[[], float] = time.time):
        self.agent, self.max_level = agent, max_level
        self.level = max_level
        self.until = 0.0  # epoch seconds the cooldown ends; 0 (or past) when none
        self.reason = ""
        self._announce, self._clock = announce, clock
        self._streak = 0  # successes since the last change of level
        self._guess = FIRST_COOLDOWN
        self._slots = anyio.CapacityLimiter(max_level)
        self._tasks = anyio.CapacityLimiter(max_level)  # running tasks (and best-of candidates): first come, first in
        self._changed = anyio.Event()

    # -- what happened ---------------------------------------------------------------------------

    def limited(self, retry_after: float | None, reason: str) -> None:
        """A rate limit: start (or extend) the shared cooldown, and halve the level once per cooldown."""
        now = self._clock()
        fresh = now >= self.until
        if retry_after is None:
            retry_after = self._guess
            self._guess = min(self._guess * 2, MAX_GUESSED_COOLDOWN)
        until = now + retry_after
        if fresh:
            self._set_level(max(1, self.level // 2), f"rate limited: {reason}")
        announce = fresh or until > self.until + EXTEND_NOTICE
        if until > self.until:
            self.until, self.reason = until, reason
        if announce:
            self._announce(Cooldown(self.agent, self.until, reason))
        self._streak = 0
        self._signal()

    def succeeded(self) -> None:
        """A request (or a CLI attempt) the far side served: after a run of them, one more at once."""
        self._guess = FIRST_COOLDOWN
        self._streak += 1
        if self._streak >= self.level and self.level < self.max_level:
            self._set_level(self.level + 1, f"{self._streak} successes in a row")

    def _set_level(self, level: int, reason: str) -> None:
        if level == self.level:
            return
        self.level, self._streak = level, 0
        self._slots.total_tokens = level  # borrowers above a lowered level keep theirs; new ones wait
        self._tasks.total_tokens = level
        self._announce(Concurrency(self.agent, level, self.max_level, reason))
        self._signal()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- waiting -----------------------------------------------------------------------------------

    def cooling(self) -> float:
        """Seconds left of the cooldown (0 when none)."""
        return max(0.0, self.until - self._clock())

    async def wait(self, deadline: float, limit: float) -> None:
        """Wait out the cooldown; RequestRefused (`rate-limited`) when it ends after `deadline` (epoch)."""
        while (left := self.cooling()) > 0:
            if self.until > deadline:
                raise RequestRefused(Reason.RATE_LIMITED, f"agent `{self.agent}` is rate limited until "
                                     f"{time.strftime('%H:%M:%S', time.localtime(self.until))}, beyond "
                                     f"rate_limit_wait_max ({limit:g}s) ({self.reason})")
            with anyio.move_on_after(left):
                await self._changed.wait()

    # -- running tasks -----------------------------------------------------------------------------

    def may_start(self) -> bool:
        """One more task of this agent may start now: no cooldown, under its level, nobody queued before it."""
        return (self.cooling() <= 0 and self._tasks.available_tokens >= 1
                and self._tasks.statistics().tasks_waiting == 0)

    def take(self, task: object) -> None:
        """The scheduler starts `task` (after `may_start`)."""
        self._tasks.acquire_on_behalf_of_nowait(task)

    async def start(self, task: object) -> None:
        """Wait for `task`'s turn (queued in order with the others waiting), then for any cooldown to end: as the
        scheduler would start it. Waiting here is not rate-limit waiting (`rate_limit_wait_max`)."""
        await self._tasks.acquire_on_behalf_of(task)
        try:
            await self.wait(math.inf, math.inf)  # no deadline: never refused
        except BaseException:  # cancelled while waiting out a cooldown: the slot goes to the next
            self._tasks.release_on_behalf_of(task)
            raise

    def give_back(self, task: object) -> None:
        self._tasks.release_on_behalf_of(task)

    def slot(self) -> anyio.CapacityLimiter:
        """A request in flight to this agent: at most `level` at once."""
        return self._slots


class TaskGate:
    """One task's `RequestGate`: its agent's quota, the run's budget, and its own rate-limit wait allowance."""

    def __init__(self, quota: AgentQuota, admit: Callable[[], Awaitable[None]], landed: Callable[[], None],
                 wait_max: float, clock: Callable[[], float] = time.time):
        self.quota, self._admit, self._landed, self.wait_max = quota, admit, landed, wait_max
        self._clock = clock
        self.waited = 0.0  # seconds this task spent in cooldowns so far

    async def send(self, request: Callable[[], Awaitable[T]]) -> T:
        if self.wait_max <= 0:  # no shared cooldown: a rate limit is an ordinary transient failure
            await self._admit()
            try:
                return await request()
            finally:
                self._landed()
        while True:
            await self.wait()
            async with self.quota.slot():
                if self.quota.cooling() > 0:
                    continue  # a limit was hit while this request waited for its slot
                await self._admit()
                try:
                    result = await request()
                except RateLimit as e:
                    self.quota.limited(e.retry_after, e.reason)
                    continue
                finally:
                    self._landed()
            self.quota.succeeded()
            return result

    async def wait(self) -> None:
        """Wait out the agent's cooldown within what is left of this task's allowance."""
        started = self._clock()
        try:
            await self.quota.wait(started + max(0.0, self.wait_max - self.waited), self.wait_max)
        finally:
            self.waited += self._clock() - started
