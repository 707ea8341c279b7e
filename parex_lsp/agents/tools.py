"""File tools a model agent may call, confined to its workdir; every write holds the file's workspace lock.

A tool never raises into the agent loop: a refused path, a missing file or an ambiguous edit is a
`ToolError`, returned to the model as the tool's result so it can correct itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import anyio

from parex_lsp.agents.process import DRAIN
from parex_lsp.isolation import containment
from parex_lsp.isolation.cgroups import TaskCgroup
from parex_lsp.isolation.containment import ProcessTree

if TYPE_CHECKING:
    from parex_lsp.agents.base import FileLocks
    from parex_lsp.isolation.registry import LockOwner

MAX_READ_CHARS = 200_000  # a bigger file is cut, and the model told so
MAX_LIST_ENTRIES = 1000
MAX_COMMAND_OUTPUT = 20_000  # the tail of a command's output is what the model usually needs
COMMAND_TIMEOUT = 120.0
HIDDEN_DIRS = frozenset({".git", ".parex", "node_modules", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"})
PROTECTED_DIRS = frozenset({".git", ".parex"})  # the repository's and parex's own state: never written by a model


class ToolError(Exception):
    """A tool call the model got wrong; the message is what the model reads."""


def _schema(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required}}}


_PATH = {"type": "string", "description": "path relative to the working directory"}

FILE_TOOLS = [
    _schema("read_file", "Read a text file.", {"path": _PATH}, ["path"]),
    _schema("write_file", "Create or overwrite a text file with the given content.",
            {"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
    _schema("edit_file", "Replace one exact occurrence of `search` with `replace` in a file. `search` must "
            "appear exactly once: include enough surrounding lines to make it unique.",
            {"path": _PATH, "search": {"type": "string"}, "replace": {"type": "string"}},
            ["path", "search", "replace"]),
    _schema("list_files", "List the files under a directory, recursively.",
            {"path": {"type": "string", "description": "directory relative to the working directory (default .)"}},
            []),
]
RUN_COMMAND = _schema("run_command", "Run a shell command in the working directory; returns its exit code and output.",
                      {"command": {"type": "string"}}, ["command"])


class FileTools:
    """The tools of one task attempt. `locks` None: the task has the workdir to itself.

    A write waits for its file's lock (`on_wait(key, holder)` is told who is in the way); a lock that is
    not granted within `lock_timeout` raises `LockTimeout` out of `call`: the attempt fails, not the tool.
    """

    def __init__(self, workdir: Path, *, run_id: str, task_id: str, workspace: Path | None = None,
                 locks: FileLocks | None = None, lock_timeout: float | None = None,
                 on_wait: Callable[[str, LockOwner], None] | None = None, allow_commands: bool = False,
                 command_timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None):
        self.root = workdir.resolve()
        self.workspace = (workspace or workdir).resolve()
        self.run_id, self.task_id = run_id, task_id
        self.locks, self.lock_timeout, self.on_wait = locks, lock_timeout, on_wait
        self.allow_commands = allow_commands
        self.command_timeout = command_timeout
        self.env = env or {}
        self.written: set[str] = set()  # relative paths this attempt changed

    def schemas(self) -> list[dict[str, Any]]:
        return FILE_TOOLS + ([RUN_COMMAND] if self.allow_commands else [])

    async def call(self, name: str, arguments: str) -> str:
        """Run one tool call; a `ToolError` comes back as `error: ...` text for the model."""
        try:
            args = json.loads(arguments or "{}")
            if not isinstance(args, dict):
                raise ToolError("arguments must be a JSON object")
        except json.JSONDecodeError as e:
            return f"error: arguments are not valid JSON ({e})"
        except ToolError as e:
            return f"error: {e}"
        handler = {"read_file": self.read_file, "write_file": self.write_file, "edit_file": self.edit_file,
                   "list_files": self.list_files}.get(name)
        if name == "run_command" and self.allow_commands:
            handler = self.run_command
        if handler is None:
            return f"error: unknown tool `{name}`; available: {', '.join(self.names())}"
        try:
            return await handler(**args)
        except TypeError as e:  # missing or unexpected argument
            return f"error: bad arguments for {name}: {e}"
        except ToolError as e:
            return f"error: {e}"
        except OSError as e:
            return f"error: {e.strerror or e}"

    def names(self) -> list[str]:
        return [s["function"]["name"] for s in self.schemas()]

    # -- paths ---------------------------------------------------------------------------------

    def resolve(self, path: str, *, for_write: bool = False) -> tuple[Path, str]:
        """The real path and its workdir-relative posix form; refuses anything that leaves the workdir,
        through `..`, an absolute path or a symlink."""
        if not isinstance(path, str) or not path.strip():
            raise ToolError("path must be a non-empty string")
        if "\0" in path:
            raise ToolError("path contains a NUL byte")
        candidate = Path(path)
        real = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if not real.is_relative_to(self.root):
            raise ToolError(f"`{path}` is outside the working directory; use a path inside it")
        rel = real.relative_to(self.root).as_posix()
        if for_write and (rel == "." or rel.split("/", 1)[0] in PROTECTED_DIRS):
            raise ToolError(f"`{path}` may not be written")
        return real, rel

    # -- tools ---------------------------------------------------------------------------------

    async def read_file(self, path: str) -> str:
        real, rel = self.resolve(path)
        if not await anyio.Path(real).is_file():
            raise ToolError(f"`{rel}` does not exist or is not a file")
        text = await anyio.Path(real).read_text(encoding="utf-8", errors="replace")
        if len(text) > MAX_READ_CHARS:
            return text[:MAX_READ_CHARS] + f"\n[... cut: the file has {len(text)} characters]"
        return text

    async def write_file(self, path: str, content: str) -> str:
        real, rel = self.resolve(path, for_write=True)
        async with self._lock(real, rel):
            await _replace(real, content)
        self.written.add(rel)
        return f"wrote {rel} ({len(content)} characters)"

    async def edit_file(self, path: str, search: str, replace: str) -> str:
        real, rel = self.resolve(path, for_write=True)
        if not search:
            raise ToolError("`search` must not be empty")
        # Read, check and write under one lock hold, so a concurrent edit of the same file is never lost.
        async with self._lock(real, rel):
            if not await anyio.Path(real).is_file():
                raise ToolError(f"`{rel}` does not exist; use write_file to create it")
            text = await anyio.Path(real).read_text(encoding="utf-8")
            count = text.count(search)
            if count == 0:
                raise ToolError(f"the search text was not found in `{rel}`; read the file and copy it exactly")
            if count > 1:
                raise ToolError(f"the search text occurs {count} times in `{rel}`; include more context to make it unique")
            await _replace(real, text.replace(search, replace, 1))
        self.written.add(rel)
        return f"edited {rel}"

    async def list_files(self, path: str = ".") -> str:
        real, rel = self.resolve(path)
        if not await anyio.Path(real).is_dir():
            raise ToolError(f"`{rel}` is not a directory")
        files = await anyio.to_thread.run_sync(_walk, real, self.root)
        if not files:
            return "(no files)"
        more = len(files) - MAX_LIST_ENTRIES
        return "\n".join(files[:MAX_LIST_ENTRIES]) + (f"\n[... and {more} more]" if more > 0 else "")

    async def run_command(self, command: str) -> str:
        if not isinstance(command, str) or not command.strip():
            raise ToolError("command must be a non-empty string")
        env = {**os.environ, **self.env}
        # Own process group, and a contained tree: a timeout, a cancelled task or the command's end ends all
        # the shell started, daemons included (isolation/containment.py).
        cgroup = TaskCgroup.create()
        argv = ["sh", "-c", command]
        try:
            with containment.Spawning():
                proc = await anyio.open_process(argv if cgroup is None else cgroup.wrap(argv), cwd=self.root,
                                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, start_new_session=True)
                containment.add_leader(proc.pid)
        except BaseException:
            if cgroup is not None:
                cgroup.release()
            raise
        tree = ProcessTree(proc.pid, self.run_id, self.task_id, cgroup)
        chunks: list[bytes] = []
        read_all = anyio.Event()

        async def read() -> None:
            assert proc.stdout is not None
            async for chunk in proc.stdout:
                chunks.append(chunk)
            read_all.set()

        async with proc:
            try:
                with anyio.move_on_after(self.command_timeout) as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(read)
                        await proc.wait()
                        tree.reaped = True
                        # what the shell left goes; a pipe still held from outside the tree is not waited for
                        await anyio.to_thread.run_sync(tree.kill)
                        with anyio.move_on_after(DRAIN):
                            await read_all.wait()
                        tg.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(tree.kill)
                    await proc.wait()
                    tree.reaped = True
                    await anyio.to_thread.run_sync(tree.kill)
                    containment.drop_leader(proc.pid)
                    tree.close()
        out = b"".join(chunks).decode("utf-8", errors="replace")
        if len(out) > MAX_COMMAND_OUTPUT:
            out = f"[... {len(out) - MAX_COMMAND_OUTPUT} characters cut]\n" + out[-MAX_COMMAND_OUTPUT:]
        status = f"timed out after {self.command_timeout:g}s" if scope.cancelled_caught else f"exit code {proc.returncode}"
        return f"{status}\n{out}"

    def _lock(self, real: Path, rel: str) -> contextlib.AbstractAsyncContextManager[Any]:
        if self.locks is None:
            return contextlib.nullcontext()
        # The lock key is the workspace's name for the file; a workdir outside the workspace keys by its own.
        key = real.relative_to(self.workspace).as_posix() if real.is_relative_to(self.workspace) else rel
        return self.locks.hold(self.run_id, self.task_id, [key], timeout=self.lock_timeout, on_wait=self.on_wait)


async def _replace(path: Path, content: str) -> None:
    """Write through a temporary file and rename, so no reader ever sees half a file; keeps the mode."""
    await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.parex-{secrets.token_hex(4)}")
    try:
        await anyio.Path(tmp).write_text(content, encoding="utf-8")
        if await anyio.Path(path).exists():
            os.chmod(tmp, (await anyio.Path(path).stat()).st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if await anyio.Path(tmp).exists():
            await anyio.Path(tmp).unlink()


def _walk(top: Path, root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in HIDDEN_DIRS)
        base = Path(dirpath)
        out.extend((base / f).relative_to(root).as_posix() for f in sorted(filenames))
        if len(out) > MAX_LIST_ENTRIES:
            break
    return out

