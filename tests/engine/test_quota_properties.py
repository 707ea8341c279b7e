"""The agent quota's invariants over random sequences of rate limits, successes and time passing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from parex_lsp.contract import Concurrency, Cooldown
from parex_lsp.engine.quota import AgentQuota

steps = st.lists(st.one_of(
    st.tuples(st.just("limit"), st.one_of(st.none(), st.floats(0, 120))),
    st.tuples(st.just("ok"), st.none()),
    st.tuples(st.just("wait"), st.floats(0, 200)),
), max_size=60)


@settings(max_examples=100, deadline=None)
@given(max_level=st.integers(1, 64), steps=steps)
def test_level_stays_in_range_halves_once_a_cooldown_and_regrows_by_one(max_level: int, steps):
    clock = [1000.0]
    events: list[object] = []
    q = AgentQuota("a", max_level, events.append, clock=lambda: clock[0])
    for op, arg in steps:
        before, cooling, until = q.level, q.cooling() > 0, q.until
        n = len(events)
        if op == "limit":
            q.limited(arg, "429")
            assert q.level == (before if cooling else max(1, before // 2))  # a burst halves it once
            assert q.until >= until
            assert q.until >= clock[0] + (arg if arg is not None else 0)
        elif op == "ok":
            q.succeeded()
            assert q.level in (before, before + 1) and q.level <= max_level
        else:
            clock[0] += arg
        assert 1 <= q.level <= max_level
        for e in events[n:]:
            assert isinstance(e, (Cooldown, Concurrency))
            if isinstance(e, Concurrency):
                assert e.level == q.level and e.max == max_level


def test_a_run_of_successes_as_long_as_the_level_adds_one():
    q = AgentQuota("a", 8, lambda e: None, clock=lambda: 0.0)
    q.limited(1.0, "429")
    assert q.level == 4
    for _ in range(3):
        q.succeeded()
    assert q.level == 4
    q.succeeded()
    assert q.level == 5
