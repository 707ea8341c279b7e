"""`parex/plan {request, files?, uri?}` → `{text, problems, rounds, valid}`: a plan drafted by the workspace's
planning agent (planner/), with what is left of its problems as diagnostics. The editor shows the text in
a new document (`uri`, when given, is where it will be saved) for the person to edit and run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcException
from pygls.uris import to_fs_path

from parex_lsp.lsp.diagnostics import problem_diagnostic
from parex_lsp.lsp.params import invalid
from parex_lsp.plan import find_workspace
from parex_lsp.planner import PlanRequestError, draft_plan

if TYPE_CHECKING:
    from parex_lsp.lsp.server import ParexServer

PLAN = "parex/plan"
REQUEST_FAILED = -32803


def plan_params(params: Any) -> tuple[str, list[str], str | None]:
    """(request, files, uri), every problem named at once."""
    if isinstance(params, (list, tuple)) and len(params) == 1:
        params = params[0]
    if not isinstance(params, dict):
        raise invalid([f"{PLAN} params must be an object {{request, files?, uri?}}"])
    problems = []
    unknown = set(params) - {"request", "files", "uri"}
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(unknown))} (known: files, request, uri)")
    request, files, uri = params.get("request"), params.get("files", []), params.get("uri")
    if not (isinstance(request, str) and request.strip()):
        problems.append("`request` must be a non-empty string: what the plan should do")
    if not (isinstance(files, list) and all(isinstance(f, str) for f in files)):
        problems.append("`files` must be an array of workspace-relative paths")
    if uri is not None and not (isinstance(uri, str) and uri.startswith("file:")):
        problems.append("`uri` must be a file: uri (where the plan will be saved)")
    if problems:
        raise invalid([f"{PLAN}: {p}" for p in problems])
    return str(request), list(files), uri


def register(server: ParexServer) -> None:
    @server.feature(PLAN)
    async def plan(ls: ParexServer, params: Any) -> dict[str, Any]:
        request, files, uri = plan_params(params)
        fs_path = to_fs_path(uri) if uri else None
        target = Path(fs_path) if fs_path else None
        roots = ls.runs.roots()
        root = ls.runs.editor_root(target) if target else (roots[0] if roots else None)
        workspace = find_workspace(target.parent if target else root or Path.cwd(), root)
        try:
            draft = await draft_plan(workspace, request, files, output=str(target) if target else None)
        except PlanRequestError as e:
            raise JsonRpcException(code=REQUEST_FAILED, message=f"{PLAN}: {e}", data={
                "problems": [ls.diagnostics.wire(problem_diagnostic(p)) | {"path": p.path} for p in e.problems]
            }) from None
        return {"text": draft.text, "valid": draft.ok, "rounds": draft.rounds,
                "problems": [ls.diagnostics.wire(problem_diagnostic(p)) for p in draft.problems]}
