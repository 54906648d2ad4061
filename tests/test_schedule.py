"""The scheduling decision, as a table of plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.schedule import Outcome, Policy, next_poll, parse_max_age, parse_retry_after

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = Policy(
    interval=timedelta(minutes=30),
    min_interval=timedelta(minutes=5),
    max_interval=timedelta(days=1),
)
M = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("case", "outcome", "delay"),
    [
        ("success waits one interval", Outcome("ok"), 30 * M),
        ("304 waits one interval", Outcome("not_modified"), 30 * M),
        ("unchanged body waits one interval", Outcome("unchanged"), 30 * M),
        ("first error waits one interval", Outcome("error", error_count=1), 30 * M),
        ("second error doubles", Outcome("error", error_count=2), 60 * M),
        ("fourth error is 8 intervals", Outcome("error", error_count=4), 240 * M),
        ("backoff is capped at max_interval", Outcome("error", error_count=30), 1440 * M),
        ("max-age longer than interval wins", Outcome("ok", max_age=2 * 60 * M), 120 * M),
        ("max-age shorter than interval is ignored", Outcome("ok", max_age=M), 30 * M),
        ("max-age past max_interval is capped", Outcome("ok", max_age=48 * 60 * M), 1440 * M),
        (
            "Retry-After beyond max_interval is honoured",
            Outcome("error", 1, retry_after=2880 * M),
            2880 * M,
        ),
        (
            "Retry-After shorter than backoff keeps backoff",
            Outcome("error", 3, retry_after=M),
            120 * M,
        ),
    ],
)
def test_next_poll_delay(case: str, outcome: Outcome, delay: timedelta) -> None:
    assert next_poll(POLICY, outcome, NOW) - NOW == delay, case


def test_interval_below_min_interval_is_raised_to_it() -> None:
    policy = Policy(interval=M, min_interval=5 * M, max_interval=60 * M)
    assert next_poll(policy, Outcome("ok"), NOW) - NOW == 5 * M


@pytest.mark.parametrize("jitter", [-1.0, -0.3, 0.0, 0.5, 1.0, 7.0])
def test_jitter_stays_within_ten_percent_of_the_backoff(jitter: float) -> None:
    delay = next_poll(POLICY, Outcome("error", error_count=3), NOW, jitter=jitter) - NOW
    assert 108 * M <= delay <= 132 * M


def test_jitter_does_not_move_successful_polls() -> None:
    assert next_poll(POLICY, Outcome("ok"), NOW, jitter=1.0) - NOW == 30 * M


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 0 ", timedelta(0)),
        ("Tue, 24 Nov 2026 13:00:00 GMT", timedelta(hours=1)),
        ("Tue, 24 Nov 2026 11:00:00 GMT", timedelta(0)),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=3600", timedelta(hours=1)),
        ("public, max-age=600, must-revalidate", timedelta(minutes=10)),
        ('max-age="60"', timedelta(minutes=1)),
        ("s-maxage=100", None),
        ("no-cache, max-age=3600", None),
        ("no-store", None),
        (None, None),
    ],
)
def test_parse_max_age(value: str | None, expected: timedelta | None) -> None:
    assert parse_max_age(value) == expected
