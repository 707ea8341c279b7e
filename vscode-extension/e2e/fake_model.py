"""A local OpenAI-compatible model server for the end-to-end test (run by e2e.sh).

Serves tests/support/fake_openai.py on 127.0.0.1 with one scripted answer per `callN:` prompt of
the e2e workspace's answers.md; any other prompt gets an HTTP 400 (a permanent API error, so
that call fails). Prints the base URL on stdout, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.fake_openai import FakeOpenAI, by_prompt, text  # noqa: E402

# Keep in step with answers.md in e2e.sh and the checks in driver.mjs.
ANSWERS = {
    "summarise what parex.toml declares": "It declares two shell tasks, hello and broken.",
    "name two risks of running tasks in parallel": "Two tasks writing one file, and flaky tests.",
}


def main() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    script = by_prompt({prompt: [text(answer, usage=(12, 8))] for prompt, answer in ANSWERS.items()})
    with FakeOpenAI(script) as srv:
        print(srv.base_url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
