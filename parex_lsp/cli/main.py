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
import anyio.abc
import shtab

from parex_lsp import __version__

if TYPE_CHECKING:
    from parex_lsp.engine.review_later import RetryPlan
    from parex_lsp.plan import Plan

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


def _positive_number(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return x


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
    p.add_argument("--token-file", type=Path, help="--tcp: where to write the token clients must pass "
                   "(default $XDG_RUNTIME_DIR/parex/tcp-token, else ~/.cache/parex/tcp-token)")
    p.add_argument("--log-file", help="write the server's log here")
    sub = p.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a plan in the terminal", epilog=EXIT_CODES_HELP)
    plan = run.add_argument("plan", nargs="?", help="a parex.toml (or *.parex.toml), a folder holding one, or any "
                     "document whose `callN:` lines are the tasks (default: the plan in the current folder)")
    plan.complete = shtab.FILE  # type: ignore[attr-defined]  # shtab reads it
    run.add_argument("--max-concurrency", type=_positive, metavar="N", help="at most N tasks at once (N ≥ 1)")
    run.add_argument("--isolation", choices=["none", "worktree"])
    run.add_argument("--executor", choices=["local", "ray"],
                     help='where attempts run: this machine, or a Ray cluster (pip install "parex-lsp[ray]")')
    run.add_argument("--ray-address", metavar="ADDR",
                     help="the Ray cluster for --executor ray: auto, ray://host:10001 (overrides [run] ray_address)")
    run.add_argument("--only", type=_ids, action="extend", metavar="ID[,ID]",
                     help="run these tasks only (repeat, or separate ids with commas)")
    run.add_argument("--resume", metavar="RUN_ID|last", help="rerun what did not succeed: tasks that succeeded in any run of the plan up to that one are not run again")
    run.add_argument("--fail-fast", action="store_true", default=None, help="at the first failure cancel the rest (the run fails, exit 1)")
    run.add_argument("--call-agent", metavar="AGENT",
                     help='the agent for callN: prompts ("shell" runs them as shell commands)')
    run.add_argument("--budget-usd", type=_positive_number, metavar="USD",
                     help="stop the run when its spend reaches this (overrides [run] budget.usd)")
    run.add_argument("--budget-tokens", type=_positive, metavar="N",
                     help="stop the run when it has used this many tokens (overrides [run] budget.tokens)")
    run.add_argument("--review", action="store_true", help='merge = "review": keep each succeeded task on its '
                     "branch for a reviewer (asked task by task on a TTY; else `parex-lsp review RUN` later)")
    run.add_argument("--json", action="store_true", help="print the RunResult as JSON on the last line of stdout")
    run.add_argument("--quiet", "-q", action="store_true", help="no per-line task output, only state changes")
    run.add_argument("--dry-run", "-n", action="store_true", help="run nothing: print the waves, the critical path, "
                     "lock conflicts and the expected duration from earlier runs")
    run.add_argument("--junit", metavar="FILE", help="also write the result as JUnit XML (one testcase per task)"
                     ).complete = shtab.FILE  # type: ignore[attr-defined]

    status = sub.add_parser("status", help="what ran (from the journal) and who holds locks")
    status.add_argument("run_id", nargs="?", help="a run id, or `last`; omit to list runs")
    _workspace_option(status)
    status.add_argument("--json", action="store_true")

    log = sub.add_parser("log", help="a task's output (of the last run unless RUN is given)")
    log.add_argument("first", metavar="[RUN]", help="a run id or `last` (the default)")
    log.add_argument("task", nargs="?", metavar="TASK", help="a task id")
    log.add_argument("--follow", "-f", action="store_true", help="keep printing until the task ends")
    _workspace_option(log)

    show = sub.add_parser("show", help="a run's full result as it ended, from its journal")
    show.add_argument("refs", nargs="?", default="last", metavar="RUN", help="a run id or `last` (the default)")
    show.add_argument("--json", action="store_true", help="the RunResult, every task with its log path")
    _workspace_option(show)

    report = sub.add_parser("report", help="a run's timeline as one self-contained HTML file")
    report.add_argument("refs", nargs="?", default="last", metavar="RUN", help="a run id or `last` (the default)")
    report.add_argument("--output", "-o", metavar="FILE", help="where to write it (default: RUN.html here)"
                        ).complete = shtab.FILE  # type: ignore[attr-defined]
    _workspace_option(report)

    cancel = sub.add_parser("cancel", help="stop a run of `parex-lsp run` (in another terminal), or one task of it")
    cancel.add_argument("first", nargs="?", metavar="RUN", help="a run id or `last` (the default)")
    cancel.add_argument("task", nargs="?", metavar="TASK", help="cancel only this task of the run")
    cancel.add_argument("--no-wait", action="store_true", help="do not wait for the run to report the end")
    _workspace_option(cancel)

    completion = sub.add_parser("completion", help="print a shell completion script (from this parser)",
                                description="Install: bash `parex-lsp completion bash > "
                                "~/.local/share/bash-completion/completions/parex-lsp`; zsh `parex-lsp completion "
                                "zsh > ~/.zfunc/_parex-lsp` (with ~/.zfunc in fpath); fish `parex-lsp completion fish "
                                "> ~/.config/fish/completions/parex-lsp.fish`.")
    completion.add_argument("shell", choices=["bash", "zsh", "fish"])

    review = sub.add_parser("review", help="accept, reject or retry tasks a run left ready for review")
    review.add_argument("run_id", nargs="?", help="a run id, or `last` (default: the newest run with ready tasks)")
    review.add_argument("action", nargs="?", choices=["accept", "reject", "retry", "diff"])
    review.add_argument("tasks", nargs="*", help="the task id(s)")
    review.add_argument("--feedback", help="retry: what the agent should do differently")
    review.add_argument("--dependents", action="store_true", help="retry: also run the task's dependents that were "
                        "waiting for it (they start once it lands)")
    review.add_argument("--workspace", "-w", default=".", help="the workspace (default: current folder)")
    review.add_argument("--json", action="store_true")

    drafting = sub.add_parser("plan", help="draft a plan from a request with the workspace's planning agent",
                              description="Exit codes: 0 the plan validates; 1 saved with problems left; 2 nothing drafted.")
    drafting.add_argument("request", help="what the plan should do, e.g. \"add rate limiting to the API\"")
    drafting.add_argument("-o", "--output", metavar="PLAN", help="save the plan here (default: print it)"
                          ).complete = shtab.FILE  # type: ignore[attr-defined]
    drafting.add_argument("--file", dest="files", action="append", default=[], metavar="PATH",
                          help="send this file's text with the request (repeat)").complete = shtab.FILE  # type: ignore[attr-defined]
    drafting.add_argument("--workspace", "-w", help="the workspace (default: the one of the current folder)")

    doctor = sub.add_parser("doctor", help="check that a plan can run here: agents, endpoints, keys, git, locks")
    doctor.add_argument("plan", nargs="?", help="a plan, as for `run` (default: the plan in the current folder)"
                        ).complete = shtab.FILE  # type: ignore[attr-defined]
    doctor.add_argument("--timeout", type=_positive_number, default=5.0, metavar="SECONDS",
                        help="how long an agent's --version or an endpoint may take to answer (default 5)")
    doctor.add_argument("--json", action="store_true", help="one JSON object: {ok, workspace, checks: [{name, ok, "
                        "detail, required}], problems} (what the editors show)")

    gc = sub.add_parser("gc", help="prune old runs under .parex/runs (and, with --branches, kept branches)")
    gc.add_argument("--keep", type=_positive, default=20, metavar="N", help="keep the newest N runs (default 20); "
                    "older runs that are live, the latest of their plan, or have kept branches stay too")
    gc.add_argument("--branches", action="store_true",
                    help="also delete the parex/<run>/... branches kept by runs that are not running")
    gc.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    gc.add_argument("--workspace", "-w", default=".")
    return p


def _workspace_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", "-w", metavar="FOLDER", help="the workspace whose runs to read (default: the "
                   "current folder if it has runs, else the nearest plan folder below it that has)"
                   ).complete = shtab.DIRECTORY  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "completion":
        print(shtab.complete(_parser(), shell=args.shell))
        return EXIT_OK
    if args.command in ("status", "log", "show", "cancel", "report"):
        return _read_runs(args)
    if args.command == "review":
        from parex_lsp.cli.review import review_command

        return review_command(Path(args.workspace), args.run_id, args.action, args.tasks, args.feedback, args.json,
                              args.dependents, foreground=lambda argv, retry: _run(_parser().parse_args(argv), retry))
    if args.command == "plan":
        from parex_lsp.cli.plan import plan_command

        return plan_command(args.request, args.output, args.files, args.workspace)
    if args.command == "doctor":
        from parex_lsp.cli.doctor import doctor_command

        return doctor_command(args.plan, args.timeout, _load, args.json)
    if args.command == "gc":
        from parex_lsp.cli.gc import gc_command

        return gc_command(Path(args.workspace), args.keep, args.dry_run, args.branches)
    return _serve(args)


def _words(*words: str | None) -> list[str]:
    return [w for w in words if w is not None]


def _read_runs(args: argparse.Namespace) -> int:
    """The commands that read (or signal) runs of a workspace, found the same way for each."""
    from parex_lsp.cli.picking import Refused
    from parex_lsp.cli.status import print_status, say_where
    from parex_lsp.cli.workspace import find_workspace

    ws = find_workspace(args.workspace)
    try:
        if args.command == "status":
            return print_status(ws, args.run_id, args.json)
        say_where(ws)
        if args.command == "log":
            from parex_lsp.cli.log import print_log

            return print_log(ws, _words(args.first, args.task), args.follow)
        if args.command == "show":
            from parex_lsp.cli.show import show_run

            return show_run(ws, [args.refs], args.json)
        if args.command == "report":
            from parex_lsp.cli.report import write_report

            return write_report(ws, [args.refs], args.output)
        from parex_lsp.cli.cancel import cancel

        return cancel(ws, _words(args.first, args.task), wait=not args.no_wait)
    except Refused as e:
        _err(f"parex: {e}")
        return EXIT_INVALID
    except BrokenPipeError:  # `parex-lsp log … | head`
        return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    # Ctrl-C before the server is up (imports take a moment) exits quietly; once up, the server handles it.
    signal.signal(signal.SIGINT, lambda *_: sys.exit(EXIT_CANCELLED))
    import logging

    logging.basicConfig(filename=args.log_file, level=logging.INFO if args.log_file else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from parex_lsp.lsp.serve import serve_stdio, serve_tcp

    if args.tcp:
        return serve_tcp(args.host, args.port, args.token_file)
    if sys.stdin.isatty():  # a person, not an editor: say what this is
        print("parex-lsp: serving LSP on stdin/stdout, for an editor to talk to (Ctrl-C stops it). "
              "To run a plan here: parex-lsp run PLAN (see --help).", file=sys.stderr)
    return serve_stdio()


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


def _run(args: argparse.Namespace, retry: RetryPlan | None = None) -> int:
    """`run`, and a retry of an ended run's ready task (`review RUN retry`: `retry` says what the run does)."""
    from parex_lsp.cli.view import TerminalView
    from parex_lsp.engine import Run, RunError, RunOptions
    from parex_lsp.plan import PlanError

    if args.dry_run:
        return _dry_run(args)
    junit = Path(args.junit).resolve() if args.junit else None
    if junit is not None and not junit.parent.is_dir():
        _err(f"parex: --junit {args.junit}: no folder {junit.parent}")
        return EXIT_INVALID
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
                resume=args.resume, fail_fast=args.fail_fast, budget_usd=args.budget_usd,
                budget_tokens=args.budget_tokens, merge="review" if args.review else None,
                executor=args.executor, ray_address=args.ray_address, hold_for_review=asking,
                retry=retry.retry if retry is not None else None), sinks=[view.on_event, prompt.on_event])
        except (PlanError, RunError) as e:
            return e
        if view.interactive:
            view.estimates = await anyio.to_thread.run_sync(_estimates, run)
        async with anyio.create_task_group() as tg:
            # Handlers are in place before the run starts: a signal's default action would end us uncleanly.
            await tg.start(_stop_on_signal, run, view, stopped_by)
            await tg.start(_cancel_on_request, run, view)
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
    view.summary(result, run.plan.source, depends_on={t.id: list(t.depends_on) for t in run.plan.tasks})
    if junit is not None:
        from parex_lsp.cli.junit import junit_xml, write_junit

        try:
            write_junit(junit, junit_xml(result, run.plan.source, view.tails(), run.started))
        except OSError as e:
            _err(f"parex: cannot write {junit}: {e.strerror or e}")
    if args.json:
        from parex_lsp.cli.show import result_json

        with contextlib.suppress(OSError):
            print(json.dumps(result_json(result.to_wire(), run.workspace)), flush=True)
    if result.status == "cancelled":
        return 128 + stopped_by[0] if stopped_by and stopped_by[0] != signal.SIGINT else EXIT_CANCELLED
    if retry is not None:
        from parex_lsp.cli.review import retry_ended

        return retry_ended(result, retry)
    if result.status == "ready":
        _err(f"parex: tasks wait for review: parex-lsp review {result.run_id}")
        return EXIT_REVIEW
    return EXIT_OK if result.status == "succeeded" else EXIT_FAILED


