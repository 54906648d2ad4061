"""Retention, tombstones and poll history against real databases (SQLite file, PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from test_store import HOUR, T0, entry, poll, source

from aggregator.model import DayActivity, SaveCounts
from aggregator.store import (
    POLL_HISTORY,
    TOMBSTONE_GRACE,
    Store,
    entries,
    entry_fingerprints,
    match_keys,
    stories,
    story_keys,
    tombstones,
)

DAY = timedelta(days=1)
RETENTION = timedelta(days=30)


@pytest.fixture
def synced(store: Store) -> Store:
    store.sync_sources([source("alpha"), source("beta"), source("gamma")])
    return store


def rows(store: Store, table: object) -> int:
    with store._engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


def titles(store: Store) -> list[str]:
    return sorted(story.face.title for story in store.stories(limit=500))


CITIES = ("Rotterdam", "Hamburg", "Antwerp", "Felixstowe", "Genoa", "Piraeus")


def article(n: int, **fields: object) -> object:
    """An entry with a specific title, so that it has candidate match keys."""
    fields.setdefault("title", f"Dockworkers in {CITIES[n]} strike over pay")
    return entry(n, **fields)


def old(n: int) -> object:
    """An entry published 40 days before T0 (past a 30-day retention)."""
    return article(n, published=T0 - 40 * DAY - n * HOUR)


def test_prune_removes_old_stories_with_entries_keys_fingerprints_and_match_keys(
    synced: Store,
) -> None:
    synced.record_poll(poll("alpha", old(1), old(2), article(3), at=T0 - HOUR))
    # beta carries article 1 too: its copy goes with the story.
    synced.record_poll(poll("beta", old(1), at=T0 - HOUR))
    before = {table.name: rows(synced, table) for table in (entry_fingerprints, match_keys)}
    report = synced.prune(T0, RETENTION)
    assert (report.stories, report.entries, report.tombstones) == (2, 3, 3)
    assert report.cutoff == T0 - RETENTION
    assert titles(synced) == ["Dockworkers in Felixstowe strike over pay"]
    assert rows(synced, stories) == 1
    assert rows(synced, entries) == 1
    assert rows(synced, entry_fingerprints) == 1 < before["entry_fingerprints"]
    assert 0 < rows(synced, match_keys) < before["match_keys"]
    with synced._engine.connect() as conn:
        survivor = conn.scalar(select(entries.c.id))
        assert set(conn.scalars(select(match_keys.c.entry_id))) == {survivor}
    with synced._engine.connect() as conn:
        assert list(conn.scalars(select(story_keys.c.key))) == [
            "url:https://news.example/articles/3"
        ]
    assert synced.source_state("alpha").entry_count == 1  # type: ignore[union-attr]


def test_a_source_still_listing_a_pruned_entry_does_not_bring_it_back(synced: Store) -> None:
    document = (old(1), entry(3))
    synced.record_poll(poll("alpha", *document, at=T0 - HOUR))
    synced.prune(T0, RETENTION)
    counts = synced.record_poll(poll("alpha", *document, entry(4), at=T0 + HOUR))
    assert counts == SaveCounts(new=1, unchanged=1)
    assert titles(synced) == ["Article 3", "Article 4"]
    # Another source's copy of the same article is another matter: it was never pruned.
    assert synced.record_poll(poll("beta", old(1), at=T0 + HOUR)).new == 1


def test_a_tombstone_lives_while_its_entry_is_listed_and_expires_after_the_grace(
    synced: Store,
) -> None:
    synced.record_poll(poll("alpha", old(1), at=T0 - HOUR))
    synced.prune(T0, RETENTION)
    listed_again = T0 + 20 * DAY
    synced.record_poll(poll("alpha", old(1), at=listed_again))
    # Unseen for less than the grace since: kept, although pruned longer ago than that.
    kept = synced.prune(listed_again + TOMBSTONE_GRACE - HOUR, RETENTION)
    assert (kept.tombstones_expired, kept.tombstones) == (0, 1)
    expired = synced.prune(listed_again + TOMBSTONE_GRACE + HOUR, RETENTION)
    assert (expired.tombstones_expired, expired.tombstones) == (1, 0)


def test_dry_run_counts_and_deletes_nothing(synced: Store) -> None:
    synced.record_poll(poll("alpha", old(1), old(2), entry(3), at=T0 - HOUR))
    version = synced.data_version()
    report = synced.prune(T0, RETENTION, dry_run=True)
    assert (report.dry_run, report.stories, report.entries, report.tombstones) == (
        True,
        2,
        2,
        0,
    )
    assert len(titles(synced)) == 3
    assert synced.data_version() == version


def test_prune_works_in_batches_each_committed_on_its_own(synced: Store) -> None:
    synced.record_poll(poll("alpha", *(old(n) for n in range(1, 6)), at=T0 - HOUR))
    version = synced.data_version()
    report = synced.prune(T0, RETENTION, batch=2)
    assert (report.stories, report.batches) == (5, 3)
    # Every batch is a transaction of its own that readers see (and caches notice).
    assert synced.data_version() == version + 3
    assert titles(synced) == []
    assert synced.prune(T0, RETENTION, batch=2).batches == 0


def test_nothing_younger_than_retention_is_touched(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1), entry(2), at=T0))
    assert synced.prune(T0 + 29 * DAY, RETENTION).stories == 0
    assert titles(synced) == ["Article 1", "Article 2"]


# -- poll history ------------------------------------------------------------


def test_poll_history_is_newest_first_and_bounded_per_source(synced: Store) -> None:
    for n in range(POLL_HISTORY + 5):
        synced.record_poll(
            poll("alpha", entry(n), at=T0 + n * HOUR, fetched_bytes=1000 + n, duration=0.5)
        )
    synced.record_poll(poll("beta", entry(1), at=T0))
    history = synced.poll_history("alpha", limit=POLL_HISTORY * 2)
    assert len(history) == POLL_HISTORY
    assert history[0].polled_at == T0 + (POLL_HISTORY + 4) * HOUR
    assert (history[0].status, history[0].bytes, history[0].new, history[0].duration) == (
        "ok",
        1000 + POLL_HISTORY + 4,
        1,
        0.5,
    )
    assert [p.polled_at for p in history] == sorted((p.polled_at for p in history), reverse=True)
    assert len(synced.poll_history("beta")) == 1


def test_a_failed_poll_is_in_the_history_with_its_error(synced: Store) -> None:
    synced.record_poll(
        poll("alpha", status="error", http_status=500, error="alpha: https://x: HTTP 500")
    )
    [failed] = synced.poll_history("alpha")
    assert (failed.status, failed.http_status, failed.error) == (
        "error",
        500,
        "alpha: https://x: HTTP 500",
    )


def test_a_poll_the_database_refuses_leaves_no_history(synced: Store) -> None:
    with pytest.raises(IntegrityError):
        synced.record_poll(poll("alpha", entry(1), entry(2, title=None)))
    assert synced.poll_history("alpha") == []
    assert synced.activity(T0.date()) == {}


def test_activity_tallies_each_day_by_outcome_and_entries(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1), entry(2), at=T0, fetched_bytes=100))
    synced.record_poll(poll("alpha", status="not_modified", at=T0 + HOUR))
    synced.record_poll(poll("alpha", status="error", error="boom", at=T0 + 2 * HOUR))
    synced.record_poll(poll("alpha", entry(1), entry(3), at=T0 + DAY, fetched_bytes=50))
    synced.record_poll(poll("beta", status="gone", at=T0 + DAY))
    activity = synced.activity(T0.date())
    assert activity["alpha"] == [
        DayActivity(T0.date(), polls=3, ok=1, not_modified=1, errors=1, new=2, bytes=100),
        DayActivity((T0 + DAY).date(), polls=1, ok=1, new=1, bytes=50),
    ]
    assert activity["beta"] == [DayActivity((T0 + DAY).date(), polls=1, errors=1)]
    assert list(synced.activity((T0 + DAY).date(), names=["alpha"])) == ["alpha"]


def test_prune_drops_activity_older_than_the_charts_keep(synced: Store) -> None:
    synced.record_poll(poll("alpha", status="not_modified", at=T0))
    synced.prune(T0 + 89 * DAY, RETENTION)
    assert len(synced.activity(T0.date())["alpha"]) == 1
    synced.prune(T0 + 91 * DAY, RETENTION)
    assert synced.activity(T0.date()) == {}


def test_source_entries_newest_first(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(3), entry(1), entry(2)))
    synced.record_poll(poll("beta", entry(9)))
    assert [e.title for e in synced.source_entries("alpha")] == [
        "Article 1",
        "Article 2",
        "Article 3",
    ]
    assert [e.title for e in synced.source_entries("alpha", limit=1)] == ["Article 1"]


def test_tombstones_go_with_their_source(store: Store) -> None:
    store.sync_sources([source("alpha")])
    store.record_poll(poll("alpha", old(1), at=T0 - HOUR))
    store.prune(T0, RETENTION)
    assert rows(store, tombstones) == 1
    with store._engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM sources")
    assert rows(store, tombstones) == 0
