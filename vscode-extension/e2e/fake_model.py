"""A local OpenAI-compatible model server for the end-to-end test (run by e2e.sh).

Serves tests/support/fake_openai.py on 127.0.0.1 with one scripted answer per `callN:` prompt of
the e2e workspace's answers.md, and the drafts of "Plan Parallel Tasks…": for PLAN_REQUEST a plan
with a dependency cycle and an unknown agent, then a valid one; for STUCK_REQUEST the bad plan every
round. Any other prompt gets an HTTP 400 (a permanent API error, so that call fails). Prints the base URL on stdout, then serves until SIGTERM or SIGINT.
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


# Keep in step with the planning checks in driver.mjs. A planning prompt holds the request (and the
# text of answers.md, sent as the active file): these keys come first, so that they win.
PLAN_REQUEST = "add rate limiting to the API"
STUCK_REQUEST = "a plan the model never gets right"

BAD_PLAN = """Here is the plan.

```toml
[[task]]
id = "limiter"
prompt = "echo writing the limiter"
depends_on = ["wire"]
files = ["api/limit.py"]

[[task]]
id = "wire"
prompt = "echo wiring it in"
agent = "wizard"
depends_on = ["limiter"]
files = ["api/app.py"]
```
"""

GOOD_PLAN = """```toml
[[task]]
id = "limiter"
prompt = "echo writing the limiter"
agent = "shell"
files = ["api/limit.py"]

[[task]]
id = "wire"
prompt = "echo wiring it in"
agent = "shell"
depends_on = ["limiter"]
files = ["api/app.py"]
```
"""


def main() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    script = by_prompt({
        PLAN_REQUEST: [text(BAD_PLAN), text(GOOD_PLAN)],
        STUCK_REQUEST: [text(BAD_PLAN)] * 3,
        **{prompt: [text(answer, usage=(12, 8))] for prompt, answer in ANSWERS.items()},
    })
    with FakeOpenAI(script) as srv:
        print(srv.base_url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
