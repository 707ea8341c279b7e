"""Model-agent benchmark: parex against a bare httpx reader of the same streams, in the same run.

    .venv/bin/python tests/bench/bench_models.py            # 5 MB answer, 50-call fan-out
    .venv/bin/python tests/bench/bench_models.py --quick    # 1 MB answer, 20 calls

1. A long answer: 5 MB streamed in 64-character deltas (lines of 80 characters) by the local stand-in
   server. Each reader runs in a child process of its own, so its peak RSS is its own: a bare httpx
   reader (parse each event, keep the deltas, join once) and a whole parex run of one task (engine,
   journal, task log). Reported: wall time (ratio to the bare reader), peak RSS growth over the
   process's RSS before the request, and what the journal and the log hold, against the answer's size.
2. A fan-out: N calls to a server (in a process of its own) that waits 1 s before answering. Reported:
   how long after the run started the N-th request arrived, and the run's wall time; the same N
   requests from one bare httpx client for comparison.
RSS growth is measured after a warm-up run with a small answer, so imports are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.fake_openai import FakeOpenAI, Reply, chunk, sse_body, text  # noqa: E402


def long_answer(size: int, delta: int = 64, line: int = 80) -> tuple[str, bytes]:
    body = "".join(("x" * (line - 1) + "\n") for _ in range(size // line + 1))[:size]
    events: list = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": body[i:i + delta]}) for i in range(0, len(body), delta)]
    events += [chunk({}, "stop"), {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": size // 4}},
               "[DONE]"]
    return body, sse_body(events)


def proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(field + ":"))


# -- child processes: one reader each ------------------------------------------------------------------

async def bare_reader(url: str, prompt: str = "write a lot") -> int:
    import httpx

    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    async with httpx.AsyncClient(timeout=60) as client:
        async with client.stream("POST", url + "/chat/completions", json=body) as r:
            parts = []
            async for line in r.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for c in json.loads(line[6:])["choices"]:
                        if c["delta"].get("content"):
                            parts.append(c["delta"]["content"])
    return len("".join(parts))


async def parex_run(url: str, ws: Path, prompt: str = "write a lot") -> int:
    from parex_lsp.engine import Run
    from parex_lsp.plan import plan_from_text

    task = "long" if prompt == "write a lot" else "warm"
    toml = (f'[run]\nretries = 0\n[agents.m]\nbase_url = "{url}"\nmodel = "m"\n'
            f'[[task]]\nid = "{task}"\nagent = "m"\nprompt = "{prompt}"\n')
    result = await Run(plan_from_text(toml, str(ws / "parex.toml"), ws)).execute()
    assert result.status == "succeeded", result.to_wire()
    return len(result.tasks[0].answer or "")


def child(kind: str, url: str, ws: str) -> None:
    import anyio

    # A warm-up run with a small answer first: imports and first-use allocations are not the answer's cost.
    if kind == "bare":
        anyio.run(bare_reader, url, "warm up")
    else:
        warm = Path(ws) / "warm"
        warm.mkdir()
        anyio.run(parex_run, url, warm, "warm up")
    before = proc_status_kb("VmRSS")
    started = time.perf_counter()
    n = anyio.run(bare_reader, url) if kind == "bare" else anyio.run(parex_run, url, Path(ws))
    wall = time.perf_counter() - started
    peak = proc_status_kb("VmHWM")  # not ru_maxrss: Linux carries that over exec from the forking parent
    print(json.dumps({"wall": wall, "chars": n, "rss_growth_kb": peak - before}))


def run_child(kind: str, url: str, ws: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, url, str(ws)], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_long_answer(size: int) -> dict:
    body, raw = long_answer(size)
    _, small = long_answer(4096)
    with FakeOpenAI(lambda req: Reply(raw=small if "warm" in req.prompt else raw)) as srv, \
            tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        bare = run_child("bare", srv.base_url, ws)
        parex = run_child("parex", srv.base_url, ws)
        run_dir = next((ws / ".parex" / "runs").iterdir())
        journal = (run_dir / "journal.jsonl").stat().st_size
        log = (run_dir / "long.log").stat().st_size
    assert bare["chars"] == parex["chars"] == len(body)
    return {"answer_bytes": len(body), "deltas": len(body) // 64, "bare_s": round(bare["wall"], 2),
            "parex_s": round(parex["wall"], 2), "ratio": round(parex["wall"] / bare["wall"], 2),
            "bare_rss_growth_x": round(bare["rss_growth_kb"] * 1024 / len(body), 2),
            "parex_rss_growth_x": round(parex["rss_growth_kb"] * 1024 / len(body), 2),
            "journal_x": round(journal / len(body), 2), "log_x": round(log / len(body), 2),
            "stored_x": round((journal + log) / len(body), 2)}


# -- fan-out ---------------------------------------------------------------------------------------

async def fan_out_parex(url: str, n: int, ws: Path) -> tuple[float, float]:
    from parex_lsp.engine import Run
    from parex_lsp.plan import plan_from_text

    tasks = "".join(f'[[task]]\nid = "c{i}"\nagent = "m"\nprompt = "call {i}"\n' for i in range(n))
    toml = f'[run]\nmax_concurrency = {n}\nretries = 0\n[agents.m]\nbase_url = "{url}"\nmodel = "m"\n{tasks}'
    plan = plan_from_text(toml, str(ws / "parex.toml"), ws)
    started = time.monotonic()
    result = await Run(plan).execute()
    assert result.status == "succeeded", result.to_wire()
    return started, time.monotonic() - started


async def fan_out_bare(url: str, n: int) -> tuple[float, float]:
    import httpx

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with client.stream("POST", url + "/chat/completions", json={"messages": [
                {"role": "user", "content": f"call {i}"}], "stream": True}) as r:
            async for _ in r.aiter_lines():
                pass

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=None)) as client:
        await asyncio.gather(*(one(client, i) for i in range(n)))
    return started, time.monotonic() - started


def serve_slowly() -> None:
    """The fan-out's server, in a process of its own so that it does not share the client's GIL: prints its
    URL, serves until a line arrives on stdin, then prints the arrival times (CLOCK_MONOTONIC, system-wide)."""
    with FakeOpenAI(lambda req: Reply(events=text("ok", delay=0).events, latency=1.0, delay=0)) as srv:
        print(srv.base_url, flush=True)
        sys.stdin.readline()
        print(json.dumps([r.at for r in srv.received]), flush=True)


def bench_fan_out(n: int) -> dict:
    out = {}
    for name in ("bare", "parex"):
        server = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, cwd=ROOT)
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            coro = fan_out_bare(url, n) if name == "bare" else fan_out_parex(url, n, Path(tmp))
            started, wall = asyncio.run(coro)
        arrivals, _ = server.communicate("report\n", timeout=30)
        arrivals = sorted(json.loads(arrivals))
        assert len(arrivals) == n
        out[name] = {"all_in_flight_ms": round((arrivals[-1] - started) * 1000, 1), "wall_s": round(wall, 3)}
    return {"calls": n, **out}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve_slowly()
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    size, calls = (1_000_000, 20) if args.quick else (5_000_000, 50)
    print(json.dumps({"long_answer": bench_long_answer(size)}))
    print(json.dumps({"fan_out": bench_fan_out(calls)}))


if __name__ == "__main__":
    main()
