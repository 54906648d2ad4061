"""Claims, leases, host-wide Retry-After and polling state, on a SQLite file and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from test_store import entry, poll, source, state

from aggregator.model import ParsedFeed
from aggregator.owners import new_owner, retire
from aggregator.poll import release_dead_claims
from aggregator.store import Store, host_of

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
LEASE = timedelta(minutes=10)


def names(states: list[object]) -> list[str]:
    return [s.name for s in states]  # type: ignore[attr-defined]


def claim(store: Store, owner: str = "a", at: datetime = T0, limit: int = 100) -> list[str]:
    return names(store.claim_due(at, owner=owner, lease=LEASE, limit=limit))


def test_claim_takes_a_due_source_once_until_its_poll_is_recorded(store: Store) -> None:
    store.sync_sources([source("alpha")])
    assert claim(store, "a") == ["alpha"]
    assert claim(store, "b") == []  # leased to a
    held = state(store, "alpha")
    assert (held.claimed_by, held.lease_until) == ("a", T0 + LEASE)
    store.record_poll(poll("alpha", at=T0, next_poll_at=T0 + HOUR))
    released = state(store, "alpha")
    assert (released.claimed_by, released.lease_until) == (None, None)
    assert claim(store, "b", at=T0 + HOUR) == ["alpha"]


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    store.sync_sources([source("alpha")])
    assert claim(store, "dead") == ["alpha"]
    assert claim(store, "b", at=T0 + LEASE - timedelta(seconds=1)) == []
    assert claim(store, "b", at=T0 + LEASE) == ["alpha"]
    assert state(store, "alpha").claimed_by == "b"


def test_claim_is_most_overdue_first_and_limited(store: Store) -> None:
    store.sync_sources([source(name) for name in ("alpha", "beta", "gamma", "delta")])
    store.record_poll(poll("alpha", at=T0 - 3 * HOUR, next_poll_at=T0 - HOUR))
    store.record_poll(poll("beta", at=T0 - 3 * HOUR, next_poll_at=T0 - 2 * HOUR))
    store.record_poll(poll("gamma", at=T0 - 3 * HOUR, next_poll_at=T0 + HOUR))
    assert claim(store, limit=2) == ["delta", "beta"]  # never polled first, then most overdue
    assert claim(store, limit=2) == ["alpha"]
    assert claim(store, limit=0) == []


@pytest.mark.parametrize(
    ("config", "record"),
    [
        pytest.param({"enabled": False}, None, id="disabled"),
        pytest.param({}, {"status": "gone", "next_poll_at": T0 - HOUR}, id="gone"),
        pytest.param({}, {"next_poll_at": T0 + timedelta(seconds=1)}, id="not-yet-due"),
    ],
)
def test_sources_that_are_not_due_are_never_claimed(
    store: Store, config: dict[str, object], record: dict[str, object] | None
) -> None:
    store.sync_sources([source("alpha", **config)])
    if record is not None:
        store.record_poll(poll("alpha", at=T0 - 2 * HOUR, **record))
    assert claim(store) == []


def test_removed_source_is_never_claimed(store: Store) -> None:
    store.sync_sources([source("alpha"), source("beta")])
    store.sync_sources([source("beta")])
    assert claim(store) == ["beta"]


def test_claim_named_ignores_the_schedule_but_not_anothers_lease(store: Store) -> None:
    store.sync_sources([source("alpha"), source("beta"), source("gamma")])
    store.record_poll(poll("alpha", status="gone", http_status=410, next_poll_at=T0 + HOUR))
    store.record_poll(poll("beta", next_poll_at=T0 + HOUR))
    assert claim(store, "daemon") == ["gamma"]
    taken = store.claim_named(["alpha", "beta", "gamma"], T0, owner="cli", lease=LEASE)
    assert names(taken) == ["alpha", "beta"]  # gamma is the daemon's


def test_release_claims_gives_back_only_the_owners(store: Store) -> None:
    store.sync_sources([source("alpha"), source("beta"), source("gamma")])
    assert claim(store, "a", limit=2) == ["alpha", "beta"]
    assert claim(store, "b") == ["gamma"]
    assert store.release_claims("a", ["alpha"]) == 1
    assert store.release_claims("a") == 1
    assert claim(store, "c") == ["alpha", "beta"]
    assert state(store, "gamma").claimed_by == "b"


def test_claim_holders_are_the_owners_of_live_leases(store: Store) -> None:
    store.sync_sources([source("alpha"), source("beta"), source("gamma")])
    assert claim(store, "a", limit=1) == ["alpha"]
    assert claim(store, "b", at=T0 + LEASE / 2) == ["beta", "gamma"]
    assert store.claim_holders(T0) == {"a", "b"}
    assert store.claim_holders(T0 + LEASE) == {"b"}  # a's lease has run out
    store.release_claims("b")
    assert store.claim_holders(T0) == {"a"}


def test_claims_of_a_dead_poller_are_taken_back_and_a_live_ones_kept(store: Store) -> None:
    exited = subprocess.run(
        [sys.executable, "-c", "from aggregator.owners import new_owner; print(new_owner('cli'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = exited.stdout.strip()
    # A pass of this process that ended without giving its claims back.
    retired = new_owner("cli")
    retire(retired)
    live = new_owner("run")
    try:
        store.sync_sources([source(name) for name in ("alpha", "beta", "gamma", "delta")])
        assert claim(store, dead, limit=2) == ["alpha", "beta"]
        assert claim(store, retired, limit=1) == ["delta"]
        assert claim(store, live) == ["gamma"]
        assert release_dead_claims(store, T0) == 3
        assert claim(store, "next") == ["alpha", "beta", "delta"]
        assert state(store, "gamma").claimed_by == live
        assert release_dead_claims(store, T0) == 0
    finally:
        retire(live)


def test_concurrent_pollers_never_claim_the_same_source(db_url: str, store: Store) -> None:
    store.sync_sources([source(f"s{n:02d}") for n in range(60)])
    taken: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def poller(owner: str) -> None:
        own = Store(db_url)
        try:
            start.wait()
            mine: list[str] = []
            while batch := names(own.claim_due(T0, owner=owner, lease=LEASE, limit=4)):
                mine.extend(batch)
            taken[owner] = mine
        finally:
            own.close()

    threads = [threading.Thread(target=poller, args=(f"p{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [name for mine in taken.values() for name in mine]
    assert len(taken) == 4
    assert sorted(claimed) == [f"s{n:02d}" for n in range(60)]  # each exactly once


def test_retry_after_holds_every_source_on_the_host_until_then(store: Store) -> None:
    store.sync_sources(
        [
            source("alpha", url="https://shared.example/a.xml"),
            source("beta", url="https://Shared.Example:8443/b.xml"),
            source("gamma", url="https://other.example/c.xml"),
        ]
    )
    assert claim(store, limit=1) == ["alpha"]
    until = T0 + 2 * HOUR
    store.record_poll(
        poll(
            "alpha",
            status="error",
            http_status=429,
            error="alpha: HTTP 429",
            next_poll_at=until,
            host_not_before=until,
        )
    )
    assert claim(store) == ["gamma"]  # beta shares the host
    store.record_poll(poll("gamma", next_poll_at=T0 + 9 * HOUR))
    assert state(store, "beta").host_not_before == until
    assert claim(store, at=until - timedelta(seconds=1)) == []
    assert claim(store, at=until) == ["beta", "alpha"]  # never polled first


def test_a_shorter_retry_after_never_shortens_a_host_hold(store: Store) -> None:
    store.sync_sources(
        [source("alpha", url="https://h.example/a"), source("beta", url="https://h.example/b")]
    )
    for name, until in (("alpha", T0 + 3 * HOUR), ("beta", T0 + HOUR)):
        store.record_poll(
            poll(name, status="error", http_status=503, next_poll_at=until, host_not_before=until)
        )
    assert state(store, "alpha").host_not_before == T0 + 3 * HOUR


def test_new_source_on_a_held_host_waits_too(store: Store) -> None:
    store.sync_sources([source("alpha", url="https://h.example/a")])
    hold = T0 + HOUR
    store.record_poll(poll("alpha", status="error", next_poll_at=hold, host_not_before=hold))
    store.sync_sources(
        [source("alpha", url="https://h.example/a"), source("beta", url="https://h.example/b")]
    )
    assert claim(store) == []


def test_permanent_redirect_records_where_from_and_the_new_host(store: Store) -> None:
    store.sync_sources([source("alpha", url="https://old.example/feed")])
    store.record_poll(poll("alpha", entry(1), new_url="https://new.example/feed", http_status=301))
    moved = state(store, "alpha")
    assert (moved.url, moved.host, moved.moved_from, moved.moved_at) == (
        "https://new.example/feed",
        "new.example",
        "https://old.example/feed",
        T0,
    )
    # A new configured URL starts afresh and forgets the move.
    store.sync_sources([source("alpha", url="https://third.example/feed")])
    fresh = state(store, "alpha")
    assert (fresh.url, fresh.host, fresh.moved_from) == (
        "https://third.example/feed",
        "third.example",
        None,
    )


def test_feed_hints_are_stored_with_a_parse_and_kept_through_304s(store: Store) -> None:
    store.sync_sources([source("alpha")])
    feed = ParsedFeed("rss20", title="T", ttl_minutes=90, update_period_minutes=60)
    store.record_poll(poll("alpha", feed=feed))
    store.record_poll(poll("alpha", at=T0 + HOUR, status="not_modified"))
    kept = state(store, "alpha")
    assert (kept.ttl_minutes, kept.update_period_minutes) == (90, 60)
    assert (kept.last_ok_at, kept.last_polled_at) == (T0 + HOUR, T0 + HOUR)


def test_last_ok_is_kept_through_failures(store: Store) -> None:
    store.sync_sources([source("alpha")])
    store.record_poll(poll("alpha"))
    store.record_poll(poll("alpha", at=T0 + HOUR, status="error", error="alpha: boom"))
    failing = state(store, "alpha")
    assert (failing.last_ok_at, failing.error_count, failing.gone) == (T0, 1, False)
    store.record_poll(poll("alpha", at=T0 + 2 * HOUR, status="gone", http_status=410))
    assert state(store, "alpha").gone


def test_reschedule_moves_only_overdue_unclaimed_sources(store: Store) -> None:
    store.sync_sources([source("alpha"), source("beta"), source("gamma")])
    store.record_poll(poll("gamma", next_poll_at=T0 + HOUR))
    assert claim(store, limit=1) == ["alpha"]
    assert names(store.overdue_sources(T0)) == ["beta"]
    later = T0 + timedelta(seconds=30)
    moved = store.reschedule({"alpha": later, "beta": later, "gamma": later}, T0)
    assert moved == 1
    assert state(store, "beta").next_poll_at == later
    assert state(store, "gamma").next_poll_at == T0 + HOUR
    assert claim(store, "b") == []
    assert claim(store, "b", at=later) == ["beta"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Example.COM/feed", "example.com"),
        ("http://127.0.0.1:8080/x", "127.0.0.1"),
        ("https://[::1]:8443/x", "::1"),
        (None, None),
        ("", None),
        ("http://[bad/", None),
    ],
)
def test_host_of(url: str | None, host: str | None) -> None:
    assert host_of(url) == host


# -- lease renewal and jobs of one process at a time ----------------------------


def test_renewal_moves_only_the_owners_leases(store: Store) -> None:
    store.sync_sources([source("alpha"), source("beta"), source("gamma")])
    assert claim(store, "a", limit=2) == ["alpha", "beta"]
    assert claim(store, "b") == ["gamma"]
    later = T0 + 3 * LEASE
    assert store.renew_claims("a", ["alpha", "gamma"], later) == {"alpha"}
    assert state(store, "alpha").lease_until == later
    assert state(store, "beta").lease_until == T0 + LEASE  # not asked for
    assert state(store, "gamma").lease_until == T0 + LEASE  # b's, whatever a asks
    # Past its first lease, a renewed claim is still a's: nobody else may take it.
    assert claim(store, "c", at=T0 + 2 * LEASE) == ["beta", "gamma"]
    assert state(store, "alpha").claimed_by == "a"


def test_renewal_of_a_claim_taken_over_renews_nothing(store: Store) -> None:
    store.sync_sources([source("alpha")])
    assert claim(store, "slow") == ["alpha"]
    assert claim(store, "b", at=T0 + LEASE) == ["alpha"]  # slow's lease ran out
    assert store.renew_claims("slow", ["alpha"], T0 + 3 * LEASE) == set()
    assert (state(store, "alpha").claimed_by, state(store, "alpha").lease_until) == (
        "b",
        T0 + 2 * LEASE,
    )


def test_once_every_runs_a_job_once_per_period(store: Store) -> None:
    runs = []
    for at in (T0, T0 + HOUR, T0 + 23 * HOUR, T0 + 24 * HOUR, T0 + 25 * HOUR):
        with store.once_every("prune", timedelta(days=1), at) as mine:
            if mine:
                runs.append(at)
    assert runs == [T0, T0 + 24 * HOUR]


def test_once_every_counts_no_run_that_failed(store: Store) -> None:
    with pytest.raises(RuntimeError), store.once_every("prune", timedelta(days=1), T0) as mine:
        assert mine
        raise RuntimeError("database went away mid-job")
    with store.once_every("prune", timedelta(days=1), T0 + HOUR) as mine:
        assert mine  # the failed run did not count


# Holds the job's lock in another process (another daemon) until its stdin closes.
_HOLD_JOB = """
import sys
from datetime import datetime, timedelta, UTC
from aggregator.store import Store
store = Store(sys.argv[1])
with store.once_every("prune", timedelta(0), datetime.now(UTC)) as mine:
    print("held" if mine else "refused", flush=True)
    sys.stdin.read()
"""


def test_a_job_another_process_runs_is_skipped_until_it_ends(pg_url: str) -> None:
    store = Store(pg_url)
    store.upgrade()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_JOB, pg_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        with store.once_every("prune", timedelta(0), T0) as mine:
            assert not mine  # the other process holds the advisory lock
        # Another job's lock is another key: it does not wait on this one.
        with store.once_every("spread", timedelta(0), T0) as mine:
            assert mine
        holder.kill()  # -9: the session ends, and PostgreSQL lets go of its lock
        holder.wait()

        def runs_here() -> bool:
            with store.once_every("prune", timedelta(0), T0) as mine:
                return mine

        # The server ends the session once it reads the closed socket: at once when idle.
        deadline = time.monotonic() + 30
        while not runs_here():
            assert time.monotonic() < deadline, "the killed holder's lock was never released"
            time.sleep(0.05)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        store.close()