def _estimates(run: Any) -> Any:
    """Durations from earlier runs of the plan, for the live view's ETA."""
    from parex_lsp.cli.live import Estimates
    from parex_lsp.engine.graph import DEFAULT_ESTIMATE
    from parex_lsp.engine.history import load_history

    learned = load_history(run.workspace, run.plan_key).durations
    return Estimates(own={tid: learned.get(tid, DEFAULT_ESTIMATE) for tid in run.tasks},
                     chain={tid: t.priority for tid, t in run.tasks.items()}, concurrency=run.max_concurrency,
                     known=any(tid in learned for tid in run.tasks))


def _dry_run(args: argparse.Namespace) -> int:
    from parex_lsp.cli.dry_run import forecast, print_forecast
    from parex_lsp.engine import RunError
    from parex_lsp.plan import PlanError

    try:
        plan = _load(args.plan, args.call_agent)
        f = forecast(plan, args.only, args.resume, args.max_concurrency, args.isolation, args.executor)
    except PlanError as e:
        for problem in e.problems:
            _err(problem.format())
        return EXIT_INVALID
    except RunError as e:
        _err(f"parex: {e}")
        return EXIT_INVALID
    print_forecast(plan, f, args.json, args.max_concurrency or plan.run.max_concurrency)
    return EXIT_OK


