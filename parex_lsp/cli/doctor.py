"""`parex-lsp doctor [PLAN]`: whether a plan can run here, one line per check, and what to fix.

Checks: Ray and its cluster's address when the plan runs on Ray; each agent the plan's tasks use (its executable is found and answers `--version`; a model agent's
key variable is set — never printed — and its endpoint answers `GET {base_url}/models`), the git state worktree
isolation needs (a repository, a commit, a branch, no uncommitted changes to tracked files) and the lock
registry (its lock is free within 1 s, no owner file of a process that is gone). Nothing is changed.
Exit 0 when every check passes, 1 when one fails, 2 when the plan itself is invalid. `--json` prints one
object instead (`{ok, workspace, checks: [{name, ok, detail, required}], problems}`): what the editors show
(Neovim's `:checkhealth parex`, VS Code's "Parex: Check Setup").
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from parex_lsp import state
from parex_lsp.executors.address import host_port, unreachable
from parex_lsp.plan import Plan
from parex_lsp.plan.model import AgentSpec
from parex_lsp.redact import redact_url

REGISTRY_WAIT = 1.0  # the registry lock is held for microseconds: a second means a stuck process


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found; for a failure, what is wrong and how to fix it
    counts: bool = True  # a failure that does not fail the doctor (e.g. git when worktrees are not used)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "required": self.counts}

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.counts else "warn")
        return f"{mark}  {self.name}: {self.detail}"


def doctor(plan: Plan | None, workspace: Path, timeout: float, as_json: bool = False) -> int:
    checks: list[Check] = []
    if plan is None:
        checks.append(Check("plan", True, f"no plan in {workspace}: agents not checked (name one: doctor PLAN)"))
    for spec in _agents(plan):
        checks.extend(agent_checks(spec, workspace, timeout))
    if plan is not None and plan.run.executor == "ray":
        checks.extend(ray_checks(plan.run.ray_address, timeout))
    worktrees = plan is not None and plan.run.isolation == "worktree"
    checks.extend(git_checks(workspace, needed=worktrees, allow_dirty=plan is not None and plan.run.allow_dirty))
    checks.extend(lock_checks(workspace))
    failed = [c for c in checks if not c.ok and c.counts]
    if as_json:
        print(json.dumps({"ok": not failed, "workspace": str(workspace), "checks": [c.to_json() for c in checks],
                          "problems": []}))
        return 1 if failed else 0
    for c in checks:
        print(c.line(), flush=True)
    print(f"{len(failed)} problem(s) to fix" if failed else "everything needed is in place")
    return 1 if failed else 0


def _agents(plan: Plan | None) -> Iterator[AgentSpec]:
    """The agents the plan's tasks use, each once, in the order tasks name them."""
    if plan is None:
        return
    seen: set[str] = set()
    for task in plan.tasks:
        for name in task.candidate_agents(plan.run.default_agent):
            if name not in seen and name in plan.agents:
                seen.add(name)
                yield plan.agents[name]


def agent_checks(spec: AgentSpec, workspace: Path, timeout: float) -> list[Check]:
    if spec.kind == "openai":
        return [_key_check(spec), _endpoint_check(spec, timeout)]
    if spec.kind == "shell":
        sh = shutil.which("sh")
        return [Check(f"agent {spec.name}", sh is not None, f"runs prompts with {sh}" if sh else
                      "no `sh` on PATH: install a POSIX shell")]
    return [_executable_check(spec, workspace, timeout)]


