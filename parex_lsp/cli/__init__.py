"""The terminal front end: `parex-lsp` entry (main.py), the live view fed by events (view.py), `status`."""

from parex_lsp.cli.main import main

__all__ = ["main"]
