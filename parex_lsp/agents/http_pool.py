"""One HTTP client per model agent per run, shared by its concurrent tasks.

A client holds the connection pool (keep-alive, so a fan-out reuses connections) and an SSL context.
Building an SSL context costs tens of milliseconds of CPU on the event loop, so there is one for the
whole process; a client lives while any task of its agent in its run uses it.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx

KEEPALIVE = 64  # idle connections kept per agent


@functools.cache
def ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


_clients: dict[tuple[str, str], list[Any]] = {}  # (run id, agent name) -> [client, users]


@contextlib.asynccontextmanager
async def shared_client(run_id: str, agent: str, timeout: httpx.Timeout,
                        tls: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The agent's client in this run, opened by its first user and closed by its last. `tls` False (a
    plain-http base_url; redirects are never followed) needs no SSL context at all."""
    key = (run_id, agent)
    entry = _clients.get(key)
    if entry is None:
        # No connection cap: the engine's concurrency limits decide how many calls are in flight.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=KEEPALIVE)
        client = httpx.AsyncClient(timeout=timeout, limits=limits, verify=ssl_context() if tls else False,
                                   follow_redirects=False)
        entry = _clients[key] = [client, 0]
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0 and _clients.get(key) is entry:
            del _clients[key]
            with anyio.CancelScope(shield=True):
                await entry[0].aclose()


def open_clients() -> int:
    """How many shared clients are open (tests check that none is left behind)."""
    return len(_clients)
