"""When to poll a source next: pure functions of its state, the last outcome and `now`.

Polling state lives in the database (`next_poll_at`, a host's Retry-After), so any
process that ticks often enough is a scheduler and a restart loses no timer.

The rules of `next_poll`, in order:

1. A success (200, 304, unchanged body) waits the source's interval, lengthened —
   never shortened — by the publisher's hints: `Cache-Control: max-age` and the
   feed's RSS `<ttl>` / `sy:updatePeriod` + `sy:updateFrequency`. Polling sooner than
   the publisher says anything can change only costs them requests.
2. A failure backs off exponentially: interval × 2^(errors − 1), at most
   max_interval, less a random part of up to `JITTER` of it, so sources that failed
   together (one host down) do not retry together. A success resets the count (the
   store does), so the next delay is the plain interval again.
3. The result is kept within [min_interval, max_interval].
4. `Retry-After` (429/503) is a floor above everything, max_interval included: the
   publisher asked explicitly. Only an absurd one is cut, at `MAX_RETRY_AFTER`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TypeVar

from aggregator.model import SourceState

T = TypeVar("T")

SUCCESS = frozenset({"ok", "not_modified", "unchanged"})
# Doubling stops here; max_interval caps long before for any sane interval.
_MAX_BACKOFF_EXPONENT = 16
# Up to this fraction of a backoff delay is taken off at random. Taking off (rather
# than adding) keeps a backoff pinned at max_interval spread out below it.
JITTER = 0.2
# A Retry-After of months is a server's mistake; a week is the most we honour.
MAX_RETRY_AFTER = timedelta(days=7)
# Sources due at once (new, or overdue after downtime) start within this window, or
# within their interval when that is shorter, each at its own fixed offset in it.
FIRST_POLL_SPREAD = timedelta(seconds=60)
# [0-9], not \d: "²" is a digit to the regex engine and not to int().
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
    retry_after: timedelta | None = None  # from a 429/503 Retry-After header
    max_age: timedelta | None = None  # from Cache-Control: max-age (less Age)
    hint: timedelta | None = None  # the feed's own <ttl> / sy:updatePeriod


def next_poll(policy: Policy, outcome: Outcome, now: datetime, jitter: float = 0.0) -> datetime:
    """The earliest time the source may be polled again.

    `jitter` in [0, 1] is how much of `JITTER` a failure's backoff loses; callers pass
    a random value, tests pass fixed ones. Successes ignore it.
    """
    if outcome.status in SUCCESS:
        delay = max(
            policy.interval,
            outcome.max_age or timedelta(0),
            outcome.hint or timedelta(0),
        )
    elif outcome.status == "error":
        exponent = min(max(outcome.error_count, 1) - 1, _MAX_BACKOFF_EXPONENT)
        delay = min(policy.interval * (2**exponent), policy.max_interval)
        # After the cap, so that backoffs pinned at max_interval still spread out.
        delay -= delay * JITTER * max(0.0, min(1.0, jitter))
    else:  # "gone": never claimed again, but the row still gets a plausible time
        delay = policy.max_interval
    delay = max(policy.min_interval, min(delay, policy.max_interval))
    if outcome.retry_after is not None:
        delay = max(delay, min(outcome.retry_after, MAX_RETRY_AFTER))
    return now + delay


def publisher_hint(ttl_minutes: int | None, update_period_minutes: int | None) -> timedelta | None:
    """The longer of the feed's <ttl> and sy:updatePeriod/Frequency, if it gave either."""
    given = [minutes for minutes in (ttl_minutes, update_period_minutes) if minutes]
    return timedelta(minutes=max(given)) if given else None


def first_poll(name: str, now: datetime, window: timedelta) -> datetime:
    """When a source due at once should really start: a fixed offset in `window` that
    depends only on its name, so a restart spreads its polls the same way every time
    and no host gets all its sources' requests in the same second."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    return now + window * fraction


def spread_window(policy: Policy, *, remote: bool) -> timedelta:
    """How widely a source's first poll may be put off: never past one interval, and
    not at all for local files, which cost no publisher anything."""
    if not remote:
        return timedelta(0)
    return min(policy.interval, FIRST_POLL_SPREAD)


def due_at(state: SourceState) -> datetime | None:
    """When the source will really be claimed next: its own time or its host's Retry-After,
    whichever is later; None when never (gone, disabled) or at once (never polled)."""
    if state.gone or not state.enabled or state.next_poll_at is None:
        return None
    if state.host_not_before is not None and state.host_not_before > state.next_poll_at:
        return state.host_not_before
    return state.next_poll_at


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


def parse_max_age(cache_control: str | None, age: str | None = None) -> timedelta | None:
    """How long the response stays fresh: Cache-Control max-age less the Age the response
    already has; None when absent or when the response forbids caching outright."""
    if not cache_control:
        return None
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return None
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return None
    digits = match.group(1).lstrip("0") or "0"
    # Length first: a header of thousands of digits is past int()'s own limit.
    if len(digits) > 9:
        return _MAX_MAX_AGE
    fresh = int(digits)
    if age is not None and age.strip().isascii() and age.strip().isdigit():
        already = age.strip().lstrip("0") or "0"
        fresh = 0 if len(already) > 9 else max(0, fresh - int(already))
    return min(_MAX_MAX_AGE, timedelta(seconds=fresh))


def host_order(
    items: Sequence[T], host_of: Callable[[T], str | None], *, hosts_at_once: int, run: int
) -> list[T]:
    """The order in which to fetch `items` so that each host's connections are used
    again: a host's items come in runs of up to `run`, `hosts_at_once` runs side by side,
    their items interleaved.

    Dealt round-robin over many hosts, consecutive requests each go to another host, and
    a connection pool smaller than the number of hosts has closed a host's connection
    before its next request comes (in the benchmark, 2,000 requests to 300 hosts opened
    2,000 connections; in this order, 600). Runs, rather than a host's every item at
    once, keep one host with many sources from filling every place in flight: only
    `per_host` of them can be fetched at a time. With `hosts_at_once` = concurrency /
    per_host, the hosts of a window fill the fetcher exactly. A host's items keep their
    order; items without a host (local files) each stand alone."""
    runs_by_host: dict[Hashable, list[list[T]]] = {}
    for index, item in enumerate(items):
        runs = runs_by_host.setdefault(host_of(item) or ("no host", index), [[]])
        if len(runs[-1]) == run:
            runs.append([])
        runs[-1].append(item)
    # Every host's first run, then every host's second, ...: hosts in order of first sight.
    deepest = max((len(runs) for runs in runs_by_host.values()), default=0)
    hosts = list(runs_by_host.values())
    sequence = [runs[depth] for depth in range(deepest) for runs in hosts if depth < len(runs)]
    ordered: list[T] = []
    for start in range(0, len(sequence), hosts_at_once):
        window = sequence[start : start + hosts_at_once]
        for position in range(max(len(each) for each in window)):
            ordered.extend(each[position] for each in window if position < len(each))
    return ordered
