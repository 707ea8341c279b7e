"""A node's model requests under 429s (executors/ray/pacing.py): sent again after the far side's Retry-After
while the agent's rate_limit_wait_max allows, then refused as `rate-limited`, as a local task would be."""

from __future__ import annotations

import time

import pytest

from parex_lsp.agents.base import RateLimit, RequestRefused
from parex_lsp.contract import Reason
from parex_lsp.executors.ray.pacing import PacedGate


def refusing(times: int, retry_after: float | None):
    calls: list[float] = []

    async def request() -> str:
        calls.append(time.monotonic())
        if len(calls) <= times:
            raise RateLimit("429 Rate limit reached", retry_after)
        return "answer"
    return request, calls


async def test_a_refused_request_goes_again_after_its_retry_after():
    said: list[str] = []
    request, calls = refusing(2, 0.2)
    assert await PacedGate(30, said.append).send(request) == "answer"
    assert len(calls) == 3 and all(b - a >= 0.19 for a, b in zip(calls, calls[1:], strict=False))
    assert said == ["rate limited (429 Rate limit reached): sending the request again in 0.2s"] * 2


async def test_a_wait_beyond_the_limit_is_refused_at_once():
    request, calls = refusing(1, 3600)
    started = time.monotonic()
    with pytest.raises(RequestRefused) as refused:
        await PacedGate(5, lambda _: None).send(request)
    assert refused.value.code == Reason.RATE_LIMITED and "rate_limit_wait_max (5s)" in refused.value.reason
    assert len(calls) == 1 and time.monotonic() - started < 1


async def test_no_wait_allowed_leaves_the_429_to_the_attempt():
    request, calls = refusing(1, 0.1)
    with pytest.raises(RateLimit):
        await PacedGate(0, lambda _: None).send(request)
    assert len(calls) == 1
