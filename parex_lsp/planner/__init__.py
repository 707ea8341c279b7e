"""Drafting plans from a request: a model writes parex's TOML, parex's own validator checks it, and every
problem goes back to the model until the draft validates or the rounds run out.

`draft_plan` (draft.py) is the one entry point; the CLI (`parex-lsp plan`) and the language server
(`parex/plan`) both call it.
"""

from parex_lsp.planner.draft import Draft, PlanRequestError, draft_plan

__all__ = ["Draft", "PlanRequestError", "draft_plan"]
