"""`parex-lsp`: the language server (`--stdio`, `--tcp`), and the same engine headless (`run`, `status`).

Exit codes of `run`: 0 every task succeeded; 1 some failed, were skipped or rejected (fail_fast included); 2 the
plan or the options are invalid, or the plan is running already; 3 the run ended with tasks waiting for review
(`parex-lsp review RUN`); 130 cancelled by Ctrl-C, 128+N by signal N (SIGTERM 143, SIGHUP 129)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from parex_lsp import __version__

if TYPE_CHECKING:
    from parex_lsp.plan.model import Plan

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 130
EXIT_REVIEW = 3  # ended with tasks left ready for review
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_CODES_HELP = ("exit codes: 0 all tasks succeeded; 1 some failed, were skipped or rejected; 2 invalid plan or "
                   "options, or the plan is running already; 3 tasks wait for review (parex-lsp review RUN); "
                   "130 cancelled (Ctrl-C); 128+N stopped by signal N")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _ids(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="parex-lsp", description="Run many agent and shell tasks concurrently: "
                                "a language server for editors, and a headless runner.", epilog=EXIT_CODES_HELP)
    p.add_argument("--version", action="version", version=f"parex-lsp {__version__}")
    p.add_argument("--stdio", action="store_true", help="serve LSP on stdin/stdout (the default)")
    p.add_argument("--tcp", action="store_true", help="serve LSP on a TCP port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2087)
    p.add_argument("--log-file", help="write the server's log here")
    sub = p.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a plan in the terminal", epilog=EXIT_CODES_HELP)
    run.add_argument("plan", nargs="?", help="a parex.toml (or *.parex.toml), a folder holding one, or any "
                     "document whose `callN:` lines are the tasks (default: the plan in the current folder)")
    run.add_argument("--max-concurrency", type=_positive, metavar="N")
    run.add_argument("--isolation", choices=["none", "worktree"])
    run.add_argument("--only", type=_ids, action="extend", metavar="ID[,ID]",
                     help="run these tasks only (repeat, or separate ids with commas)")
    run.add_argument("--resume", metavar="RUN_ID|last", help="skip tasks that succeeded in that run")
    run.add_argument("--call-agent", metavar="AGENT",
                     help='the agent for callN: prompts ("shell" runs them as shell commands)')
    run.add_argument("--fail-fast", action="store_true", default=None, help="cancel the rest at the first failure")
    run.add_argument("--review", action="store_true", help='merge = "review": keep each succeeded task on its '
                     "branch for a reviewer (asked task by task on a TTY; else `parex-lsp review RUN` later)")
    run.add_argument("--json", action="store_true", help="print the RunResult as JSON on the last line of stdout")
    run.add_argument("--quiet", "-q", action="store_true", help="no per-line task output, only state changes")

    status = sub.add_parser("status", help="what ran (from the journal) and who holds locks")
    status.add_argument("run_id", nargs="?", help="a run id, or `last`; omit to list runs")
    status.add_argument("--workspace", "-w", default=".", help="the workspace (default: current folder)")
    status.add_argument("--json", action="store_true")

    review = sub.add_parser("review", help="accept, reject or retry tasks a run left ready for review")
    review.add_argument("run_id", nargs="?", help="a run id, or `last` (default: the newest run with ready tasks)")
    review.add_argument("action", nargs="?", choices=["accept", "reject", "retry", "diff"])
    review.add_argument("tasks", nargs="*", help="the task id(s)")
    review.add_argument("--feedback", help="retry: what the agent should do differently")
    review.add_argument("--workspace", "-w", default=".", help="the workspace (default: current folder)")
    review.add_argument("--json", action="store_true")

    gc = sub.add_parser("gc", help="remove what parex keeps")
    gc.add_argument("--branches", action="store_true", required=True,
                    help="delete the parex/<run>/... branches kept by runs that are not running")
    gc.add_argument("--dry-run", action="store_true")
    gc.add_argument("--workspace", "-w", default=".")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "status":
        from parex_lsp.cli.status import print_status

        return print_status(Path(args.workspace), args.run_id, args.json)
    if args.command == "review":
        from parex_lsp.cli.review import review_command

        return review_command(Path(args.workspace), args.run_id, args.action, args.tasks, args.feedback, args.json)
    if args.command == "gc":
        from parex_lsp.cli.review import gc_branches

        return gc_branches(Path(args.workspace), args.dry_run)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(filename=args.log_file, level=logging.INFO if args.log_file else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from parex_lsp.lsp.server import build_server

    server = build_server()
    if args.tcp:
        print(f"parex-lsp: serving LSP on {args.host}:{args.port}", file=sys.stderr)
        server.start_tcp(args.host, args.port)
    else:
        if sys.stdin.isatty():  # a person, not an editor: say what this is
            print("parex-lsp: serving LSP on stdin/stdout, for an editor to talk to. "
                  "To run a plan here: parex-lsp run PLAN (see --help).", file=sys.stderr)
        server.start_io()
    return EXIT_OK


def find_plan(arg: str | None) -> Path:
    """The document a `run` names; with none, the plan of the current folder: `parex.toml`, else its only
    `*.parex.toml` (with several, naming them is asked for). What is missing is said by `resolve`."""
    from parex_lsp.plan import PlanError, Problem, is_plan_file

    path = Path(arg) if arg else Path.cwd()
    if not path.is_dir() or (path / "parex.toml").is_file():
        return path
    plans = sorted(p for p in path.glob("*.parex.toml") if is_plan_file(p))
    if len(plans) == 1:
        return plans[0]
    if plans:
        where = str(path) if arg else "the current folder"
        raise PlanError([Problem("no-plan", f"{where} holds {len(plans)} plans: name one of "
                                 + ", ".join(p.name for p in plans), None, str(path))])
    return path


def _load(arg: str | None, call_agent: str | None) -> Plan:
    """The plan `arg` names, by the one workspace rule every front end uses (plan.resolve), the current
    folder standing for the editor's root. Warnings are printed; errors raise PlanError."""
    from parex_lsp.plan import PlanError, resolve

    got = resolve(find_plan(arg), editor_root=Path.cwd(), call_agent=call_agent)
    for problem in got.problems:
        if not problem.is_error:
            _err(problem.format())
    if got.plan is None:
        raise PlanError(got.problems)
    return got.plan