def _err(text: str) -> None:
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr)


async def _stop_on_signal(run: Any, view: Any, stopped_by: list[int],
                          task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    """Ctrl-C, SIGTERM and SIGHUP (terminal closed) stop the run cleanly: agents' process groups ended
    (TERM, then KILL after kill_grace), locks released, journal closed. A second one kills at once."""
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        task_status.started()
        async for signum in signals:
            if not stopped_by:
                stopped_by.append(signum)
                name = signal.Signals(signum).name
                cancelled = run.cancel(reason=f"cancelled ({name})")
                running = sum(1 for t in run.tasks.values() if t.status == "running")
                unstarted = len(cancelled) - running
                also = f"; {unstarted} not started, cancelled" if unstarted > 0 else ""
                view.say(f"parex: stopping {running} task{'s' if running != 1 else ''} ({name}{also})… "
                         "Ctrl-C again to force")
            else:
                killed = run.kill_now()
                view.say(f"parex: forced: killed {killed} agent process group(s)")


async def _cancel_on_request(run: Any, view: Any,
                             task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    """`parex-lsp cancel RUN TASK` from another terminal: the task ids are in the run's cancel-requests file."""
    from parex_lsp.cli.cancel import REQUEST_SIGNAL, read_requests

    seen = 0
    with anyio.open_signal_receiver(REQUEST_SIGNAL) as signals:
        task_status.started()
        async for _ in signals:
            tasks, seen = read_requests(run.workspace, run.run_id, seen)
            for task_id in tasks:
                if run.cancel(task_id, reason="cancelled by parex-lsp cancel"):
                    view.say(f"parex: cancelling {task_id} (parex-lsp cancel)")
