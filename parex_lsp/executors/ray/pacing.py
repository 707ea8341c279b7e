"""A model agent's requests on a node. parex's shared cooldown lives with the scheduler, which a node cannot ask
before each request, so the node paces its own: a request the far side refused for now (HTTP 429, an overload
answer) is sent again after its `Retry-After` (else an exponential backoff) until the agent's
`rate_limit_wait_max` is spent, as a local task waits. The conversation so far is kept and none of the task's
retries is spent; past the limit the attempt fails `rate-limited`, as it would locally."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from parex_lsp.agents.base import RateLimit, RequestRefused
from parex_lsp.contract import Reason

T = TypeVar("T")
_backoff = wait_exponential(multiplier=1, min=1, max=60)  # when the far side names no wait


class PacedGate:
    def __init__(self, wait_max: float, say: Callable[[str], None]):
        self.wait_max, self._say = wait_max, say

    @staticmethod
    def _next(state: RetryCallState) -> float:
        """Seconds until the refused request goes again: what the far side asked, else the backoff."""
        error = state.outcome.exception() if state.outcome else None
        asked = error.retry_after if isinstance(error, RateLimit) else None
        return asked if asked is not None and asked >= 0 else _backoff(state)

    def _stop(self, state: RetryCallState) -> bool:
        """Give up when waiting once more would pass the limit (a Retry-After of an hour is not slept)."""
        return (state.seconds_since_start or 0.0) + self._next(state) > self.wait_max

    def _wait(self, state: RetryCallState) -> float:
        seconds = self._next(state)
        error = state.outcome.exception() if state.outcome else None
        self._say(f"rate limited ({error}): sending the request again in {seconds:g}s")
        return seconds

    async def send(self, request: Callable[[], Awaitable[T]]) -> T:
        if self.wait_max <= 0:  # no waiting asked for: the 429 ends the attempt, as locally
            return await request()
        try:
            async for attempt in AsyncRetrying(retry=retry_if_exception_type(RateLimit), wait=self._wait,
                                               stop=self._stop, reraise=True):
                with attempt:
                    return await request()
        except RateLimit as e:
            raise RequestRefused(Reason.RATE_LIMITED, f"still rate limited; waiting again would pass "
                                 f"rate_limit_wait_max ({self.wait_max:g}s): {e.reason}") from e
        raise AssertionError("unreachable: tenacity either returns or raises")
