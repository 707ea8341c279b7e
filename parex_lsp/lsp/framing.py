"""Reading LSP's `Content-Length` framing from an untrusted byte stream, without ever going deaf.

pygls' own reader (pygls/io_.py `run_async`) trusts the header: a huge length makes it allocate or wait
forever, a length a few bytes off or a lowercase `content-length` leaves it waiting for a body that never
comes. `Framer` is a pure state machine (bytes in, `Message`s and `Bad` frames out) that:

- takes header names in any case and ignores headers other than Content-Length;
- refuses a body over `MAX_MESSAGE` (answering its id when the start of the body names one) and skips it,
  picking up again at the next header it sees;
- recovers from a wrong length: a body that does not parse, or a header of the next message showing up
  inside a body that is not complete yet, is read as the one JSON value at its start;
- when the stream goes quiet in the middle of a body that already holds one complete JSON value
  (`stalled`), takes that value: a length that was too long does not leave the last request unanswered.

JSON-RPC itself stays pygls': what comes out goes to `JsonRPCProtocol.structure_message`/`handle_message`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE = 64 * 1024 * 1024  # bytes of one message body
HEADER_LIMIT = 8 * 1024  # bytes of a header block
PROBE = 4096  # bytes at the start of a body searched for its id
KEEP = 64  # bytes kept while skipping, so a header split across two reads is still found

PARSE_ERROR, INVALID_REQUEST = -32700, -32600

# A Content-Length line with its line end. A raw line end never occurs inside a JSON string, and outside
# strings these words are not JSON: this cannot be mistaken for the text of a body.
HEADER_START = re.compile(rb"content-length[ \t]*:[ \t]*\d{1,40}[ \t]*\r?\n", re.IGNORECASE)
HEADER_END = re.compile(rb"\r?\n\r?\n")
ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\\r\n]|\\.){0,200}")')
_decoder = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class Message:
    value: Any  # the decoded JSON value


@dataclass(frozen=True, slots=True)
class Bad:
    code: int
    message: str
    id: int | str | None  # the id the broken message carried, when it could be read


def probe_id(data: bytes | bytearray) -> int | str | None:
    """The `"id"` near the start of a message that could not be decoded (clients put it first)."""
    m = ID.search(bytes(data[:PROBE]))
    if m is None:
        return None
    try:
        value = json.loads(m.group(1))
    except ValueError:
        return None
    return value if isinstance(value, (int, str)) else None


def _leading_value(data: bytes | bytearray) -> tuple[Any, int] | None:
    """(value, bytes used) when `data` starts with one complete JSON value followed only by whitespace or by
    the next message's header; else None."""
    text = bytes(data).decode("utf-8", errors="surrogateescape")
    start = len(text) - len(text.lstrip())
    try:
        value, end = _decoder.raw_decode(text, start)
    except ValueError:
        return None
    rest = text[end:].lstrip()
    if rest and not HEADER_START.match(rest.encode("utf-8", errors="surrogateescape")):
        return None
    return value, len(text[:end].encode("utf-8", errors="surrogateescape"))


class Framer:
    def __init__(self, max_message: int = MAX_MESSAGE):
        self.max_message = max_message
        self._buf = bytearray()
        self._need: int | None = None  # the body length of the header just read
        self._skip = 0  # bytes of a refused body still to discard
        self._scan = 0  # where the look for a next header inside an incomplete body goes on from

    @property
    def in_body(self) -> bool:
        return self._need is not None and bool(self._buf)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message | Bad]:
        self._buf += data
        out: list[Message | Bad] = []
        while self._step(out):
            pass
        return out

    def stalled(self) -> list[Message | Bad]:
        """The stream went quiet inside a body: take the one JSON value it holds, if it holds one."""
        if self._need is None or not self._buf:
            return []
        found = _leading_value(self._buf)
        if found is None:
            return []
        del self._buf[:found[1]]
        self._need, self._scan = None, 0
        out: list[Message | Bad] = [Message(found[0])]
        while self._step(out):
            pass
        return out

    # -- the machine: each step consumes something and returns True, or returns False to wait for bytes --

    def _step(self, out: list[Message | Bad]) -> bool:
        if self._skip:
            return self._skipping()
        if self._need is None:
            return self._header(out)
        return self._body(out)

    def _skipping(self) -> bool:
        m = HEADER_START.search(self._buf)
        if m is not None:  # the next message: the refused body was shorter than it said
            del self._buf[:m.start()]
            self._skip = 0
            return True
        if len(self._buf) >= self._skip:
            del self._buf[:self._skip]
            self._skip = 0
            return True
        drop = len(self._buf) - KEEP
        if drop > 0:
            del self._buf[:drop]
            self._skip -= drop
        return False

    def _header(self, out: list[Message | Bad]) -> bool:
        start = HEADER_START.search(self._buf)
        if start is None:
            if len(self._buf) > HEADER_LIMIT:  # no header anywhere: garbage
                del self._buf[:len(self._buf) - KEEP]
            return False
        if start.start():  # bytes before the header: the rest of a message whose length was too short
            del self._buf[:start.start()]
        end = HEADER_END.search(self._buf)
        if end is None:
            if len(self._buf) > HEADER_LIMIT:
                out.append(Bad(PARSE_ERROR, f"a message header longer than {HEADER_LIMIT} bytes", None))
                del self._buf[:1]  # drop this header's start; look for the next one
                return True
            return False
        head = bytes(self._buf[:end.start()]).decode("latin-1")
        del self._buf[:end.end()]
        length: int | None = None
        for line in head.splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())  # digits only: HEADER_START matched them
        if length is None:
            return True
        if length > self.max_message:
            out.append(Bad(INVALID_REQUEST, f"message of {length} bytes is over the limit of {self.max_message} "
                           "bytes; it was skipped", probe_id(self._buf)))
            self._skip = length
            return True
        self._need, self._scan = length, 0
        return True

    def _body(self, out: list[Message | Bad]) -> bool:
        need = self._need
        assert need is not None
        if len(self._buf) < need:
            # A header inside an incomplete body: the length was too long, and the next message came.
            m = HEADER_START.search(self._buf, max(self._scan, 1))
            self._scan = max(0, len(self._buf) - KEEP)
            if m is None:
                return False
            return self._recover(out, m.start())
        body = bytes(self._buf[:need])
        try:
            value = json.loads(body)
        except ValueError:
            nxt = HEADER_START.search(self._buf, 1)
            return self._recover(out, nxt.start() if nxt else len(self._buf))
        del self._buf[:need]
        self._need = None
        out.append(Message(value))
        return True

    def _recover(self, out: list[Message | Bad], upto: int) -> bool:
        """The length was wrong: take the one JSON value before `upto`, or report the message as unreadable."""
        found = _leading_value(self._buf[:upto])
        if found is not None:
            out.append(Message(found[0]))
            del self._buf[:found[1]]
        else:
            out.append(Bad(PARSE_ERROR, "a message that is not valid JSON (or whose Content-Length is wrong)",
                           probe_id(self._buf[:upto])))
            del self._buf[:max(upto, 1)]
        self._need, self._scan = None, 0
        return True
