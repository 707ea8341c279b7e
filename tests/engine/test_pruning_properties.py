"""Pruning's promises, for any mix of runs: the newest `keep` stay, and no live run, no latest run of a plan and
no run with kept branches is ever removed; everything else older goes. Journals are written by the real
`Journal`; the branch-holding runs have real `parex/<run>/...` branches."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parex_lsp.contract import Event, EventKind, RunStarted, Wire
from parex_lsp.engine.journal import Journal, list_runs
from parex_lsp.engine.pruning import plan_pruning, prune_runs

DEAD_PID = 2 ** 22 + 12345  # above the kernel's pid_max on the machines this runs on: never a live process

runs = st.lists(st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(["ended", "live", "crashed"]),
                          st.booleans()), min_size=0, max_size=12)


def _write(ws: Path, i: int, plan: str, how: str) -> str:
    run_id = f"20260101-000000-{i:03d}-aaaaaa"
    j = Journal(ws, run_id)
    pid = os.getpid() if how == "live" else DEAD_PID
    j.append(Event(run_id, None, EventKind.RUN_STARTED, 0, 1000.0 + i, RunStarted(plan, pid, (), 1, "none")))
    if how == "ended":
        j.append(Event(run_id, None, EventKind.RUN_FINISHED, 0, 1000.5 + i, Wire({"status": "succeeded"})))
    j.close()
    return run_id


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs, st.integers(min_value=1, max_value=6))
def test_pruning_keeps_what_it_promises_and_removes_the_rest(spec: list[tuple[str, str, bool]], keep: int):
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "x"],
                       cwd=ws, check=True)
        ids = [_write(ws, i, plan, how) for i, (plan, how, _) in enumerate(spec)]
        with_branch = {rid for rid, (_, _, b) in zip(ids, spec, strict=True) if b}
        for rid in with_branch:
            subprocess.run(["git", "branch", f"parex/{rid}/t"], cwd=ws, check=True)
        latest = {plan: rid for rid, (plan, _, _) in zip(ids, spec, strict=True)}
        must_stay = set(ids[-keep:]) | set(latest.values()) | with_branch | {
            rid for rid, (_, how, _) in zip(ids, spec, strict=True) if how == "live"}
        assert set(plan_pruning(ws, keep).remove) == set(ids) - must_stay
        prune_runs(ws, keep)
        assert {p.parent.name for p in list_runs(ws)} == must_stay
