"""Which workspace's runs `status`, `log`, `show` and `cancel` read, found the same way for each.

`parex-lsp run examples/demo` keeps its runs in examples/demo/.parex (the plan's folder is its workspace),
so a later `parex-lsp status` from the repository root must find them there: the current folder's runs if it
has any, else those of the nearest plan folder below it that has runs. Every command says which folder it
read when it is not the current one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from parex_lsp.engine.journal import list_runs

SEARCH_DEPTH = 4  # plan folders deeper than this below the current folder are not looked for
SKIPPED = frozenset({"node_modules", "__pycache__", "venv", "site-packages", "dist", "build"})


@dataclass(frozen=True, slots=True)
class Workspace:
    path: Path
    found: bool  # it is not the current folder: it was found below it (and the command says so)

    def shown(self) -> str:
        """The folder as a person would type it from the current folder."""
        try:
            return str(self.path.relative_to(Path.cwd().resolve())) or "."
        except ValueError:
            return str(self.path)


def has_runs(folder: Path) -> bool:
    return bool(list_runs(folder))


def is_plan_folder(folder: Path) -> bool:
    return (folder / "parex.toml").is_file() or any(folder.glob("*.parex.toml"))


def find_workspace(explicit: str | None) -> Workspace:
    """`--workspace` when given; else the current folder when it has runs; else the nearest plan folder
    below it with runs (the newest run breaking a tie); else the current folder (which has none)."""
    if explicit is not None:
        return Workspace(Path(explicit).resolve(), False)
    here = Path.cwd().resolve()
    if has_runs(here):
        return Workspace(here, False)
    found = _nearest_with_runs(here)
    return Workspace(found, True) if found is not None else Workspace(here, False)


def _nearest_with_runs(root: Path) -> Path | None:
    level = [root]
    for _ in range(SEARCH_DEPTH):
        level = [child for folder in level for child in _subfolders(folder)]
        hits = [f for f in level if is_plan_folder(f) and has_runs(f)]
        if hits:
            return max(hits, key=lambda f: list_runs(f)[-1].parent.name)  # run ids sort by start time
        if not level:
            return None
    return None


def _subfolders(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries
                          if e.is_dir(follow_symlinks=False) and not e.name.startswith(".") and e.name not in SKIPPED)
    except OSError:  # unreadable: nothing to find there
        return []

