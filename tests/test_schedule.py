"""The scheduling decision, as tables of plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.schedule import (
    FIRST_POLL_SPREAD,
    JITTER,
    MAX_RETRY_AFTER,
    Outcome,
    Policy,
    first_poll,
    host_order,
    next_poll,
    parse_max_age,
    parse_retry_after,
    publisher_hint,
    spread_window,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = Policy(
    interval=timedelta(minutes=30),
    min_interval=timedelta(minutes=5),
    max_interval=timedelta(days=1),
)
S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("case", "outcome", "delay"),
    [
        # plain interval
        ("success waits one interval", Outcome("ok"), 30 * M),
        ("304 waits one interval", Outcome("not_modified"), 30 * M),
        ("unchanged body waits one interval", Outcome("unchanged"), 30 * M),
        # backoff: interval × 2^(errors-1), capped
        ("first error waits one interval", Outcome("error", error_count=1), 30 * M),
        ("second error doubles", Outcome("error", error_count=2), 60 * M),
        ("third error doubles again", Outcome("error", error_count=3), 120 * M),
        ("fourth error is 8 intervals", Outcome("error", error_count=4), 240 * M),
        ("backoff is capped at max_interval", Outcome("error", error_count=30), D),
        ("absurd error count is still capped", Outcome("error", error_count=10_000), D),
        ("error count 0 is treated as the first", Outcome("error", error_count=0), 30 * M),
        ("success after errors is one interval (reset)", Outcome("ok", error_count=0), 30 * M),
        # Cache-Control max-age: a floor, within max_interval
        ("max-age longer than interval wins", Outcome("ok", max_age=2 * H), 2 * H),
        ("max-age on a 304 counts too", Outcome("not_modified", max_age=3 * H), 3 * H),
        ("max-age shorter than interval is ignored", Outcome("ok", max_age=M), 30 * M),
        ("max-age past max_interval is capped", Outcome("ok", max_age=2 * D), D),
        ("max-age does not shorten a backoff", Outcome("error", 3, max_age=M), 120 * M),
        # RSS <ttl> and sy:updatePeriod hints: lengthen only, within bounds
        ("hint longer than interval wins", Outcome("ok", hint=H), H),
        ("hint shorter than interval is ignored", Outcome("ok", hint=10 * M), 30 * M),
        ("hint past max_interval is capped", Outcome("unchanged", hint=7 * D), D),
        ("hint and max-age: the longer", Outcome("ok", max_age=2 * H, hint=3 * H), 3 * H),
        ("hint is no excuse on failure", Outcome("error", 1, hint=5 * H), 30 * M),
        # Retry-After: a floor above everything, max_interval included
        ("Retry-After past max_interval is honoured", Outcome("error", retry_after=2 * D), 2 * D),
        ("Retry-After longer than backoff wins", Outcome("error", 1, retry_after=3 * H), 3 * H),
        ("shorter Retry-After keeps the backoff", Outcome("error", 3, retry_after=M), 2 * H),
        ("Retry-After of a year is a week", Outcome("error", retry_after=365 * D), MAX_RETRY_AFTER),
        ("Retry-After 0 keeps the backoff", Outcome("error", 2, retry_after=timedelta(0)), H),
        # gone sources are not claimed again, but get a sane time
        ("gone waits max_interval", Outcome("gone", 1), D),
    ],
)  # fmt: skip
def test_next_poll_delay(case: str, outcome: Outcome, delay: timedelta) -> None:
    assert next_poll(POLICY, outcome, NOW) - NOW == delay, case


@pytest.mark.parametrize(
    ("case", "policy", "outcome", "delay"),
    [
        ("interval below min_interval is raised", Policy(M, 5 * M, H), Outcome("ok"), 5 * M),
        ("interval above max_interval is cut", Policy(2 * D, 5 * M, D), Outcome("ok"), D),
        ("a short source interval is kept", Policy(10 * M, 5 * M, D), Outcome("ok"), 10 * M),
        ("backoff from a short interval", Policy(10 * M, 5 * M, D), Outcome("error", 3), 40 * M),
        ("hours-long interval doubles to the cap", Policy(12 * H, M, D), Outcome("error", 3), D),
        ("seconds for tests", Policy(S, S, H), Outcome("error", 4), 8 * S),
    ],
)
def test_next_poll_respects_the_policy_bounds(
    case: str, policy: Policy, outcome: Outcome, delay: timedelta
) -> None:
    assert next_poll(policy, outcome, NOW) - NOW == delay, case


@pytest.mark.parametrize("jitter", [0.0, 0.3, 0.5, 1.0, -7.0, 7.0])
def test_jitter_takes_at_most_its_share_off_the_backoff(jitter: float) -> None:
    delay = next_poll(POLICY, Outcome("error", error_count=3), NOW, jitter=jitter) - NOW
    assert (1 - JITTER) * 120 * M <= delay <= 120 * M


def test_jitter_spreads_a_backoff_pinned_at_max_interval_below_it() -> None:
    delays = {next_poll(POLICY, Outcome("error", 40), NOW, jitter=j / 10) - NOW for j in range(11)}
    assert len(delays) == 11
    assert max(delays) == D
    assert min(delays) >= D * (1 - JITTER)


def test_jitter_does_not_move_successful_polls() -> None:
    assert next_poll(POLICY, Outcome("ok"), NOW, jitter=1.0) - NOW == 30 * M


def test_jitter_never_undercuts_retry_after() -> None:
    outcome = Outcome("error", 1, retry_after=40 * M)
    assert next_poll(POLICY, outcome, NOW, jitter=1.0) - NOW == 40 * M


@pytest.mark.parametrize(
    ("ttl", "period", "expected"),
    [
        (None, None, None),
        (60, None, H),
        (None, 1440, D),
        (120, 60, 2 * H),
        (30, 720, 12 * H),
        (0, None, None),
    ],
)
def test_publisher_hint_is_the_longer_of_ttl_and_update_period(
    ttl: int | None, period: int | None, expected: timedelta | None
) -> None:
    assert publisher_hint(ttl, period) == expected


def test_first_poll_is_a_fixed_offset_per_source_inside_the_window() -> None:
    window = FIRST_POLL_SPREAD
    names = [f"source-{n}" for n in range(200)]
    offsets = [first_poll(name, NOW, window) - NOW for name in names]
    assert all(timedelta(0) <= offset < window for offset in offsets)
    # The same source gets the same offset after a restart, whatever the time.
    later = NOW + 3 * H
    assert [first_poll(name, later, window) - later for name in names] == offsets
    # … and 200 sources do not bunch up: every tenth of the window gets some.
    tenths = {int(offset / window * 10) for offset in offsets}
    assert tenths == set(range(10))


@pytest.mark.parametrize(
    ("policy", "remote", "window"),
    [
        (POLICY, True, FIRST_POLL_SPREAD),
        (Policy(10 * S, S, H), True, 10 * S),
        (POLICY, False, timedelta(0)),
    ],
    ids=["interval-longer-than-spread", "interval-shorter", "local-file"],
)
def test_spread_window(policy: Policy, remote: bool, window: timedelta) -> None:
    assert spread_window(policy, remote=remote) == window


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 0 ", timedelta(0)),
        ("Tue, 24 Nov 2026 13:00:00 GMT", timedelta(hours=1)),
        ("Tue, 24 Nov 2026 11:00:00 GMT", timedelta(0)),
        ("Tuesday, 24-Nov-26 13:00:00 GMT", timedelta(hours=1)),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "age", "expected"),
    [
        ("max-age=3600", None, timedelta(hours=1)),
        ("public, max-age=600, must-revalidate", None, timedelta(minutes=10)),
        ('max-age="60"', None, timedelta(minutes=1)),
        ("max-age=3600", "600", timedelta(minutes=50)),
        ("max-age=60", "600", timedelta(0)),
        ("max-age=60", "junk", timedelta(minutes=1)),
        ("s-maxage=100", None, None),
        ("no-cache, max-age=3600", None, None),
        ("no-store", None, None),
        (None, None, None),
    ],
)
def test_parse_max_age(value: str | None, age: str | None, expected: timedelta | None) -> None:
    assert parse_max_age(value, age) == expected


def _host(item: str) -> str | None:
    """ "a3" is the third source of host a; "-1" a source without a host."""
    return None if item.startswith("-") else item[0]


@pytest.mark.parametrize(
    "items, hosts_at_once, run, expected",
    [
        # dealt round-robin over three hosts: two hosts side by side, then the third
        ("a1 b1 c1 a2 b2 c2 a3 b3 c3", 2, 5, "a1 b1 a2 b2 a3 b3 c1 c2 c3"),
        # a host of many sources comes in runs, each run beside other hosts' runs
        ("a1 a2 a3 a4 a5 a6 b1 c1", 2, 2, "a1 b1 a2 c1 a3 a4 a5 a6"),
        # one host at a time is plain grouping, a run of one the order as given
        ("a1 b1 a2 b2", 1, 9, "a1 a2 b1 b2"),
        ("a1 b1 a2 b2", 3, 1, "a1 b1 a2 b2"),
        # sources without a host each stand alone
        ("-1 a1 -2 a2", 2, 4, "-1 a1 a2 -2"),
        ("", 2, 4, ""),
    ],
)
def test_host_order(items: str, hosts_at_once: int, run: int, expected: str) -> None:
    ordered = host_order(items.split(), _host, hosts_at_once=hosts_at_once, run=run)
    assert ordered == expected.split()


def test_host_order_keeps_every_item_once_and_each_hosts_own_order() -> None:
    items = [f"{host}{n}" for n in range(40) for host in "abcdefg" if (n * 7 + ord(host)) % 3]
    ordered = host_order(items, _host, hosts_at_once=3, run=4)
    assert sorted(ordered) == sorted(items)
    for host in "abcdefg":
        assert [i for i in ordered if i[0] == host] == [i for i in items if i[0] == host]
