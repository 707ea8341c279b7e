"""The reset time of a CLI's usage limit, read from the words each CLI uses."""

from __future__ import annotations

import datetime as dt

import pytest

from parex_lsp.agents.usage_limit import reset_delay

NOW = dt.datetime(2025, 10, 10, 12, 0, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(("message", "seconds"), [
    (f"Claude AI usage limit reached|{int(NOW) + 90}", 90),
    ("You've hit your usage limit. Upgrade to Pro, or try again in 2 hours 5 minutes.", 7500),
    ("You've hit your usage limit. try again in 4 days 20 hours 9 minutes", 4 * 86400 + 20 * 3600 + 9 * 60),
    ("Quota exceeded for quota metric 'Generate Content'. Please retry in 41.2s.", 41.2),
    ("usage limit reached; resets at 2025-10-10T12:30:00Z", 1800),
    ("usage limit reached; resets at 2025-10-10T14:30:00+02:00", 1800),
    ("5-hour limit reached ∙ resets 3pm (UTC)", 3 * 3600),
    ("5-hour limit reached ∙ resets 11am (UTC)", 23 * 3600),  # passed today: tomorrow's
    ("Claude usage limit reached. Your limit will reset at 12:00:30 PM (UTC).", 30),
])
def test_reset_times_in_each_clis_words(message: str, seconds: float):
    assert reset_delay(message, NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("message", [
    "error: file not found; try again in 5 seconds",  # no limit named
    "rate limit reached",  # a limit without a time: the caller guesses
    "usage limit reached, resets 3",  # a bare number is no time
    "",
])
def test_no_reset_time(message: str):
    assert reset_delay(message, NOW) is None


def test_a_reset_in_the_past_is_now():
    assert reset_delay(f"usage limit reached|{int(NOW) - 10}", NOW) == 0
