"""File tools a model agent may call, confined to its workdir; every write holds the file's workspace lock.

A tool never raises into the agent loop: a refused path, a missing file or an ambiguous edit is a
`ToolError`, returned to the model as the tool's result so it can correct itself.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import json
import os
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from parex_lsp.agents.process import run_process

if TYPE_CHECKING:
    from parex_lsp.agents.base import AgentContext, FileLocks
    from parex_lsp.isolation.registry import LockOwner

MAX_READ_CHARS = 200_000  # a bigger file is cut, and the model told so
MAX_LIST_ENTRIES = 1000
MAX_COMMAND_OUTPUT = 20_000  # the tail of a command's output is what the model usually needs
COMMAND_TIMEOUT = 120.0
HIDDEN_DIRS = frozenset({".git", ".parex", "node_modules", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"})
# A repository's and parex's own state, at any depth (a nested repository's `.git/config` or hooks run code):
# never read, listed or written by a model. Compared case-insensitively (case-insensitive file systems).
PROTECTED_NAMES = frozenset({".git", ".parex"})


class ToolError(Exception):
    """A tool call the model got wrong; the message is what the model reads."""


def _schema(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:  # draft-04 wants `required` non-empty when present
        parameters["required"] = required
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def strict_schema(tool: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's strict form: every property required (optional ones may be null), no other properties."""
    fn = tool["function"]
    params = fn["parameters"]
    required = set(params.get("required", []))
    props = {k: v if k in required else {**v, "type": [v["type"], "null"]} for k, v in params["properties"].items()}
    return {"type": "function", "function": {
        **fn, "strict": True,
        "parameters": {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}}}


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
                 command_timeout: float = COMMAND_TIMEOUT, command_ctx: AgentContext | None = None,
                 strict: bool = False):
        self.root = workdir.resolve()
        self.workspace = (workspace or workdir).resolve()
        self.run_id, self.task_id = run_id, task_id
        self.locks, self.lock_timeout, self.on_wait = locks, lock_timeout, on_wait
        self.allow_commands = allow_commands
        self.command_timeout = command_timeout
        self.command_ctx = command_ctx  # run_command runs through the agents' process runner with this context
        self.strict = strict
        self.written: set[str] = set()  # relative paths this attempt changed

    def schemas(self) -> list[dict[str, Any]]:
        tools = FILE_TOOLS + ([RUN_COMMAND] if self.allow_commands else [])
        return [strict_schema(t) for t in tools] if self.strict else tools

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
        handlers: dict[str, Callable[..., Awaitable[str]]] = {
            "read_file": self.read_file, "write_file": self.write_file, "edit_file": self.edit_file,
            "list_files": self.list_files}
        handler = handlers.get(name)
        if name == "run_command" and self.allow_commands:
            handler = self.run_command
        if handler is None:
            return f"error: unknown tool `{name}`; available: {', '.join(self.names())}"
        args = {k: v for k, v in args.items() if v is not None}  # strict schemas send null for "not given"
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
        through `..`, an absolute path or a symlink, and anything in a `.git` or `.parex` folder at any depth
        (checked on the path as given and as resolved, so a symlink into one is refused too)."""
        if not isinstance(path, str) or not path.strip():
            raise ToolError("path must be a non-empty string")
        if "\0" in path:
            raise ToolError("path contains a NUL byte")
        candidate = Path(path)
        if _protected(candidate.parts):
            raise ToolError(f"`{path}` is inside a `.git` or `.parex` folder, which the tools never touch")
        real = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if not real.is_relative_to(self.root):
            raise ToolError(f"`{path}` is outside the working directory; use a path inside it")
        rel = real.relative_to(self.root).as_posix()
        if _protected(rel.split("/")):
            raise ToolError(f"`{path}` is inside a `.git` or `.parex` folder, which the tools never touch")
        if for_write and rel == ".":
            raise ToolError(f"`{path}` is the working directory itself, not a file")
        return real, rel

    # -- tools ---------------------------------------------------------------------------------

    async def read_file(self, path: str) -> str:
        real, rel = self.resolve(path)
        if not await anyio.Path(real).is_file():
            raise ToolError(f"`{rel}` does not exist or is not a file")
        # The model sees LF line ends whatever the file has; edits put the file's own ends back.
        text = _decode(await anyio.Path(real).read_bytes(), rel).text.replace("\r\n", "\n")
        if len(text) > MAX_READ_CHARS:
            return text[:MAX_READ_CHARS] + f"\n[... cut: the file has {len(text)} characters]"
        return text

    async def write_file(self, path: str, content: str) -> str:
        real, rel = self.resolve(path, for_write=True)
        if not isinstance(content, str):
            raise ToolError("`content` must be a string")
        async with self._lock(real, rel):
            old = None
            if await anyio.Path(real).is_file():
                with contextlib.suppress(ToolError):  # replacing a binary or non-UTF-8 file outright is allowed
                    old = _decode(await anyio.Path(real).read_bytes(), rel)
            # An existing file keeps its byte-order mark and CRLF line ends.
            if old is not None and old.crlf and "\r\n" not in content:
                content = content.replace("\n", "\r\n")
            await _replace(real, (old.bom if old else b"") + content.encode("utf-8"))
        self.written.add(rel)
        return f"wrote {rel} ({len(content)} characters)"

    async def edit_file(self, path: str, search: str, replace: str) -> str:
        real, rel = self.resolve(path, for_write=True)
        if not isinstance(search, str) or not isinstance(replace, str):
            raise ToolError("`search` and `replace` must be strings")
        if not search:
            raise ToolError("`search` must not be empty")
        # Read, check and write under one lock hold, so a concurrent edit of the same file is never lost.
        async with self._lock(real, rel):
            if not await anyio.Path(real).is_file():
                raise ToolError(f"`{rel}` does not exist; use write_file to create it")
            doc = _decode(await anyio.Path(real).read_bytes(), rel)
            text = doc.text
            count = text.count(search)
            if count == 0 and doc.crlf and "\r\n" not in search:
                # The model saw LF line ends (read_file); match and replace in the file's own CRLF.
                search, replace = search.replace("\n", "\r\n"), replace.replace("\n", "\r\n")
                count = text.count(search)
            if count == 0:
                raise ToolError(f"the search text was not found in `{rel}`; read the file and copy it exactly")
            if count > 1:
                raise ToolError(f"the search text occurs {count} times in `{rel}`; include more context to make it unique")
            # Only the matched bytes change: the rest, its line ends and its byte-order mark stay as they were.
            await _replace(real, doc.bom + text.replace(search, replace, 1).encode("utf-8"))
        self.written.add(rel)
        return f"edited {rel}"

    async def list_files(self, path: str = ".") -> str:
        if not isinstance(path, str):
            raise ToolError("`path` must be a string")
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
        if self.command_ctx is None:
            raise ToolError("run_command is not available here")
        # The agents' one process runner: own process group, environment from the agent's `env`, the
        # journal told the pid, and on timeout the group gets SIGTERM, a grace period, then SIGKILL.
        captured = _Captured(MAX_COMMAND_OUTPUT)
        ctx = dataclasses.replace(self.command_ctx, output=captured, workdir=self.root)
        done = None
        with anyio.move_on_after(self.command_timeout):
            done = await run_process(["sh", "-c", command], ctx)
        status = f"timed out after {self.command_timeout:g}s" if done is None else f"exit code {done.exit_code}"
        return f"{status}\n{captured.text()}"

    def _lock(self, real: Path, rel: str) -> contextlib.AbstractAsyncContextManager[Any]:
        if self.locks is None:
            return contextlib.nullcontext()
        # The lock key is the workspace's name for the file; a workdir outside the workspace keys by its own.
        key = real.relative_to(self.workspace).as_posix() if real.is_relative_to(self.workspace) else rel
        return self.locks.hold(self.run_id, self.task_id, [key], timeout=self.lock_timeout, on_wait=self.on_wait)


@dataclasses.dataclass(slots=True)
class _Text:
    text: str
    bom: bytes
    crlf: bool  # the file's line ends are CRLF (it has CRLF and no lone LF)


def _decode(raw: bytes, rel: str) -> _Text:
    """A file's text, or a `ToolError` the model reads: these tools handle UTF-8 text only."""
    if b"\0" in raw:
        raise ToolError(f"`{rel}` is not UTF-8 text (it looks binary); these tools read and edit text files only")
    bom = codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b""
    try:
        text = raw[len(bom):].decode("utf-8")
    except UnicodeDecodeError as e:
        raise ToolError(f"`{rel}` is not UTF-8 text (byte {e.start}); these tools read and edit UTF-8 files only") from None
    crlf = "\r\n" in text and text.count("\n") == text.count("\r\n")
    return _Text(text, bom, crlf)


