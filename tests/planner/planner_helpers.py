"""A workspace with a planning agent pointed at the local stand-in, and the two drafts the stand-in answers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import git

BAD_PLAN = '''\
Here is the plan.

```toml
[[task]]
id = "limiter"
prompt = "Write the rate limiter in api/limit.py"
agent = "coder"
depends_on = ["wire"]
files = ["api/limit.py"]

[[task]]
id = "wire"
prompt = "Use the limiter in api/app.py"
agent = "wizard"
depends_on = ["limiter"]
files = ["api/app.py"]
```
'''

GOOD_PLAN = '''\
```toml
[[task]]
id = "limiter"
prompt = "Write the rate limiter in api/limit.py"
agent = "coder"
files = ["api/limit.py"]
context = ["docs/architecture.md"]

[[task]]
id = "wire"
prompt = "Use the limiter in api/app.py"
agent = "coder"
depends_on = ["limiter"]
files = ["api/app.py"]
context = ["docs/architecture.md"]
```
'''


def planning_workspace(ws: Path, base_url: str) -> Path:
    """A git repository with two agents (a model for planning, a command agent for the tasks) and some files."""
    (ws / "parex.toml").write_text(textwrap.dedent(f'''\
        [run]
        plan_agent = "planner"
        plan_rounds = 3

        [agents.planner]
        kind = "openai"
        base_url = "{base_url}"
        model = "fake-planner"

        [agents.coder]
        command = ["echo", "{{prompt}}"]
        '''))
    (ws / "api").mkdir()
    (ws / "api" / "app.py").write_text("app = None\n")
    (ws / "docs").mkdir()
    (ws / "docs" / "architecture.md").write_text("# Architecture\nThe API lives in api/.\n")
    repo = git.Repo.init(ws)
    repo.index.add(["parex.toml", "api/app.py", "docs/architecture.md"])
    return ws
