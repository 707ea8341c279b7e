"""A Ray address's `host:port`, and whether anything answers there: asked before Ray connects (Ray itself
keeps retrying an address where nothing listens for minutes) and by `parex-lsp doctor`. Imports no Ray."""

from __future__ import annotations

import socket


def host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `host:port` or `ray://host:port`; None when the address names no port (`auto`)."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def unreachable(address: str, timeout: float) -> str | None:
    """Why nothing answers at `address` (`nothing answers at …`), or None when something does or it names no
    port."""
    target = host_port(address)
    if target is None:
        return None
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as e:
        return f"nothing answers at {address} ({e.strerror or e})"
    return None
