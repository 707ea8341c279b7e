"""Server-sent events, as chat-completion endpoints stream them: `data:` lines, an event per blank line."""

from __future__ import annotations

import codecs
from typing import AsyncIterator

DONE = "[DONE]"


class ResponseTooLarge(Exception):
    """The server sent more than the limits allow; the message completes "the response from URL …"."""


async def sse_lines(chunks: AsyncIterator[bytes], max_bytes: int, max_line: int) -> AsyncIterator[str]:
    """Decoded lines of a byte stream (LF or CRLF ends), at most `max_bytes` in all and `max_line` a line.

    A long line's pieces are kept in a list and joined once, so reading is linear however the bytes
    are cut; a line past `max_line` fails before it is held whole.
    """
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
    total = 0
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise ResponseTooLarge(f"is larger than {max_bytes} bytes (max_response_bytes)")
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start:end]
            if pending:
                pending.append(piece)
                piece = b"".join(pending)
                pending.clear()
                pending_size = 0
            if len(piece) > max_line:
                raise ResponseTooLarge(f"has a line longer than {max_line} bytes (max_line_bytes)")
            yield decode(piece.rstrip(b"\r"))
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
            pending_size += len(chunk) - start
            if pending_size > max_line:
                raise ResponseTooLarge(f"has a line longer than {max_line} bytes (max_line_bytes)")
    if pending:
        yield decode(b"".join(pending).rstrip(b"\r"), final=True)


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """Yield the `data` of each event (multi-line data joined by newlines), up to and including `[DONE]`.

    Comments (`: keep-alive`) and the other fields (`event:`, `id:`, `retry:`) are skipped: the
    chat-completions stream carries everything in `data`.
    """
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:  # a stream that ends without the final blank line still delivered its last event
        yield "\n".join(data)
