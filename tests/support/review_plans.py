"""What the review tests (engine and server) share: a git repository to run in, the review-mode plan, the
best-of scripts whose candidates rank 3, 2, 1, and the per-agent process spans agents write themselves."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True).stdout.strip()


def commit(ws: Path, message: str) -> None:
    git(ws, "add", "-A")
    git(ws, "-c", "user.name=dev", "-c", "user.email=d@x", "commit", "-q", "-m", message)


def journal(ws: Path, run_id: str) -> list[dict]:
    """A run's journal events, in order."""
    return [json.loads(line) for line in (ws / ".parex" / "runs" / run_id / "journal.jsonl").read_text().splitlines()]


def init_repo(ws: Path) -> Path:
    """A repository on `main` with one committed file (shared.txt: one, two, three); logs and the plan ignored."""
    git(ws, "init", "-q", "-b", "main")
    (ws / "shared.txt").write_text("one\ntwo\nthree\n")
    (ws / ".gitignore").write_text("*.log\nparex.toml\n")
    commit(ws, "base")
    return ws


# Review mode: good is accepted (after-good then runs from the merged state and merges by itself), bad is
# rejected (after-bad is skipped), again is retried with feedback; left and right conflict on shared.txt.
REVIEW_PLAN = """
[run]
isolation = "worktree"
merge = "review"

[[task]]
id = "good"
prompt = "echo good > good.txt"

[[task]]
id = "after-good"
prompt = "test -f good.txt && cp good.txt seen-by-dependent.txt"
depends_on = ["good"]
merge = "auto"

[[task]]
id = "bad"
prompt = "echo bad > bad.txt"

[[task]]
id = "after-bad"
prompt = "echo never > never.txt"
depends_on = ["bad"]

[[task]]
id = "again"
prompt = "echo \\"attempt $PAREX_ATTEMPT feedback: ${PAREX_FEEDBACK:-none}\\" >> again.txt"
"""

CONFLICT_TASKS = """
[[task]]
id = "left"
prompt = "sed -i 's/two/two left/' shared.txt"

[[task]]
id = "right"
prompt = "sed -i 's/two/two right/' shared.txt"
"""

# Best of three: candidate N works in .../<run>/best@N; 1 fails the check, 2 passes 3 tests, 3 passes 5.
BEST_OF_TASK = """
[[task]]
id = "best"
best_of = 3
check = "sh check.sh"
prompt = "echo $PAREX_TASK_ID > out.txt; sh make.sh"
"""
BEST_OF_RANKS = {"1": (False, 2, 3), "2": (True, 3, 2), "3": (True, 5, 1)}  # (checkPassed, testsPassed, rank)


def add_ranked_scripts(ws: Path) -> None:
    """Commit make.sh (a result that depends on the candidate's number) and check.sh (a pytest-like summary)."""
    (ws / "make.sh").write_text('case ${PWD##*@} in 1) echo fail;; 2) echo 3;; 3) echo 5;; esac > result\n')
    (ws / "check.sh").write_text('r=$(cat result); [ "$r" = fail ] && { echo "1 failed, 2 passed in 0.1s"; exit 1; }\n'
                                 'echo "===== $r passed in 0.01s ====="\n')
    commit(ws, "scripts")


def ranks(candidates: list[dict]) -> dict[str, tuple[bool | None, int | None, int | None]]:
    return {c["branch"].rsplit("@", 1)[1]: (c["checkPassed"], c["testsPassed"], c["rank"]) for c in candidates}


def marking(marks: Path, seconds: float = 0.05) -> str:
    """A shell command recording when it ran into `marks` as <$AGENT>.<its worktree>.start|end."""
    return (f"n=${{PWD##*/}}; date +%s.%N > {marks}/$AGENT.$n.start; sleep {seconds}; echo $n > $n.txt; "
            f"date +%s.%N > {marks}/$AGENT.$n.end")


def agent_spans(marks: Path) -> dict[str, list[tuple[float, float]]]:
    """Per agent, the (start, end) each of its processes wrote with `marking`."""
    out: dict[str, list[tuple[float, float]]] = {}
    for start in marks.glob("*.start"):
        agent = start.name.split(".", 1)[0]
        out.setdefault(agent, []).append((float(start.read_text()), float(start.with_suffix(".end").read_text())))
    return out


# A best-of task over agents a and b (each names itself in $AGENT); only b's work passes the check, so b wins.
B_WINS = """
[run]
isolation = "worktree"
merge = "review"

[agents.a]
kind = "shell"
env = { AGENT = "a" }

[agents.b]
kind = "shell"
env = { AGENT = "b" }

[[task]]
id = "pick"
agents = ["a", "b"]
check = "grep -q 'by b' out.txt"
prompt = 'echo "by $AGENT ${PAREX_FEEDBACK:-first}" >> out.txt'
"""
