"""The TCP token: a TCP port on this machine can be reached by every local user, and the server runs commands.

`parex-lsp --tcp` makes a fresh random token at each start and writes it, readable by its owner only, to
`$XDG_RUNTIME_DIR/parex/tcp-token` (else `~/.cache/parex/tcp-token`, or `--token-file PATH`). A client reads
that file and passes the token as `initializationOptions.token` of `initialize`; anything else first, or a
wrong token, and the connection is refused and closed.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Any

UNAUTHORIZED = -32001  # a server error code (JSON-RPC reserves -32000..-32099 for them)


class TokenFileError(Exception):
    pass


def default_path() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path.home() / ".cache"
    return base / "parex" / "tcp-token"


def issue(path: Path) -> str:
    """A new token, written to `path` (mode 0600, replacing what was there); its folder is created 0700."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise TokenFileError(f"{folder} is not a folder only you can write to: the token cannot be kept there "
                             "(choose another place with --token-file)")
    token = secrets.token_urlsafe(32)
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


def revoke(path: Path, token: str) -> None:
    """Remove the token file if it still holds this server's token (another server may have replaced it)."""
    with contextlib.suppress(OSError):
        if path.read_text().strip() == token:
            path.unlink()


def given(message: Any) -> str | None:
    """The token an `initialize` message carries, else None."""
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return None
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    token = options.get("token") if isinstance(options, dict) else None
    return token if isinstance(token, str) else None


def matches(candidate: str | None, token: str) -> bool:
    return candidate is not None and hmac.compare_digest(candidate.encode(), token.encode())
