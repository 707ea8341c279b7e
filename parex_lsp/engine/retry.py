"""Attempts of one task under tenacity: only transient failures are retried, with exponential backoff
and jitter, never sooner than the far side asked (Retry-After)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt, wait_exponential_jitter

from parex_lsp.agents.base import RETRIES_EXHAUSTED, Outcome

MAX_RETRY_AFTER = 600.0  # a Retry-After beyond this is treated as this


def _transient(outcome: Outcome) -> bool:
    return not outcome.ok and outcome.transient


async def with_retries(attempt: Callable[[], Awaitable[Outcome]], retries: int, backoff: float, backoff_max: float,
                       on_retry: Callable[[float, Outcome], None]) -> Outcome:
    """Run `attempt` until it succeeds, fails permanently, or `retries` extra attempts are spent."""
    first = await attempt()  # most tasks end here; the retry machinery is set up only for a transient failure
    if not retries or not _transient(first):
        return first
    pending = [first]

    async def next_attempt() -> Outcome:
        return pending.pop() if pending else await attempt()

    backoff_wait = wait_exponential_jitter(multiplier=backoff, max=backoff_max, jitter=backoff)

    def wait(state: RetryCallState) -> float:
        asked = state.outcome.result().retry_after if state.outcome is not None else None
        return max(backoff_wait(state), min(asked or 0.0, MAX_RETRY_AFTER))

    def before_sleep(state: RetryCallState) -> None:
        assert state.outcome is not None
        on_retry(state.next_action.sleep if state.next_action else 0.0, state.outcome.result())

    def gave_up(state: RetryCallState) -> Outcome:
        assert state.outcome is not None
        outcome: Outcome = state.outcome.result()
        outcome.code = RETRIES_EXHAUSTED
        outcome.reason = f"{outcome.reason} (gave up after {state.attempt_number} attempts)"
        return outcome

    retrying = AsyncRetrying(stop=stop_after_attempt(retries + 1), wait=wait, retry=retry_if_result(_transient),
                             sleep=anyio.sleep, before_sleep=before_sleep, retry_error_callback=gave_up)
    return await retrying(next_attempt)
