"""Big and hostile loads against the real server: a long chain whose head fails, a client that stops reading,
the largest run a request may ask for. The server keeps answering, and timeouts fire on time."""

from __future__ import annotations

import json
import time

import pytest

from tests.lsp.raw import StdioServer, initialize, journal, note, req

CHAIN = 1000


def chain_plan(n: int) -> str:
    parts = ['[run]\nmax_concurrency = 4\n\n[[task]]\nid = "t0"\nprompt = "exit 1"\n',
             # a task beside the chain whose 1 s timeout must fire on time while the chain is skipped
             '[[task]]\nid = "slow"\nprompt = "sleep 30"\ntimeout = "1s"\n']
    parts += [f'[[task]]\nid = "t{i}"\nprompt = "true"\ndepends_on = ["t{i - 1}"]\n' for i in range(1, n)]
    return "\n".join(parts)


def ask_status(server: StdioServer, msg_id: int) -> float:
    start = time.monotonic()
    server.send(req(msg_id, "parex/status"))
    server.out.answer(msg_id)
    return time.monotonic() - start


def test_a_failing_head_of_a_long_chain_does_not_freeze_the_server(tmp_path):
    plan = tmp_path / "parex.toml"
    plan.write_text(chain_plan(CHAIN))
    server = StdioServer(tmp_path)
    try:
        server.send(initialize(1, tmp_path))
        server.out.answer(1)
        server.send(req(2, "parex/run", {"plan": {"uri": plan.as_uri()}, "detach": True}))
        run_id = server.out.answer(2)["result"]["runId"]
        latencies, msg_id = [], 10
        deadline = time.monotonic() + 30
        while not any(m.get("params", {}).get("kind") == "runFinished" for m in server.out.seen):
            assert time.monotonic() < deadline, "the run never finished"
            latencies.append(ask_status(server, msg_id))
            msg_id += 1
            time.sleep(0.05)
        events = journal(tmp_path, run_id)
        publishes = [m["params"] for m in server.out.seen if m.get("method") == "textDocument/publishDiagnostics"
                     and m["params"]["uri"] == plan.as_uri()]
        print(json.dumps({"statusMaxS": round(max(latencies), 3), "statusRequests": len(latencies),
                          "planPublishes": len(publishes),
                          "diagnosticsSent": sum(len(p["diagnostics"]) for p in publishes)}))
    finally:
        server.close()

    skipped = [e for e in events if e["kind"] == "skipped"]
    assert len(skipped) == CHAIN - 1
    [timed_out] = [e for e in events if e["taskId"] == "slow" and e["kind"] == "failed"]
    assert timed_out["data"]["code"] == "timeout"
    assert timed_out["data"]["durationMs"] < 2500, "the timeout fired late: the event loop was held"
    assert max(latencies) < 2.0  # it was 25-32 s when every skip republished the whole plan's diagnostics
    # every change reached the client, in a few publishes rather than one per skipped task
    assert len(publishes) < 20
    last = publishes[-1]["diagnostics"]
    assert len(last) == CHAIN + 1  # t0 failed, 999 skipped, slow timed out
    assert sum(1 for d in last if d["code"] == "dependency-failed") == CHAIN - 1
