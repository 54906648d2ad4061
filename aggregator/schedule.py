"""When to poll a source next: a pure function of its state, the last outcome and `now`.

Polling state lives in the database (`next_poll_at`), so any process that ticks
often enough is a scheduler and a restart loses no timer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# Failures back off exponentially from the source's interval, doubling per
# consecutive error, but never beyond max_interval.
_MAX_BACKOFF_EXPONENT = 10
# +/- this fraction of the delay, so sources that failed together do not retry together.
_JITTER = 0.1
# The longest Retry-After honoured: a publisher may ask for a pause, but "come back in
# 2099" (or in 10**30 seconds, which overflows a timedelta) is a bug or hostile, and
# must not silence a source for good.
MAX_RETRY_AFTER = timedelta(days=7)
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?([0-9]+)\"?", re.IGNORECASE)
# Longer than any max_interval: next_poll clamps it anyway, this only keeps the
# arithmetic inside timedelta's range whatever a server sends.
_MAX_MAX_AGE = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class Policy:
    """A source's polling bounds, from its own `interval` and the global ones."""

    interval: timedelta
    min_interval: timedelta
    max_interval: timedelta


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a poll told the scheduler."""

    status: str  # "ok", "not_modified", "unchanged", "error", "gone"
    error_count: int = 0  # consecutive errors including this one
    retry_after: timedelta | None = None  # from a Retry-After header
    max_age: timedelta | None = None  # from Cache-Control: max-age


def next_poll(policy: Policy, outcome: Outcome, now: datetime, jitter: float = 0.0) -> datetime:
    """The earliest time the source may be polled again.

    `jitter` in [-1, 1] spreads retries; callers pass a random value, tests pass 0.
    """
    delay = policy.interval
    if outcome.status == "error" and outcome.error_count > 0:
        exponent = min(outcome.error_count - 1, _MAX_BACKOFF_EXPONENT)
        delay = policy.interval * (2**exponent)
        delay += delay * _JITTER * max(-1.0, min(1.0, jitter))
    if outcome.max_age is not None:
        delay = max(delay, outcome.max_age)
    delay = max(policy.min_interval, min(delay, policy.max_interval))
    if outcome.retry_after is not None:
        # The publisher asked explicitly; that outranks our own ceiling.
        delay = max(delay, outcome.retry_after)
    return now + delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as a delay: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²" is a digit to isdigit(), not to int()
        digits = text.lstrip("0") or "0"
        # Length first: a header of thousands of digits is past int()'s own limit.
        if len(digits) > 9:
            return MAX_RETRY_AFTER
        return min(MAX_RETRY_AFTER, timedelta(seconds=int(digits)))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return min(MAX_RETRY_AFTER, max(timedelta(0), when - now))


def parse_max_age(cache_control: str | None) -> timedelta | None:
    """Cache-Control max-age as a delay, unless the response forbids caching outright."""
    if not cache_control:
        return None
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return None
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return None
    digits = match.group(1).lstrip("0") or "0"
    if len(digits) > 9:
        return _MAX_MAX_AGE
    return min(_MAX_MAX_AGE, timedelta(seconds=int(digits)))
