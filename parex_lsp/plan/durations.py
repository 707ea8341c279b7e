"""Durations as people write them in plans: "90s", "10m", "1h30m", "250ms", or seconds as a number."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_DURATION = 365 * 24 * 3600.0  # a year: longer is a typo, and timers overflow far beyond it


def parse_duration(value: object, allow_zero: bool = False) -> float:
    """Seconds as a float; ValueError with a message a user can act on."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int) and abs(value) > MAX_DURATION:
        seconds = math.copysign(math.inf, value)  # float() of a 400-digit integer overflows
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif text and _PART.sub("", text) == "":
            seconds = sum(float(n) * _UNIT[u] for n, u in _PART.findall(text))
        else:
            raise ValueError(f'bad duration {value!r}: write e.g. "90s", "10m", "1h" or a number of seconds')
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError(f"duration {value!r} is too long (at most a year, {MAX_DURATION:g} seconds)")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"duration must be {'0 or more' if allow_zero else 'positive'}, got {value!r}")
    return seconds
