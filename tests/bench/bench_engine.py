"""Scheduler benchmark: parex against GNU `make -j` on the same seeded random DAG, in the same run.

    .venv/bin/python tests/bench/bench_engine.py            # all three benchmarks
    .venv/bin/python tests/bench/bench_engine.py --quick    # smaller, for a smoke check

1. A random DAG of `sleep` tasks: each tool's wall time over the lower bound
   max(critical path, total work / concurrency). parex runs it twice: cold (no history, priorities from
   task counts) and warm (priorities from the first run's journal durations).
2. 2,000 no-op tasks (`true`): whole-process time of `parex-lsp run` against `make -j`.
3. Parse + validate a 10,000-task plan.
Figures are wall-clock ratios measured in one process on one machine; absolute times vary, ratios hold.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAREX = [sys.executable, "-m", "parex_lsp"]


def random_dag(n: int, seed: int, lo: float, hi: float) -> list[tuple[str, float, list[str]]]:
    """Tasks in topological order; each depends on 0–3 earlier tasks, mostly recent ones (layered, wide)."""
    rng = random.Random(seed)
    tasks = []
    for i in range(n):
        k = rng.choice([0, 0, 1, 1, 2, 3]) if i else 0
        window = list(range(max(0, i - 40), i))
        deps = sorted(rng.sample(window, min(k, len(window))))
        tasks.append((f"t{i:04d}", round(rng.uniform(lo, hi), 2), [f"t{d:04d}" for d in deps]))
    return tasks


def lower_bound(tasks, concurrency: int) -> tuple[float, float, float]:
    finish: dict[str, float] = {}
    for tid, dur, deps in tasks:
        finish[tid] = dur + max((finish[d] for d in deps), default=0.0)
    critical, work = max(finish.values()), sum(d for _, d, _ in tasks)
    return max(critical, work / concurrency), critical, work


def write_plan(ws: Path, tasks, concurrency: int, command=lambda dur: f"sleep {dur}") -> Path:
    lines = [f"[run]\nmax_concurrency = {concurrency}\n"]
    for tid, dur, deps in tasks:
        lines.append(f'[[task]]\nid = "{tid}"\nprompt = "{command(dur)}"\n'
                     + (f"depends_on = {json.dumps(deps)}\n" if deps else ""))
    path = ws / "parex.toml"
    path.write_text("".join(lines))
    return path


def write_makefile(ws: Path, tasks, command=lambda dur: f"sleep {dur}") -> Path:
    lines = [".PHONY: all " + " ".join(t for t, _, _ in tasks), "all: " + " ".join(t for t, _, _ in tasks)]
    for tid, dur, deps in tasks:
        lines.append(f"{tid}: {' '.join(deps)}\n\t@{command(dur)}")
    path = ws / "Makefile"
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return elapsed, p


def bench_dag(n: int, concurrency: int, seed: int, lo: float, hi: float) -> dict:
    tasks = random_dag(n, seed, lo, hi)
    bound, critical, work = lower_bound(tasks, concurrency)
    with tempfile.TemporaryDirectory() as d:
        ws = Path(d)
        write_plan(ws, tasks, concurrency)
        write_makefile(ws, tasks)
        make_s, _ = timed(["make", f"-j{concurrency}", "-s"], ws)
        cold_s, cold = timed([*PAREX, "run", "parex.toml", "--json", "-q"], ws)
        warm_s, warm = timed([*PAREX, "run", "parex.toml", "--json", "-q"], ws)
    cold_wall = json.loads(cold.stdout.splitlines()[-1])["wallMs"] / 1000
    warm_wall = json.loads(warm.stdout.splitlines()[-1])["wallMs"] / 1000
    return {"tasks": n, "concurrency": concurrency, "seed": seed, "bound_s": round(bound, 2),
            "critical_path_s": round(critical, 2), "work_s": round(work, 2),
            "make_s": round(make_s, 2), "make_ratio": round(make_s / bound, 3),
            "parex_cold_s": round(cold_s, 2), "parex_cold_ratio": round(cold_s / bound, 3),
            "parex_cold_engine_ratio": round(cold_wall / bound, 3),
            "parex_warm_s": round(warm_s, 2), "parex_warm_ratio": round(warm_s / bound, 3),
            "parex_warm_engine_ratio": round(warm_wall / bound, 3)}


def bench_noop(n: int, concurrency: int) -> dict:
    tasks = [(f"n{i:05d}", 0.0, []) for i in range(n)]
    with tempfile.TemporaryDirectory() as d:
        ws = Path(d)
        write_plan(ws, tasks, concurrency, command=lambda _: "true")
        write_makefile(ws, tasks, command=lambda _: "true")
        make_s, _ = timed(["make", f"-j{concurrency}", "-s"], ws)
        parex_s, _ = timed([*PAREX, "run", "parex.toml", "-q", "--json"], ws)
    return {"tasks": n, "concurrency": concurrency, "make_s": round(make_s, 2), "parex_s": round(parex_s, 2),
            "ratio": round(parex_s / make_s, 3)}


def bench_parse(n: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from parex_lsp.plan import plan_from_text

    tasks = random_dag(n, 7, 0.1, 1.0)
    lines = ["[run]\nmax_concurrency = 8\n"]
    for tid, _, deps in tasks:
        lines.append(f'[[task]]\nid = "{tid}"\nprompt = "make {tid}"\nfiles = ["out/{tid}.txt"]\n'
                     + (f"depends_on = {json.dumps(deps)}\n" if deps else "") + 'timeout = "10m"\n')
    text = "".join(lines)
    with tempfile.TemporaryDirectory() as d:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            plan = plan_from_text(text, str(Path(d) / "parex.toml"), Path(d))
            times.append(time.perf_counter() - start)
    assert len(plan.tasks) == n
    return {"tasks": n, "bytes": len(text), "best_s": round(min(times), 3), "median_s": round(sorted(times)[2], 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    if not shutil.which("make"):
        raise SystemExit("GNU make is needed for the baseline (apt-get install make)")
    n, noop = (60, 300) if args.quick else (200, 2000)
    dags = [bench_dag(n, 8, seed, 0.1, 1.0) for seed in args.seeds]
    print("\nrandom DAG of sleep tasks, concurrency 8 (ratio = wall / max(critical path, work / 8))")
    print("| seed | tasks | bound | make -j8 | parex cold | parex warm | parex warm, engine only |")
    print("|---|---|---|---|---|---|---|")
    for r in dags:
        print(f"| {r['seed']} | {r['tasks']} | {r['bound_s']} s | {r['make_ratio']}× | {r['parex_cold_ratio']}× "
              f"| {r['parex_warm_ratio']}× | {r['parex_warm_engine_ratio']}× |")
    no = bench_noop(noop, 8)
    print(f"\n{no['tasks']} no-op tasks (`true`), whole process, -j8: make {no['make_s']} s, "
          f"parex {no['parex_s']} s → {no['ratio']}× make")
    parse = bench_parse(1000 if args.quick else 10000)
    print(f"\nparse + validate a {parse['tasks']}-task plan ({parse['bytes'] // 1024} KiB): "
          f"best {parse['best_s']} s, median {parse['median_s']} s")
    print(json.dumps({"dag": dags, "noop": no, "parse": parse}))


if __name__ == "__main__":
    main()
