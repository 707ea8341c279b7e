"""The server's output: never blocks the event loop, and holds a bounded amount for a client that reads slowly.

pygls' stdio writer calls `write` + `flush` on stdout: once the pipe is full (the client stopped reading) the
whole server, timeouts included, waits for the client. Here every message goes to an asyncio transport, which
writes what the pipe takes and buffers the rest. Over `CONGESTED` bytes waiting, event sinks hold back and
merge what they can (output chunks, progress reports, diagnostics); over `LIMIT`, the client is taken as gone:
the connection is closed and its runs are ended, as when it disconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

CONGESTED = 4 * 1024 * 1024  # bytes not yet taken by the client: slow down what can be merged
LIMIT = 256 * 1024 * 1024  # bytes not yet taken by the client: it is not reading at all


class TransportWriter:
    """pygls' writer interface (`write`, `close`) over an asyncio write transport."""

    def __init__(self, transport: asyncio.WriteTransport, on_overflow: Callable[[], None],
                 limit: int = LIMIT, congested: int = CONGESTED):
        self.transport, self.on_overflow = transport, on_overflow
        self.limit, self.congested_at = limit, congested
        self.closed = False
        self.peak = 0  # the largest backlog seen, for tests and benchmarks
        self._batch: list[bytes] = []  # messages of this loop turn, written together: one syscall, not one each
        self._batched = 0  # bytes in _batch

    @property
    def backlog(self) -> int:
        return 0 if self.closed else self.transport.get_write_buffer_size() + self._batched

    def congested(self) -> bool:
        return self.backlog >= self.congested_at

    def write(self, data: bytes) -> None:
        if self.closed or self.transport.is_closing():
            return  # the client is gone: what the runs still report has no reader
        if not self._batch:
            asyncio.get_running_loop().call_soon(self.flush)
        self._batch.append(data)
        self._batched += len(data)

    def flush(self) -> None:
        data = b"".join(self._batch)
        self._batch.clear()
        self._batched = 0
        if not data or self.closed or self.transport.is_closing():
            return
        self.transport.write(data)
        backlog = self.transport.get_write_buffer_size()
        self.peak = max(self.peak, backlog)
        if backlog > self.limit:
            log.warning("the client has not read %d bytes of output: taking it as gone", backlog)
            self.abort()
            self.on_overflow()

    async def drain(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) until what was written has been taken by the client."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.closed and self.backlog and loop.time() < deadline:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        """Close once what is buffered has been written (asyncio transports flush before closing)."""
        if not self.closed:
            self.flush()
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()
