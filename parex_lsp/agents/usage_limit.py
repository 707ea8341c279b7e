"""When a coding-agent CLI's quota resets, read from the message it ends with.

The CLIs say it in their own words:

- Claude Code: `Claude AI usage limit reached|1760040000` (the reset as epoch seconds), or
  `5-hour limit reached ∙ resets 3pm (Europe/Berlin)`, `Your limit will reset at 3:30 PM`;
- Codex: `You've hit your usage limit. … try again in 2 hours 5 minutes.` or `… try again at 3:04 PM.`;
- Gemini CLI: `Quota exceeded … Please retry in 41.2s.`, or an ISO time (`resets at 2025-10-10T15:00:00Z`).

`reset_delay` answers seconds from now, or None when the text names no usage limit with a time.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_LIMIT = re.compile(r"usage limit|limit reached|hit your (?:usage )?limit|quota|rate.?limit|resource.?exhausted|"
                    r"too many requests|\b429\b", re.IGNORECASE)
_EPOCH = re.compile(r"limit reached\|(\d{10})\b", re.IGNORECASE)
_ISO = re.compile(r"\b(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION_PART = r"(\d+(?:\.\d+)?)\s*(days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b"
_IN = re.compile(r"(?:try again|retry|resets?|available again)\s+(?:in|after)\s+((?:" + _DURATION_PART
                 + r"(?:\s*,?\s*(?:and\s+)?)?)+)", re.IGNORECASE)
_PART = re.compile(_DURATION_PART, re.IGNORECASE)
_CLOCK = re.compile(r"(?:resets?|try again|available again)\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*"
                    r"(am|pm)?(?:\s*\(([A-Za-z_]+(?:/[A-Za-z_+-]+)*)\))?", re.IGNORECASE)


def reset_delay(text: str, now: float | None = None) -> float | None:
    """Seconds until the usage limit `text` reports resets (0 when already past); None if it names none."""
    if not text or not _LIMIT.search(text):
        return None
    now = time.time() if now is None else now
    if m := _EPOCH.search(text):
        return max(0.0, float(m.group(1)) - now)
    if m := _IN.search(text):
        return sum(float(n) * _UNITS[u[0].lower()] for n, u in _PART.findall(m.group(1)))
    if m := _ISO.search(text):
        try:
            when = dt.datetime.fromisoformat(m.group(1).replace(" ", "T"))
        except ValueError:
            return None
        return max(0.0, when.timestamp() - now)  # a time without a zone is local, as CLIs print it
    if m := _CLOCK.search(text):
        return _next_clock(m, now)
    return None


def _next_clock(m: re.Match[str], now: float) -> float | None:
    """`3pm`, `15:04`, `3:04:05 PM (Europe/Berlin)`: the next time the clock shows it."""
    hour, minute, second = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
    half = (m.group(4) or "").lower()
    if half and not 1 <= hour <= 12:
        return None
    if half:
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59 or (not half and m.group(2) is None):
        return None  # a bare number ("resets 3") is no time
    zone: dt.tzinfo | None = None
    if m.group(5):
        try:
            zone = ZoneInfo(m.group(5))
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    current = dt.datetime.fromtimestamp(now, zone) if zone else dt.datetime.fromtimestamp(now).astimezone()
    when = current.replace(hour=hour, minute=minute, second=second, microsecond=0)
    if when.timestamp() < now:
        when += dt.timedelta(days=1)
    return when.timestamp() - now
