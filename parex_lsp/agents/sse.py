"""Server-sent events, as chat-completion endpoints stream them: `data:` lines, an event per blank line."""

from __future__ import annotations

from typing import AsyncIterator

DONE = "[DONE]"


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
