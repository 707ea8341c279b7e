"""Running `parex-lsp` as a person does: a real process, with pipes or under a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from parex_lsp.isolation.processes import process_start

PAREX = [sys.executable, "-m", "parex_lsp"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def write_plan(ws: Path, toml: str, name: str = "parex.toml") -> Path:
    path = ws / name
    path.write_text(textwrap.dedent(toml).lstrip())
    return path


def parex(*args: str, cwd: Path, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*PAREX, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, **kw)


def ended(pid: int) -> bool:
    """Gone, or a zombie waiting to be reaped."""
    return process_start(pid) is None


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def read_pid(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


class Pty:
    """`parex-lsp ARGS` on a real pseudo-terminal of `columns` × `rows`: what a person's terminal receives."""

    def __init__(self, *args: str, cwd: Path, columns: int = 120, rows: int = 40):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
        env.update(TERM="xterm-256color", COLUMNS=str(columns), LINES=str(rows))
        self.proc = subprocess.Popen([*PAREX, *args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.raw = b""

    def pump(self, timeout: float = 0.1) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], timeout)
            if not ready:
                return
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the other side closed
                return
            if not chunk:
                return
            self.raw += chunk
            timeout = 0

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def wait_for_text(self, needle: str | re.Pattern[str], timeout: float = 30.0) -> None:
        def seen() -> bool:
            self.pump()
            return bool(needle.search(self.text)) if isinstance(needle, re.Pattern) else needle in self.text
        try:
            wait_for(seen, timeout)
        except AssertionError:
            raise AssertionError(f"{needle!r} not shown; the terminal got:\n{self.text[-3000:]}") from None

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"parex-lsp did not end; the terminal got:\n{self.text[-3000:]}")
            self.pump()
        self.pump()
        os.close(self.master)
        return self.proc.returncode


def kill_if_alive(pid: int | None) -> None:
    if pid is not None and not ended(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
