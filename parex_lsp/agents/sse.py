"""Server-sent events, as chat-completion endpoints stream them: `data:` lines, an event per blank line.

`SSEParser.feed(bytes)` returns the events a network chunk completes. It works a chunk at a time (one
decode, one split), so a stream of many tiny events costs little per event, and it is bounded: at most
`max_bytes` in all and `max_line` characters in one line, checked before a long line is held whole.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator

DONE = "[DONE]"


class ResponseTooLarge(Exception):
    """The server sent more than the limits allow; the message completes "the response from URL …"."""


class SSEParser:
    def __init__(self, max_bytes: int = 1 << 62, max_line: int = 1 << 62):
        self.max_bytes, self.max_line = max_bytes, max_line
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self._total = 0
        self._partial: list[str] = []  # the unfinished last line, in pieces
        self._partial_len = 0
        self._data: list[str] = []  # `data` lines of the event being read

    def feed(self, chunk: bytes) -> list[str]:
        """The `data` of each event this chunk completes (multi-line data joined by newlines)."""
        self._total += len(chunk)
        if self._total > self.max_bytes:
            raise ResponseTooLarge(f"is larger than {self.max_bytes} bytes (max_response_bytes)")
        return self._text(self._decode(chunk))

    def close(self) -> list[str]:
        """Events left when the stream ends: a last line without its newline, an event without its blank line."""
        events = self._text(self._decode(b"", True) + "\n")
        if self._data:
            events.append("\n".join(self._data))
            self._data = []
        return events

    def _text(self, text: str) -> list[str]:
        if not text:
            return []
        lines = text.split("\n")
        last = lines.pop()  # after the last newline: unfinished
        if lines and self._partial:  # a newline ends the held line: join its pieces once
            self._partial.append(lines[0])
            lines[0] = "".join(self._partial)
            self._partial, self._partial_len = [], 0
        if last:
            self._partial.append(last)
            self._partial_len += len(last)
            if self._partial_len > self.max_line:
                raise ResponseTooLarge(f"has a line longer than {self.max_line} characters (max_line_bytes)")
        events: list[str] = []
        data = self._data
        for line in lines:
            if len(line) > self.max_line:
                raise ResponseTooLarge(f"has a line longer than {self.max_line} characters (max_line_bytes)")
            if line.endswith("\r"):
                line = line[:-1]
            if not line:
                if data:
                    events.append("\n".join(data))
                    data.clear()
            elif line.startswith("data:"):
                data.append(line[6:] if line.startswith("data: ") else line[5:])
            elif line == "data":
                data.append("")
            # Comments (`: keep-alive`) and the other fields (`event:`, `id:`, `retry:`) are skipped:
            # the chat-completions stream carries everything in `data`.
        return events


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The `data` of each event of a stream of text lines, up to and including `[DONE]`."""
    parser = SSEParser()
    async for line in lines:
        for event in parser._text(line.rstrip("\r\n") + "\n"):
            yield event
    for event in parser.close():
        yield event
