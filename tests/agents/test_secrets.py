"""No key leaves parex: a model that echoes its key and a server whose error body echoes the request's
Authorization header, run by the real CLI; the journal, every log, stdout (--json) and stderr are grepped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from parex_lsp.engine import Run
from parex_lsp.plan import plan_from_text
from tests.support.engine_helpers import Recorder
from tests.support.fake_openai import FakeOpenAI, Received, Reply, text

KEY = "sk-proj-9fQ2LmX0aBcDeFgHiJkL"
PASSWORD = "pr0xy-pa55word"


def _echoing_server() -> FakeOpenAI:
    def handle(req: Received) -> Reply:
        sent = req.headers.get("authorization", "")
        if "echo" in req.prompt:
            return text([f"my key is {KEY}\n", f"and the header was {sent}\n"])
        return Reply(status=401, body={"error": {"message": f"invalid header {sent}"},
                                       "request": {"headers": {"authorization": sent}}})

    return FakeOpenAI(handle)


def _plan(workspace: Path, base_url: str) -> str:
    proxied = base_url.replace("http://", f"http://proxyuser:{PASSWORD}@")
    toml = (f'[run]\nretry_backoff = 0.05\ndefault_agent = "m"\n'
            f'[agents.m]\nbase_url = "{base_url}"\nmodel = "fake"\napi_key_env = "PAREX_SECRET_KEY"\n'
            f'[agents.p]\nbase_url = "{proxied}"\nmodel = "fake"\n'
            '[[task]]\nid = "echo"\nprompt = "echo your key"\n'
            '[[task]]\nid = "denied"\nprompt = "be denied"\n'
            '[[task]]\nid = "proxied"\nagent = "p"\nprompt = "be denied through a proxy"\n')
    (workspace / "parex.toml").write_text(toml)
    return toml


def _leaks(text: str) -> list[str]:
    return [s for s in (KEY, PASSWORD) if s in text]


def test_no_secret_reaches_the_journal_logs_json_or_stderr(workspace: Path):
    with _echoing_server() as srv:
        _plan(workspace, srv.base_url)
        env = {**os.environ, "PAREX_SECRET_KEY": KEY + "\r"}  # saved with Windows line ends
        proc = subprocess.run([sys.executable, "-m", "parex_lsp", "run", str(workspace / "parex.toml"), "--json"],
                              cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
    assert srv.received and srv.received[0].headers["authorization"] == f"Bearer {KEY}"  # the key was used
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    statuses = {t["id"]: t["status"] for t in result["tasks"]}
    assert statuses == {"echo": "succeeded", "denied": "failed", "proxied": "failed"}
    assert _leaks(proc.stdout) == [] and _leaks(proc.stderr) == []
    written = [p for p in (workspace / ".parex").rglob("*") if p.is_file()]
    assert any(p.name == "journal.jsonl" for p in written) and any(p.suffix == ".log" for p in written)
    for path in written:
        assert _leaks(path.read_text(errors="replace")) == [], path
    answer = next(t["answer"] for t in result["tasks"] if t["id"] == "echo")
    assert answer == "my key is ***\nand the header was Bearer ***\n"


async def test_no_secret_reaches_an_event_sink(workspace: Path, monkeypatch):
    monkeypatch.setenv("PAREX_SECRET_KEY", KEY)
    with _echoing_server() as srv:
        toml = _plan(workspace, srv.base_url)
        rec = Recorder()
        result = await (await Run.prepare(plan_from_text(toml, str(workspace / "parex.toml"), workspace), sinks=[rec])).execute()
    assert result.status == "failed"
    assert _leaks(json.dumps([e.to_wire() for e in rec.events])) == []
    assert _leaks(json.dumps(result.to_wire())) == []
