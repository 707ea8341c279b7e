"""Quota benchmark: a 50-call fan-out against the local OpenAI-compatible stand-in limited to N requests a
window (429 with Retry-After beyond it), with the shared cooldown and adaptive concurrency, and without
them (`rate_limit_wait_max = 0`: each task retries on its own, honouring Retry-After).

    .venv/bin/python tests/bench/bench_quota.py            # 50 calls, 10 requests a second
    .venv/bin/python tests/bench/bench_quota.py --calls 20 --rounds 1

Prints, for each mode: the 429s the stand-in answered, requests sent, tasks failed (and why), wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from parex_lsp.engine import Run  # noqa: E402
from parex_lsp.plan import plan_from_text  # noqa: E402
from tests.support.fake_openai import FakeOpenAI, RateLimit, text  # noqa: E402


def plan_text(base_url: str, calls: int, concurrency: int, cooldown: bool, retries: int) -> str:
    wait = "" if cooldown else "rate_limit_wait_max = 0\n"
    tasks = "".join(f'[[task]]\nid = "call{i}"\nprompt = "question {i}"\n' for i in range(calls))
    return (f'[run]\ndefault_agent = "api"\nmax_concurrency = {concurrency}\nretries = {retries}\n'
            f'retry_backoff = 0.2\nretry_backoff_max = 5\n{wait}'
            f'[agents.api]\nbase_url = "{base_url}"\nmodel = "fake"\n{tasks}')


async def one(calls: int, concurrency: int, limit: RateLimit, cooldown: bool, retries: int,
              latency: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, \
            FakeOpenAI(lambda req: text(f"answer to {req.prompt}", delay=latency / 8), limit=limit) as srv:
        ws = Path(tmp)
        toml = plan_text(srv.base_url, calls, concurrency, cooldown, retries)
        (ws / "parex.toml").write_text(toml)
        run = await Run.prepare(plan_from_text(toml, str(ws / "parex.toml"), ws))
        started = time.perf_counter()
        result = await run.execute()
        wall = time.perf_counter() - started
    failed = [t for t in result.tasks if t.status != "succeeded"]
    codes: dict[str, int] = {}
    for t in failed:
        codes[t.code or "?"] = codes.get(t.code or "?", 0) + 1
    return {"429s": srv.refused, "requests": len(srv.received), "failed": len(failed), "codes": codes,
            "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--limit", type=int, default=10, help="requests a window")
    ap.add_argument("--window", type=float, default=1.0, help="seconds")
    ap.add_argument("--latency", type=float, default=0.3, help="seconds one streamed answer takes")
    ap.add_argument("--retries", type=int, default=8, help="retries for the mode without cooldown")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    limit = RateLimit(args.limit, args.window)
    print(f"{args.calls} calls, max_concurrency {args.concurrency}, limit {args.limit} requests / {args.window:g}s, "
          f"answers take {args.latency:g}s; lower bound on wall time "
          f"{(args.calls / args.limit - 1) * args.window + args.latency:.1f}s")
    for cooldown in (True, False):
        name = "shared cooldown + AIMD" if cooldown else "per-task retries (cooldown off)"
        for r in range(args.rounds):
            got = anyio.run(one, args.calls, args.concurrency, limit, cooldown,
                            0 if cooldown else args.retries, args.latency)
            print(f"{name:34} round {r + 1}: {got['429s']:4} 429s, {got['requests']:4} requests, "
                  f"{got['failed']:3} failed {got['codes'] or ''}, wall {got['wall']:.1f}s")


if __name__ == "__main__":
    main()
