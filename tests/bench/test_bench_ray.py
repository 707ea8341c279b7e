"""Smoke run of the Ray benchmark: `bench_ray.py --quick` on its loopback two-node cluster ends with tables
of measured figures, local and Ray side by side."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).with_name("bench_ray.py")


def test_quick_run_prints_tables_of_figures() -> None:
    p = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"bench_ray.py --quick failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    lines = p.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| seed")
            and not line.startswith("| executor")]
    assert len(rows) == 1 + 2 + 2, p.stdout  # one DAG row, no-op and latency rows for local and ray
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert all(re.fullmatch(r"\d+(\.\d+)?( s| ms|×)?", c) for c in cells), row

    figures = json.loads(lines[-1])
    dag = figures["dag"][0]
    for executor in ("local", "ray"):
        # A run cannot beat the lower bound; a ratio below 1 would mean the bound or the timing is wrong.
        assert dag[f"{executor}_engine_ratio"] >= 1.0, dag
        assert dag[f"{executor}_ratio"] >= dag[f"{executor}_engine_ratio"], dag
        assert figures["noop"][f"{executor}_ms_per_task"] > 0, figures["noop"]
        latency = figures["latency"]
        assert latency[f"{executor}_events"] >= 4, latency  # most of the 8 lines arrived as their own event
        assert 0 <= latency[f"{executor}_median_ms"] <= latency[f"{executor}_max_ms"], latency