def _run(args: argparse.Namespace) -> int:
    from parex_lsp.cli.view import TerminalView
    from parex_lsp.engine import Run, RunError, RunOptions
    from parex_lsp.plan import PlanError

    # With --json, stdout carries only the result; progress goes to stderr.
    view = TerminalView(stream=sys.stderr if args.json else sys.stdout, quiet=args.quiet)
    stopped_by: list[int] = []

    from parex_lsp.cli.review import LivePrompt

    asking = args.review and sys.stdin.isatty() and not args.json
    prompt = LivePrompt()

    async def go() -> Any:
        try:
            plan = _load(args.plan, args.call_agent)
            run = await Run.prepare(plan, RunOptions(
                max_concurrency=args.max_concurrency, isolation=args.isolation, only=args.only,
                resume=args.resume, fail_fast=args.fail_fast, merge="review" if args.review else None,
                hold_for_review=asking), sinks=[view.on_event, prompt.on_event])
        except (PlanError, RunError) as e:
            return e
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, run, view, stopped_by)
            if asking:
                tg.start_soon(prompt.serve, run)
            try:
                with view.live():
                    return run, await run.execute()
            except RunError as e:  # e.g. worktree isolation refused: nothing ran
                return e
            finally:
                tg.cancel_scope.cancel()

    outcome = anyio.run(go)
    if isinstance(outcome, PlanError):
        for problem in outcome.problems:
            _err(problem.format())
        _err(f"parex: the plan has {len(outcome.problems)} problem(s); nothing was run")
        return EXIT_INVALID
    if isinstance(outcome, RunError):
        _err(f"parex: {outcome}")
        return EXIT_INVALID
    run, result = outcome
    view.summary(result, run.plan.source)
    if args.json:
        with contextlib.suppress(OSError):
            print(json.dumps(result.to_wire()), flush=True)
    if result.status == "cancelled":
        return 128 + stopped_by[0] if stopped_by and stopped_by[0] != signal.SIGINT else EXIT_CANCELLED
    if result.status == "ready":
        _err(f"parex: tasks wait for review: parex-lsp review {result.run_id}")
        return EXIT_REVIEW
    return EXIT_OK if result.status == "succeeded" else EXIT_FAILED


def _err(text: str) -> None:
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr)


async def _stop_on_signal(run: Any, view: Any, stopped_by: list[int]) -> None:
    """Ctrl-C, SIGTERM and SIGHUP (terminal closed) stop the run cleanly: agents' process groups ended
    (TERM, then KILL after kill_grace), locks released, journal closed. A second one kills at once."""
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async for signum in signals:
            if not stopped_by:
                stopped_by.append(signum)
                name = signal.Signals(signum).name
                cancelled = run.cancel(reason=f"cancelled ({name})")
                running = sum(1 for t in run.tasks.values() if t.status == "running")
                view.say(f"parex: stopping {running} running task(s) of {len(cancelled)}… "
                         "Ctrl-C again to force")
            else:
                killed = run.kill_now()
                view.say(f"parex: forced: killed {killed} agent process group(s)")