def _executable_check(spec: AgentSpec, workspace: Path, timeout: float) -> Check:
    name = f"agent {spec.name}"
    if not spec.command:
        return Check(name, False, f"no command: set [agents.{spec.name}] command")
    exe = spec.command[0]
    env = {**os.environ, **spec.env}
    found = (str(workspace / exe) if os.access(workspace / exe, os.X_OK) else None) if "/" in exe \
        else shutil.which(exe, path=env.get("PATH"))
    if found is None:
        return Check(name, False, f"`{exe}` not found on PATH: install it, or set [agents.{spec.name}] command")
    try:
        code, said = _ask_version(found, workspace, env, timeout)
    except subprocess.TimeoutExpired:
        return Check(name, False, f"{found} did not answer `--version` within {timeout:g}s: is it installed right "
                     "(does it wait for a login or a prompt)?")
    except OSError as e:
        return Check(name, False, f"{found} cannot be run: {e.strerror or e}")
    if code != 0:
        return Check(name, False, f"{found} --version exited {code}{f': {said}' if said else ''}")
    return Check(name, True, f"{found} ({said or 'answers --version'})")


def _ask_version(exe: str, cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """`exe --version` in a session of its own, so a timeout ends whatever it started too."""
    proc = subprocess.Popen([exe, "--version"], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    first = next((ln.strip() for ln in out.decode(errors="replace").splitlines() if ln.strip()), "")
    return proc.returncode, first[:120]


def _key(spec: AgentSpec) -> str | None:
    if not spec.api_key_env:
        return None
    raw = spec.env.get(spec.api_key_env) if spec.api_key_env in spec.env else os.environ.get(spec.api_key_env)
    return (raw or "").strip() or None


def _key_check(spec: AgentSpec) -> Check:
    name = f"agent {spec.name} key"
    if not spec.api_key_env:
        return Check(name, True, "none needed (no api_key_env)")
    if _key(spec) is None:
        return Check(name, False, f"{spec.api_key_env} is not set or empty: export it (it holds the API key)")
    return Check(name, True, f"{spec.api_key_env} is set")


def _endpoint_check(spec: AgentSpec, timeout: float) -> Check:
    name = f"agent {spec.name} endpoint"
    if not spec.base_url:
        return Check(name, False, f"no base_url: set [agents.{spec.name}] base_url")
    url = spec.base_url.rstrip("/") + "/models"
    shown = redact_url(url)
    key = _key(spec)
    try:
        answer = httpx.get(url, timeout=timeout, headers={"Authorization": f"Bearer {key}"} if key else {})
    except httpx.TimeoutException:
        return Check(name, False, f"GET {shown} did not answer within {timeout:g}s")
    except httpx.HTTPError as e:
        return Check(name, False, f"GET {shown} failed ({type(e).__name__}): is the server running at "
                     f"{redact_url(spec.base_url)}?")
    if answer.status_code in (401, 403):
        return Check(name, False, f"GET {shown} refused the key ({answer.status_code}): check "
                     f"{spec.api_key_env or 'api_key_env'}")
    if not answer.is_success:
        return Check(name, False, f"GET {shown} answered {answer.status_code}: check [agents.{spec.name}] base_url")
    return Check(name, True, f"GET {shown} answered {answer.status_code}")


def ray_checks(address: str, timeout: float) -> list[Check]:
    """executor = "ray": Ray is installed here, and something answers at the cluster's address (Ray itself is
    not started or imported: connecting is the run's job)."""
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return [Check("ray", False, 'Ray is not installed here: pip install "parex-lsp[ray]"')]
    checks = [Check("ray", True, f"Ray {importlib.metadata.version('ray')}")]
    name = "ray cluster"
    target = address
    if address == "auto":
        current = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
        target = os.environ.get("RAY_ADDRESS") or (current.read_text().strip() if current.is_file() else "")
        if not target:
            return [*checks, Check(name, False, "ray_address = \"auto\" but no cluster was started on this machine "
                                   "(ray start --head) and RAY_ADDRESS is not set: start one, or set [run] "
                                   "ray_address")]
    if host_port(target) is None:
        return [*checks, Check(name, True, f"{target} (not checked: no port)")]
    why = unreachable(target, timeout)
    if why is not None:
        return [*checks, Check(name, False, f"{why}: is the cluster up (ray status), and its port open to this "
                               "machine?")]
    return [*checks, Check(name, True, f"{target} answers")]


def git_checks(workspace: Path, needed: bool, allow_dirty: bool) -> list[Check]:
    """What worktree isolation needs; when the plan does not use it, a failure is only a warning."""
    import git

    def check(name: str, ok: bool, detail: str) -> Check:
        return Check(name, ok, detail if ok or needed else f"{detail} (only worktree isolation needs it)", needed)

    try:
        repo = git.Repo(workspace, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return [check("git repository", False, f"{workspace} is not in a git repository: git init, then commit")]
    checks = [check("git repository", True, str(repo.working_tree_dir))]
    if not repo.head.is_valid():
        return [*checks, check("git commit", False, "the repository has no commit yet: commit once")]
    checks.append(check("git commit", True, repo.head.commit.hexsha[:12]))
    if repo.head.is_detached:
        checks.append(check("git branch", False, "HEAD is detached: git switch BRANCH (merges go to a branch)"))
    else:
        checks.append(check("git branch", True, repo.active_branch.name))
    dirty = sorted({str(d.a_path) for d in [*repo.index.diff(None), *repo.index.diff("HEAD")]})
    if dirty and not allow_dirty:
        more = f" and {len(dirty) - 3} more" if len(dirty) > 3 else ""
        checks.append(check("git clean", False, f"uncommitted changes to tracked files ({', '.join(dirty[:3])}"
                            f"{more}): commit or stash them, or set [run] allow_dirty = true"))
    else:
        checks.append(check("git clean", True, "allow_dirty" if dirty else "no uncommitted changes to tracked files"))
    return checks


def lock_checks(workspace: Path) -> list[Check]:
    from filelock import FileLock, Timeout

    from parex_lsp.isolation.registry import Registry

    folder = state.locks_dir(workspace)
    if not folder.is_dir():
        return [Check("lock registry", True, "none yet (made by the first run)")]
    try:
        with FileLock(folder / "registry.lock", timeout=REGISTRY_WAIT):
            registry = Registry(workspace)
            now = time.time()
            entries = registry.read()
            stale = [(path, owner) for path, owner, _keys, start in entries
                     if owner.pid != os.getpid() and registry.is_stale(owner, start, now, path)]
    except Timeout:
        return [Check("lock registry", False, f"{folder / 'registry.lock'} stayed locked for {REGISTRY_WAIT:g}s: "
                      "a stuck parex process holds it (find it: fuser -v that file)")]
    if stale:
        names = ", ".join(f"{p.name} ({o})" for p, o in stale[:3])
        return [Check("lock registry", False, f"{len(stale)} stale owner file(s) of processes that are gone: {names}; "
                      f"the next run that needs their files breaks them, or delete them from {folder}")]
    return [Check("lock registry", True, f"free; {len(entries)} live owner(s)")]


def doctor_command(plan_arg: str | None, timeout: float, load: Callable[[str | None, str | None], Plan],
                   as_json: bool = False) -> int:
    """The plan as `run` would load it (`load`); with no PLAN and no plan here, the current folder's git and
    locks only."""
    from parex_lsp.plan import PlanError

    try:
        plan: Plan | None = load(plan_arg, None)
    except PlanError as e:
        if plan_arg is None and all(p.code == "no-plan" for p in e.problems):
            plan = None
        elif as_json:  # the plan's problems, each with its place, and no checks
            print(json.dumps({"ok": False, "workspace": str(Path.cwd()), "checks": [],
                              "problems": [problem.format() for problem in e.problems]}))
            return 2
        else:
            for problem in e.problems:
                print(problem.format(), file=sys.stderr)
            print(f"parex: the plan has {len(e.problems)} problem(s)", file=sys.stderr)
            return 2
    return doctor(plan, plan.workspace if plan is not None else Path.cwd(), timeout, as_json)
