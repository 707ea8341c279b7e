"""Invariants of the terminal's arithmetic, over many shapes: the live view fits any screen of usable size,
and the dry run's expected duration lies between what no schedule can beat and running everything in a row."""

from __future__ import annotations

import io

from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from parex_lsp.cli.dry_run import _simulate
from parex_lsp.cli.live import Estimates, TaskRow, render
from parex_lsp.plan.model import TaskSpec

STATUSES = ["pending", "waiting", "running", "retrying", "succeeded", "failed", "skipped", "cancelled"]


@settings(max_examples=60, deadline=None)
@given(statuses=st.lists(st.sampled_from(STATUSES), max_size=300), height=st.integers(10, 60),
       width=st.integers(30, 200), note=st.text(max_size=120))
@example(statuses=["running"] * 3, height=10, width=30, note="\x1b[2J10%\r\x1b[1A50%\x85next\u2028line\nmore")
def test_the_live_view_never_is_taller_than_the_screen_leaves_room_for(statuses, height, width, note):
    rows = [TaskRow(f"task-{i}", status=s, started=1.0 if s != "pending" else None, ended=2.0, note=note,
                    retry_at=5.0 if s == "retrying" else None) for i, s in enumerate(statuses)]
    out = io.StringIO()
    console = Console(file=out, width=width, height=height, force_terminal=True, markup=False, emoji=False)
    console.print(render("20261128-093601-213-4b7fa3", rows, Estimates(known=True, concurrency=4), height, 1.0, 3.0))
    lines = out.getvalue().splitlines()
    assert len(lines) <= height - 1  # the cursor's line below it stays on screen: nothing scrolls away


@st.composite
def dags(draw):
    n = draw(st.integers(1, 25))
    specs, est = [], {}
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        specs.append(TaskSpec(id=f"t{i}", prompt="true", depends_on=[f"t{d}" for d in deps]))
        est[f"t{i}"] = draw(st.floats(0.1, 10.0))
    return specs, est


@settings(max_examples=80, deadline=None)
@given(dag=dags(), limit=st.integers(1, 8))
def test_the_expected_duration_is_between_the_lower_bound_and_all_work(dag, limit):
    specs, est = dag
    ids = {t.id for t in specs}
    chain: dict[str, float] = {}
    for t in specs:  # in order: dependencies come first
        chain[t.id] = est[t.id] + max((chain[d] for d in t.depends_on), default=0.0)
    priority = {t.id: est[t.id] for t in specs}
    expected = _simulate(specs, ids, est, priority, {}, limit, {t.id: "shell" for t in specs}, {})
    work = sum(est.values())
    assert expected >= max(max(chain.values()), work / limit) - 1e-9
    assert expected <= work + 1e-9

