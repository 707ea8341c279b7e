"""The language server front end: JSON-RPC in, engine runs, events out as LSP progress and diagnostics."""

from parex_lsp.lsp.server import ParexServer, build_server

__all__ = ["ParexServer", "build_server"]
