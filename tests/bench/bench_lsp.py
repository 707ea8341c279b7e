"""Benchmark of the language server over stdio, as an editor would drive it.

1. latency: time from sending `parex/run` to the first `$/progress` begin (median of N runs), with a
   token the server must create first (`window/workDoneProgress/create`) and with the client's own
   `workDoneToken`;
2. flood: 20 tasks each printing 10,000 lines, one write a line, as fast as they can ("burst") and
   spread over a few seconds ("paced", so that coalescing has time to show): `$/progress` reports the
   client gets per task per second, `parex/taskEvent` traffic, how fast `parex/status` answers
   meanwhile, and the server's peak RSS (VmHWM).

    python tests/bench/bench_lsp.py [--runs 30] [--tasks 20] [--lines 10000] [--seconds 5] [--server CMD...]

Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

DEFAULT_SERVER = [sys.executable, "-m", "parex_lsp", "--stdio"]


class Client:
    """A bare JSON-RPC client: stamps every message on arrival, answers the server's requests."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self._next = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.progress: dict[Any, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.event_bytes = 0
        self.first_begin: dict[Any, float] = {}
        self._reader = asyncio.ensure_future(self._read())

    def _send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def request(self, method: str, params: Any) -> Any:
        self._next += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[self._next] = fut
        self._send({"jsonrpc": "2.0", "id": self._next, "method": method, "params": params})
        return await fut

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = 0
            while (line := await out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                return
            body = await out.readexactly(length)
            now = time.perf_counter()
            msg = json.loads(body)
            method = msg.get("method")
            if method == "$/progress":
                token, value = msg["params"]["token"], msg["params"]["value"]
                self.progress[token].append((now, value))
                if value["kind"] == "begin":
                    self.first_begin.setdefault(token, now)
            elif method == "parex/taskEvent":
                self.events.append((now, msg["params"]))
                self.event_bytes += length
            elif method is not None and "id" in msg:  # a request from the server
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif "id" in msg and msg["id"] in self._pending:
                fut = self._pending.pop(msg["id"])
                if "error" in msg:
                    fut.set_exception(RuntimeError(msg["error"]))
                else:
                    fut.set_result(msg.get("result"))


async def start(server: list[str], workspace: Path) -> Client:
    proc = await asyncio.create_subprocess_exec(*server, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, limit=1 << 24)
    client = Client(proc)
    await client.request("initialize", {
        "processId": os.getpid(), "rootUri": workspace.as_uri(),
        "capabilities": {"window": {"workDoneProgress": True}}})
    client.notify("initialized", {})
    return client


async def stop(client: Client) -> None:
    await client.request("shutdown", None)
    client.notify("exit", None)
    await client.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def latency(server: list[str], runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        plan = ws / "parex.toml"
        plan.write_text('[[task]]\nid = "t"\nprompt = "true"\n')
        client = await start(server, ws)
        created, given = [], []
        for i in range(runs):
            for own_token in (False, True):
                params: dict[str, Any] = {"plan": {"uri": plan.as_uri()}}
                if own_token:
                    params["workDoneToken"] = f"bench-{i}"
                sent = time.perf_counter()
                result = await client.request("parex/run", params)
                token = params.get("workDoneToken") or f"parex/{result['runId']}"
                (given if own_token else created).append((client.first_begin[token] - sent) * 1000)
        await stop(client)
    return {"created_token_median_ms": statistics.median(created), "created_token_p90_ms": _p90(created),
            "client_token_median_ms": statistics.median(given), "client_token_p90_ms": _p90(given)}


def _p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


FLOOD = """\
import sys, time
lines, seconds = int(sys.argv[1]), float(sys.argv[2])
for i in range(lines):
    sys.stdout.write(f"line {i} of a flood of output\\n")
    sys.stdout.flush()
    if seconds and i % 10 == 9:
        time.sleep(seconds * 10 / lines)
"""


async def flood(server: list[str], tasks: int, lines: int, seconds: float) -> dict[str, float]:
    """`tasks` tasks each printing `lines` lines, one write each: at full speed (seconds=0) or spread over `seconds`."""
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "flood.py").write_text(FLOOD)
        body = [f"[run]\nmax_concurrency = {tasks}\n"]
        command = f"{shlex.quote(sys.executable)} flood.py {lines} {seconds}"
        for n in range(tasks):
            body.append(f'[[task]]\nid = "flood{n}"\nprompt = {json.dumps(command)}\n')
        plan = ws / "parex.toml"
        plan.write_text("\n".join(body))
        client = await start(server, ws)
        cpu0 = cpu_seconds(client.proc.pid)
        sent = time.perf_counter()
        running = asyncio.ensure_future(client.request("parex/run", {"plan": {"uri": plan.as_uri()}}))
        status_ms, status_at = [], []
        while not running.done():  # how long parex/status takes while the flood goes on
            t0 = time.perf_counter()
            await client.request("parex/status", {})
            status_ms.append((time.perf_counter() - t0) * 1000)
            status_at.append(t0 - sent)
            await asyncio.sleep(0.05)
        result = await running
        wall = time.perf_counter() - sent
        rss = peak_rss_mb(client.proc.pid)
        cpu = cpu_seconds(client.proc.pid) - cpu0
        window_max, rates, gaps, counts = [], [], [], []
        for n in range(tasks):
            seq = client.progress[f"parex/{result['runId']}/flood{n}"]
            stamps = [t for t, v in seq if v["kind"] == "report"]
            counts.append(len(stamps))
            # over the task's life (begin to end), counted as one second when it was shorter than that
            rates.append(len(stamps) / max(seq[-1][0] - seq[0][0], 1.0))
            window_max.append(max((sum(1 for u in stamps if t <= u < t + 1.0) for t in stamps), default=0))
            gaps += [b - a for a, b in zip(stamps[:-1], stamps[1:-1], strict=False)]  # the last one is the flush before end
        outputs = [e for _, e in client.events if e["kind"] == "output"]
        received = sum(e["data"]["text"].count("\n") for e in outputs)
        await stop(client)
    return {"status": result["status"], "wall_s": wall, "reports_per_task_per_s_max": max(rates),
            "reports_per_task_in_1s_max": max(window_max),
            "reports_per_task_max": max(counts), "min_report_gap_ms": min(gaps) * 1000 if gaps else None,
            "output_events": len(outputs), "output_lines": received, "event_mb": client.event_bytes / 2**20,
            "status_median_ms": statistics.median(status_ms) if status_ms else None,
            "status_max_ms": max(status_ms) if status_ms else None,
            "status_max_at_s": status_at[status_ms.index(max(status_ms))] if status_ms else None,
            "status_samples": len(status_ms), "peak_rss_mb": rss, "server_cpu_s": cpu}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=5.0, help="how long the paced flood spreads its lines")
    ap.add_argument("--server", nargs=argparse.REMAINDER, default=DEFAULT_SERVER)
    args = ap.parse_args()
    lat = await latency(args.server, args.runs)
    burst = await flood(args.server, args.tasks, args.lines, 0.0)
    paced = await flood(args.server, args.tasks, args.lines, args.seconds)
    rows = [
        (f"parex/run → first $/progress begin, server-created token (median of {args.runs})",
         f"{lat['created_token_median_ms']:.1f} ms", "< 50 ms"),
        ("  same, p90", f"{lat['created_token_p90_ms']:.1f} ms", ""),
        (f"parex/run → first $/progress begin, client workDoneToken (median of {args.runs})",
         f"{lat['client_token_median_ms']:.1f} ms", "< 50 ms"),
    ]
    for name, fl in ((f"burst: {args.tasks} tasks × {args.lines} lines at full speed", burst),
                     (f"paced: {args.tasks} tasks × {args.lines} lines over ~{args.seconds:g} s", paced)):
        gap = fl["min_report_gap_ms"]
        rows += [
            (name, "", ""),
            ("  $/progress reports per task per second (max over tasks)",
             f"{fl['reports_per_task_per_s_max']:.1f}", "≤ 10"),
            ("  $/progress reports per task in any 1 s window (max)", f"{fl['reports_per_task_in_1s_max']}", ""),
            ("  shortest gap between two reports of a task, on arrival", "-" if gap is None else f"{gap:.0f} ms",
             "(sent ≥ 100 ms apart)"),
            ("  parex/taskEvent output notifications", f"{fl['output_events']} ({fl['event_mb']:.1f} MB)", ""),
            ("  output lines delivered in taskEvents", f"{fl['output_lines']} of {args.tasks * args.lines}", "all"),
            ("  parex/status answer while flooding (median / max)",
             f"{fl['status_median_ms']:.1f} / {fl['status_max_ms']:.1f} ms", ""),
            ("  wall time of the run / server CPU time in it", f"{fl['wall_s']:.2f} s / {fl['server_cpu_s']:.2f} s", ""),
            ("  server peak RSS (VmHWM)", f"{fl['peak_rss_mb']:.0f} MB", "< 200 MB"),
        ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>18}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>18}  {target}")
    print(json.dumps({"latency": lat, "burst": burst, "paced": paced, "tasks": args.tasks, "lines": args.lines,
                      "seconds": args.seconds, "runs": args.runs}))


if __name__ == "__main__":
    asyncio.run(main())
