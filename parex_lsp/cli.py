"""`parex-lsp`: the language server (`--stdio`, `--tcp`), and the same engine headless (`run`, `status`)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

import anyio

from parex_lsp import __version__

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="parex-lsp", description="Run many agent and shell tasks concurrently: "
                                "a language server for editors, and a headless runner.")
    p.add_argument("--version", action="version", version=f"parex-lsp {__version__}")
    p.add_argument("--stdio", action="store_true", help="serve LSP on stdin/stdout (the default)")
    p.add_argument("--tcp", action="store_true", help="serve LSP on a TCP port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2087)
    p.add_argument("--log-file", help="write the server's log here")
    sub = p.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a plan in the terminal")
    run.add_argument("plan", help="a parex.toml (or *.parex.toml), a folder holding parex.toml, "
                     "or any document whose `callN:` lines are the tasks")
    run.add_argument("--max-concurrency", type=int, metavar="N")
    run.add_argument("--isolation", choices=["none", "worktree"])
    run.add_argument("--only", nargs="+", metavar="ID", help="run these tasks only")
    run.add_argument("--resume", metavar="RUN_ID|last", help="skip tasks that succeeded in that run")
    run.add_argument("--fail-fast", action="store_true", default=None, help="cancel the rest at the first failure")
    run.add_argument("--json", action="store_true", help="print the RunResult as JSON on the last line of stdout")
    run.add_argument("--quiet", "-q", action="store_true", help="no per-line task output, only state changes")

    status = sub.add_parser("status", help="what ran (from the journal) and who holds locks")
    status.add_argument("run_id", nargs="?", help="a run id, or `last`; omit to list runs")
    status.add_argument("--workspace", "-w", default=".", help="the workspace (default: current folder)")
    status.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "status":
        from parex_lsp.terminal import print_status

        return print_status(Path(args.workspace), args.run_id, args.json)
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


def _plan_path(arg: str) -> Path:
    p = Path(arg)
    return p / "parex.toml" if p.is_dir() else p


def _load(arg: str):
    """A plan file; or any other document, whose `callN:` lines are the plan (in the workspace holding it)."""
    from parex_lsp.plan import is_plan_file, load_calls, load_plan

    path = _plan_path(arg)
    return load_plan(path) if is_plan_file(path) or path.suffix == ".toml" else load_calls(path)


def _run(args: argparse.Namespace) -> int:
    from parex_lsp.engine import Run, RunError, RunOptions
    from parex_lsp.plan import PlanError
    from parex_lsp.terminal import TerminalView

    try:
        plan = _load(args.plan)
        run = Run(plan, RunOptions(max_concurrency=args.max_concurrency, isolation=args.isolation, only=args.only,
                                   resume=args.resume, fail_fast=args.fail_fast))
    except PlanError as e:
        for problem in e.problems:
            print(problem.format(), file=sys.stderr)
        print(f"parex: the plan has {len(e.problems)} problem(s); nothing was run", file=sys.stderr)
        return EXIT_INVALID
    except RunError as e:
        print(f"parex: {e}", file=sys.stderr)
        return EXIT_INVALID

    # With --json, stdout carries only the result; progress goes to stderr.
    view = TerminalView(run, stream=sys.stderr if args.json else sys.stdout, quiet=args.quiet)
    run.add_sink(view.on_event)

    async def go():
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_signal, run, tg.cancel_scope)
            try:
                with view.live():
                    return await run.execute()
            except RunError as e:  # e.g. worktree isolation refused: nothing ran
                return e
            finally:
                tg.cancel_scope.cancel()

    result = anyio.run(go)
    if isinstance(result, RunError):
        print(f"parex: {result}", file=sys.stderr)
        return EXIT_INVALID
    view.summary(result)
    if args.json:
        print(json.dumps(result.to_wire()), flush=True)
    return {"succeeded": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(result.status, EXIT_FAILED)


async def _cancel_on_signal(run, scope: anyio.CancelScope) -> None:
    """Ctrl-C (or SIGTERM) cancels the run cleanly: agents' process groups ended, journal closed."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            run.cancel()


if __name__ == "__main__":
    sys.exit(main())
