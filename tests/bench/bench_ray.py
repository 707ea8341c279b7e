"""The Ray executor against the local one, in the same run, on a loopback two-node Ray cluster.

    .venv/bin/pip install -e '.[ray]'
    .venv/bin/python tests/bench/bench_ray.py            # the full run
    .venv/bin/python tests/bench/bench_ray.py --quick    # smaller, for a smoke check

Every parex run here uses worktree isolation (executor "ray" implies it) in a fresh git repository, through
`parex-lsp run` as a user runs it. The cluster is two Ray nodes on 127.0.0.1 in this process
(`ray.cluster_utils.Cluster`), each with `--cpus` CPUs; both executors get the same number of slots.

1. The random DAG of `sleep` tasks from bench_engine.py: wall time over the lower bound
   max(critical path, total work / slots), local and Ray.
2. Per-task overhead: N no-op tasks (`true`), wall time per task, local and Ray.
3. Output latency: a task prints the time (`date +%s.%N`) every 0.2 s; latency is the journal timestamp of
   the engine's `output` event minus the time printed in its line (one clock: everything runs here).
Figures are wall-clock ratios measured on one machine; the loopback cluster adds Ray's machinery (bundles,
object store, workers, streaming) without a network.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_engine import PAREX, lower_bound, random_dag, write_plan  # noqa: E402

# Without this Ray replaces 127.0.0.1 with the host's interface address, and a driver cannot reach a GCS
# bound on loopback. Set before ray is imported, and inherited by the `parex-lsp run` processes.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


class LoopbackCluster:
    """Two Ray nodes on 127.0.0.1, up for the length of a `with` block."""

    def __init__(self, cpus_per_node: int):
        self.cpus_per_node = cpus_per_node

    def __enter__(self) -> LoopbackCluster:
        from ray.cluster_utils import Cluster

        start = time.perf_counter()
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": self.cpus_per_node, "node_ip_address": "127.0.0.1", "include_dashboard": False})
        self.cluster.add_node(num_cpus=self.cpus_per_node, node_ip_address="127.0.0.1")
        self.cluster.wait_for_nodes()
        self.address: str = self.cluster.head_node.gcs_address
        self.up_s = time.perf_counter() - start
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.shutdown()


def git(ws: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True)


def workspace(root: Path, name: str, tasks, slots: int, command: Callable[[float], str]) -> Path:
    """A git repository with one commit holding the plan (worktree isolation needs a branch and a commit)."""
    ws = root / name
    ws.mkdir()
    git(ws, "init", "-q", "-b", "main")
    git(ws, "config", "user.email", "bench@example.com")
    git(ws, "config", "user.name", "bench")
    (ws / ".gitignore").write_text(".parex/\n")
    write_plan(ws, tasks, slots, command)
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "base")
    return ws


def run_plan(ws: Path, executor: str, address: str | None) -> tuple[float, dict]:
    """`parex-lsp run` with worktree isolation: (whole-process seconds, the RunResult)."""
    cmd = [*PAREX, "run", "parex.toml", "--json", "-q", "--isolation", "worktree", "--executor", executor]
    if address:
        cmd += ["--ray-address", address]
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=ws, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    result = json.loads(p.stdout.splitlines()[-1]) if p.stdout.strip() else {}
    if p.returncode != 0 or result.get("status") != "succeeded":
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return elapsed, result


def both(root: Path, name: str, tasks, slots: int, command: Callable[[float], str],
         address: str) -> dict[str, tuple[Path, float, dict]]:
    """The same plan run by each executor, each in its own fresh repository."""
    out = {}
    for executor in ("local", "ray"):
        ws = workspace(root, f"{name}-{executor}", tasks, slots, command)
        elapsed, result = run_plan(ws, executor, address if executor == "ray" else None)
        out[executor] = (ws, elapsed, result)
    return out


def nodes_used(ws: Path, run_id: str) -> int:
    """How many Ray nodes the run's attempts ran on, from the banner parex writes into each task's log."""
    nodes = set()
    for log in (ws / ".parex" / "runs" / run_id).glob("*.log"):
        nodes.update(line.rsplit("(", 1)[-1].rstrip(")") for line in log.read_text().splitlines()
                     if " on Ray node " in line)
    return len(nodes)


def bench_dag(root: Path, address: str, n: int, slots: int, seed: int, lo: float, hi: float) -> dict:
    tasks = random_dag(n, seed, lo, hi)
    bound, critical, work = lower_bound(tasks, slots)
    row: dict = {"tasks": n, "slots": slots, "seed": seed, "bound_s": round(bound, 2),
                 "critical_path_s": round(critical, 2), "work_s": round(work, 2)}
    for executor, (ws, elapsed, result) in both(root, f"dag{seed}", tasks, slots,
                                                lambda dur: f"sleep {dur}", address).items():
        row[f"{executor}_nodes"] = nodes_used(ws, result["runId"])
        row[f"{executor}_s"] = round(elapsed, 2)
        row[f"{executor}_ratio"] = round(elapsed / bound, 3)
        row[f"{executor}_engine_ratio"] = round(result["wallMs"] / 1000 / bound, 3)
    return row


def bench_noop(root: Path, address: str, n: int, slots: int) -> dict:
    tasks = [(f"n{i:04d}", 0.0, []) for i in range(n)]
    row: dict = {"tasks": n, "slots": slots}
    for executor, (_, elapsed, result) in both(root, "noop", tasks, slots, lambda _: "true", address).items():
        row[f"{executor}_s"] = round(elapsed, 2)
        row[f"{executor}_ms_per_task"] = round(result["wallMs"] / n, 1)
    row["ray_over_local"] = round(row["ray_ms_per_task"] / row["local_ms_per_task"], 2)
    return row


def output_latencies(ws: Path, run_id: str) -> list[float]:
    """Seconds from each timestamped line's printing to its `output` event, from the run's journal."""
    latencies = []
    with (ws / ".parex" / "runs" / run_id / "journal.jsonl").open() as f:
        for raw in f:
            event = json.loads(raw)
            if event["kind"] != "output":
                continue
            try:
                printed = float((event.get("data") or {}).get("last", ""))
            except ValueError:
                continue  # parex's own lines ("[parex] ...")
            latencies.append(event["timestamp"] - printed)
    return latencies


def bench_latency(root: Path, address: str, lines: int) -> dict:
    tasks = [("ticker", 0.0, [])]
    ticker = f"for i in $(seq {lines}); do date +%s.%N; sleep 0.2; done"
    row: dict = {"lines": lines}
    for executor, (ws, _, result) in both(root, "latency", tasks, 1, lambda _: ticker, address).items():
        ms = sorted(1000 * x for x in output_latencies(ws, result["runId"]))
        if not ms:
            raise SystemExit(f"{executor}: no output event carried a timestamp line")
        row[f"{executor}_events"] = len(ms)
        row[f"{executor}_median_ms"] = round(statistics.median(ms), 1)
        row[f"{executor}_p90_ms"] = round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 1)
        row[f"{executor}_max_ms"] = round(ms[-1], 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--cpus", type=int, help="CPUs of each of the two Ray nodes, slots = 2 × this (default 4; 2 quick)")
    args = ap.parse_args()
    n, noop, lines = (30, 8, 8) if args.quick else (200, 200, 50)
    args.cpus = args.cpus or (2 if args.quick else 4)
    slots = 2 * args.cpus
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        os.environ["PAREX_RAY_CACHE"] = str(root / "node-cache")  # the nodes' run repositories, removed with d
        with LoopbackCluster(args.cpus) as cluster:
            figures = measure(root, cluster, args, n, noop, lines, slots)
    report(figures, slots)


def measure(root: Path, cluster: LoopbackCluster, args: argparse.Namespace, n: int, noop: int, lines: int,
            slots: int) -> dict:
    print(f"loopback Ray cluster: 2 nodes × {args.cpus} CPUs at {cluster.address}, up in {cluster.up_s:.1f} s",
          file=sys.stderr)
    dags = [bench_dag(root, cluster.address, n, slots, seed, 0.1, 1.0) for seed in args.seeds]
    no = bench_noop(root, cluster.address, noop, slots)
    lat = bench_latency(root, cluster.address, lines)
    return {"dag": dags, "noop": no, "latency": lat}


def report(figures: dict, slots: int) -> None:
    dags, no, lat = figures["dag"], figures["noop"], figures["latency"]
    print(f"\nrandom DAG of sleep tasks, worktree isolation, {slots} slots "
          f"(ratio = wall / max(critical path, work / {slots}))")
    print("| seed | tasks | bound | local | ray | local, engine only | ray, engine only | Ray nodes used |")
    print("|---|---|---|---|---|---|---|---|")
    for r in dags:
        print(f"| {r['seed']} | {r['tasks']} | {r['bound_s']} s | {r['local_ratio']}× | {r['ray_ratio']}× "
              f"| {r['local_engine_ratio']}× | {r['ray_engine_ratio']}× | {r['ray_nodes']} |")
    print(f"\n{no['tasks']} no-op tasks (`true`), worktree isolation, {slots} slots: wall time per task")
    print("| executor | whole process | engine, per task |")
    print("|---|---|---|")
    for executor in ("local", "ray"):
        print(f"| {executor} | {no[f'{executor}_s']} s | {no[f'{executor}_ms_per_task']} ms |")
    print(f"\noutput latency: printed line → engine `output` event ({lat['lines']} lines, one every 0.2 s)")
    print("| executor | events | median | p90 | max |")
    print("|---|---|---|---|---|")
    for executor in ("local", "ray"):
        print(f"| {executor} | {lat[f'{executor}_events']} | {lat[f'{executor}_median_ms']} ms "
              f"| {lat[f'{executor}_p90_ms']} ms | {lat[f'{executor}_max_ms']} ms |")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