def _protected(parts: Any) -> bool:
    return any(p.lower() in PROTECTED_NAMES for p in parts)


class _Captured:
    """Stands in for a task's output while a command runs: keeps the last `limit` characters."""

    transient_match: str | None = None

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: deque[str] = deque()
        self.size = 0
        self.dropped = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        while self.size - len(self.parts[0]) >= self.limit:
            gone = self.parts.popleft()
            self.size -= len(gone)
            self.dropped += len(gone)

    log = show = write

    def mark(self, text: str) -> None:
        self.write(f"[parex] {text}\n")

    def flush(self) -> None:
        pass

    def text(self) -> str:
        out = "".join(self.parts)
        cut = self.dropped + max(0, len(out) - self.limit)
        if cut:
            out = f"[... {cut} characters cut]\n" + out[-self.limit:]
        return out


async def _replace(path: Path, content: bytes) -> None:
    """Write through a temporary file and rename, so no reader ever sees half a file; keeps the mode."""
    await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.parex-{secrets.token_hex(4)}")
    try:
        await anyio.Path(tmp).write_bytes(content)
        if await anyio.Path(path).exists():
            os.chmod(tmp, (await anyio.Path(path).stat()).st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if await anyio.Path(tmp).exists():
            await anyio.Path(tmp).unlink()


def _walk(top: Path, root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d.lower() not in HIDDEN_DIRS)
        base = Path(dirpath)
        out.extend((base / f).relative_to(root).as_posix() for f in sorted(filenames) if f.lower() not in PROTECTED_NAMES)
        if len(out) > MAX_LIST_ENTRIES:
            break
    return out
