"""The store against real databases: a SQLite file and the local PostgreSQL (db_url fixture)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from aggregator import dedupe
from aggregator.model import (
    Enclosure,
    Image,
    ParsedEntry,
    ParsedFeed,
    PollRecord,
    SaveCounts,
    SourceState,
    Validators,
)
from aggregator.store import SCHEMA_HEAD, Store, UnknownSourceError, entries, metadata

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class SourceStandIn:
    """The attributes of config.SourceConfig the store reads."""

    name: str
    url: str | None = None
    path: Path | None = None
    title: str | None = None
    categories: tuple[str, ...] = ()
    interval: timedelta | None = None
    enabled: bool = True
    allow_private: bool = False


def source(name: str, **fields: object) -> SourceStandIn:
    fields.setdefault("url", f"https://{name}.example/feed.xml")
    return SourceStandIn(name, **fields)  # type: ignore[arg-type]


def entry(n: int, **fields: object) -> ParsedEntry:
    values: dict[str, object] = {
        "guid": f"guid-{n}",
        "link": f"https://news.example/articles/{n}",
        "title": f"Article {n}",
        "summary": f"<p>Summary {n}</p>",
        "published": T0 - n * HOUR,
    }
    values.update(fields)
    return ParsedEntry(**values)  # type: ignore[arg-type]


def poll(
    name: str,
    *entries: ParsedEntry,
    at: datetime = T0,
    status: str = "ok",
    feed_title: str | None = "Feed title",
    **fields: object,
) -> PollRecord:
    feed = ParsedFeed("rss20", title=feed_title, link="https://site.example/", entries=entries)
    values: dict[str, object] = {
        "source": name,
        "polled_at": at,
        "status": status,
        "next_poll_at": at + HOUR,
        "feed": feed if status == "ok" else None,
    }
    values.update(fields)
    return PollRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def synced(store: Store) -> Store:
    store.sync_sources([source("alpha"), source("beta"), source("gamma")])
    return store


def state(store: Store, name: str) -> SourceState:
    found = store.source_state(name)
    assert found is not None
    return found


# -- schema ------------------------------------------------------------------


def test_upgrade_is_idempotent_and_matches_the_table_definitions(store: Store) -> None:
    store.upgrade()
    store.ping()
    with store._engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert store.data_version() == 0


def test_schema_head_names_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "aggregator:migrations")
    heads = ScriptDirectory.from_config(config).get_heads()
    assert heads == [SCHEMA_HEAD], "a new migration: set store.SCHEMA_HEAD to its revision"


def test_upgrade_runs_the_migrations_a_database_behind_is_missing(store: Store) -> None:
    from aggregator.store import meta

    with store._engine.begin() as conn:  # a database left by the release before 0006
        conn.execute(text("UPDATE alembic_version SET version_num = '0005_retention'"))
        conn.execute(delete(meta).where(meta.c.key == "data_version"))
    store.upgrade()
    with store._engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        data_version = conn.scalar(select(meta.c.value).where(meta.c.key == "data_version"))
    assert (version, data_version) == (SCHEMA_HEAD, "0")


def test_upgrade_of_a_database_at_head_does_not_load_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'current.db'}"
    Store(url).upgrade()
    program = (
        "import sys\n"
        "from aggregator.store import Store\n"
        f"Store({url!r}).upgrade()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert ran.stdout.strip() == "[]"


def test_sqlite_file_gets_its_folder_and_wal_journal(tmp_path: Path) -> None:
    database = tmp_path / "not" / "yet" / "there.db"
    opened = Store(f"sqlite:///{database}")
    opened.upgrade()
    opened.close()
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- sources -----------------------------------------------------------------


def test_sync_sources_inserts_new_sources_due_at_once(store: Store) -> None:
    store.sync_sources([source("alpha", title="Alpha"), source("beta", url=None, path=Path("/x"))])
    states = store.source_states()
    assert [(s.name, s.url, s.path, s.enabled, s.next_poll_at) for s in states] == [
        ("alpha", "https://alpha.example/feed.xml", None, True, None),
        ("beta", None, "/x", True, None),
    ]
    assert [s.name for s in store.due_sources(T0)] == ["alpha", "beta"]


def test_sync_sources_updates_enabled_and_keeps_polling_state(synced: Store) -> None:
    synced.record_poll(poll("alpha", validators=Validators('"v1"', None), body_hash="h1"))
    synced.sync_sources(
        [source("alpha", enabled=False, title="New"), source("beta"), source("gamma")]
    )
    alpha = state(synced, "alpha")
    assert (alpha.enabled, alpha.validators.etag, alpha.body_hash) == (False, '"v1"', "h1")


def test_changed_configured_url_resets_validators_hash_and_gone(synced: Store) -> None:
    synced.record_poll(
        poll("alpha", validators=Validators('"v1"', "Mon"), body_hash="h1", new_url="https://a/2")
    )
    synced.record_poll(poll("alpha", status="gone", http_status=410))
    synced.sync_sources([source("alpha", url="https://moved.example/rss"), source("beta")])
    alpha = state(synced, "alpha")
    assert (alpha.url, alpha.validators, alpha.body_hash) == (
        "https://moved.example/rss",
        Validators(),
        None,
    )
    assert "alpha" in [s.name for s in synced.due_sources(T0)]


def test_source_removed_from_config_keeps_its_row_but_is_never_due(synced: Store) -> None:
    synced.record_poll(poll("gamma", entry(1)))
    synced.sync_sources([source("alpha"), source("beta")])
    assert [s.name for s in synced.source_states()] == ["alpha", "beta"]
    assert state(synced, "gamma").entry_count == 1
    assert "gamma" not in [s.name for s in synced.due_sources(T0 + 10 * HOUR)]
    assert synced.due_sources(T0, names=["gamma"]) == []
    assert len(synced.stories()) == 1
    synced.sync_sources([source("alpha"), source("gamma")])
    assert [s.name for s in synced.source_states()] == ["alpha", "gamma"]


# -- due sources -------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "config", "due"),
    [
        pytest.param(None, {}, True, id="never-polled"),
        pytest.param({"next_poll_at": T0 - HOUR}, {}, True, id="next-poll-passed"),
        pytest.param({"next_poll_at": T0}, {}, True, id="next-poll-now"),
        pytest.param({"next_poll_at": T0 + HOUR}, {}, False, id="next-poll-ahead"),
        pytest.param(None, {"enabled": False}, False, id="disabled"),
        pytest.param({"status": "gone", "next_poll_at": T0 - HOUR}, {}, False, id="gone"),
    ],
)
def test_due_sources(
    store: Store, record: dict[str, object] | None, config: dict[str, object], due: bool
) -> None:
    store.sync_sources([source("alpha", **config)])
    if record is not None:
        store.record_poll(poll("alpha", at=T0 - 2 * HOUR, **record))
    assert [s.name for s in store.due_sources(T0)] == (["alpha"] if due else [])


def test_due_sources_longest_waiting_first_and_names_ignore_due_time(synced: Store) -> None:
    synced.record_poll(poll("alpha", at=T0 - 3 * HOUR, next_poll_at=T0 - HOUR))
    synced.record_poll(poll("beta", at=T0 - 3 * HOUR, next_poll_at=T0 - 2 * HOUR))
    assert [s.name for s in synced.due_sources(T0)] == ["gamma", "beta", "alpha"]
    synced.record_poll(poll("alpha", at=T0, next_poll_at=T0 + HOUR))
    assert [s.name for s in synced.due_sources(T0, names=["alpha"])] == ["alpha"]


# -- recording polls ---------------------------------------------------------


def test_new_entries_are_stored_with_every_field(synced: Store) -> None:
    full = entry(
        1,
        author="Ann Author",
        content="<p>Body</p>",
        updated=T0,
        tags=("World", "Gaza"),
        enclosures=(Enclosure("https://cdn.example/a.mp3", "audio/mpeg", 1234),),
        image=Image("https://cdn.example/a.jpg", "A caption"),
    )
    counts = synced.record_poll(poll("alpha", full, entry(2)))
    assert counts == SaveCounts(new=2)
    assert state(synced, "alpha").entry_count == 2
    stored = synced.stories()[0].face
    assert (stored.source, stored.source_title, stored.source_url, stored.source_link) == (
        "alpha",
        "Feed title",
        "https://alpha.example/feed.xml",
        "https://site.example/",
    )
    assert (stored.guid, stored.link, stored.title, stored.summary, stored.content) == (
        full.guid,
        full.link,
        full.title,
        full.summary,
        full.content,
    )
    assert (stored.author, stored.published, stored.updated, stored.first_seen) == (
        full.author,
        full.published,
        full.updated,
        T0,
    )
    assert (stored.tags, stored.enclosures, stored.image) == (
        full.tags,
        full.enclosures,
        full.image,
    )
    assert stored.published is not None and stored.published.tzinfo is not None


def test_a_document_larger_than_one_insert_statement_is_stored_whole(
    synced: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries and stories go in multi-row INSERT statements of bounded size; a document
    that needs several of them keeps every entry, each in its own story, each field whole."""
    from aggregator import store as module

    monkeypatch.setattr(module, "_MAX_PARAMETERS", 45)  # two entries (19 columns) a statement
    many = [entry(n, tags=(f"tag-{n}",), updated=T0) for n in range(1, 8)]
    assert synced.record_poll(poll("alpha", *many)) == SaveCounts(new=7)
    stored = {story.face.guid: story.face for story in synced.stories()}
    assert sorted(stored) == sorted(item.guid for item in many if item.guid)
    for item in many:
        face = stored[item.guid]
        assert (face.link, face.title, face.tags, face.published, face.updated) == (
            item.link,
            item.title,
            item.tags,
            item.published,
            item.updated,
        )
    assert synced.record_poll(poll("alpha", *many, at=T0 + HOUR)) == SaveCounts(unchanged=7)


def test_repoll_of_identical_document_changes_nothing(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1), entry(2)))
    version = synced.data_version()
    before = synced.stories()
    counts = synced.record_poll(poll("alpha", entry(1), entry(2), at=T0 + HOUR))
    assert counts == SaveCounts(unchanged=2)
    assert synced.stories() == before
    assert state(synced, "alpha").entry_count == 2
    assert synced.data_version() == version


def test_changed_entry_is_updated_in_place_and_keeps_its_story_uid(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1)))
    [before] = synced.stories()
    counts = synced.record_poll(poll("alpha", entry(1, title="Corrected"), at=T0 + HOUR))
    assert counts == SaveCounts(updated=1)
    [after] = synced.stories()
    assert (after.uid, after.face.title, after.face.first_seen) == (before.uid, "Corrected", T0)
    assert len(after.copies) == 1


def test_duplicate_keys_inside_one_document_keep_the_first(synced: Store) -> None:
    counts = synced.record_poll(poll("alpha", entry(1), entry(1, title="Second"), entry(2)))
    assert counts == SaveCounts(new=2)
    assert sorted(s.face.title for s in synced.stories()) == ["Article 1", "Article 2"]


def test_same_link_under_two_guids_in_one_document_is_one_story(synced: Store) -> None:
    link = "https://news.example/articles/1"
    counts = synced.record_poll(poll("alpha", entry(1), entry(2, link=link + "?utm_source=x")))
    assert counts == SaveCounts(new=2, duplicates=1)
    [story] = synced.stories()
    assert len(story.copies) == 2


@pytest.mark.parametrize(
    ("status", "validators", "expected"),
    [
        ("ok", Validators('"new"', "Tue"), Validators('"new"', "Tue")),
        ("not_modified", Validators('"new"', None), Validators('"new"', None)),
        ("unchanged", Validators(None, "Wed"), Validators(None, "Wed")),
        ("not_modified", None, Validators('"old"', "Mon")),
    ],
)
def test_validators_are_saved_whatever_the_status(
    synced: Store, status: str, validators: Validators | None, expected: Validators
) -> None:
    synced.record_poll(poll("alpha", validators=Validators('"old"', "Mon"), body_hash="h0"))
    synced.record_poll(poll("alpha", at=T0 + HOUR, status=status, validators=validators))
    alpha = state(synced, "alpha")
    assert (alpha.validators, alpha.body_hash, alpha.last_status) == (expected, "h0", status)


def test_errors_count_up_and_a_success_resets_them(synced: Store) -> None:
    for hour in range(3):
        synced.record_poll(poll("alpha", at=T0 + hour * HOUR, status="error", error="alpha: boom"))
    alpha = state(synced, "alpha")
    assert (alpha.error_count, alpha.last_error, alpha.last_status) == (3, "alpha: boom", "error")
    synced.record_poll(poll("alpha", at=T0 + 4 * HOUR, status="not_modified"))
    alpha = state(synced, "alpha")
    assert (alpha.error_count, alpha.last_error, alpha.last_polled_at) == (0, None, T0 + 4 * HOUR)
    assert alpha.next_poll_at == T0 + 5 * HOUR


def test_permanent_redirect_replaces_the_url_in_use(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1), new_url="https://new.example/feed", http_status=301))
    assert state(synced, "alpha").url == "https://new.example/feed"
    assert synced.stories()[0].face.source_url == "https://new.example/feed"
    synced.sync_sources([source("alpha"), source("beta")])  # configured URL unchanged
    assert state(synced, "alpha").url == "https://new.example/feed"


def test_gone_source_is_no_longer_due(synced: Store) -> None:
    synced.record_poll(poll("alpha", status="gone", http_status=410, next_poll_at=T0))
    assert "alpha" not in [s.name for s in synced.due_sources(T0 + HOUR)]
    assert state(synced, "alpha").last_status == "gone"


def test_unknown_source_is_refused_by_name(synced: Store) -> None:
    with pytest.raises(UnknownSourceError, match="nowhere"):
        synced.record_poll(poll("nowhere", entry(1)))


def test_an_entry_the_database_refuses_rolls_back_the_whole_poll(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1), validators=Validators('"v1"', None)))
    version = synced.data_version()
    refused = entry(3, title=None)  # entries.title is NOT NULL
    with pytest.raises(IntegrityError):
        synced.record_poll(
            poll("alpha", entry(2), refused, at=T0 + HOUR, validators=Validators('"v2"', None))
        )
    alpha = state(synced, "alpha")
    assert (alpha.validators.etag, alpha.last_polled_at, alpha.entry_count) == ('"v1"', T0, 1)
    assert [story.face.title for story in synced.stories()] == ["Article 1"]
    assert synced.data_version() == version
    # Nothing half-written blocks the retry: the same document stores cleanly afterwards.
    assert synced.record_poll(poll("alpha", entry(2), at=T0 + 2 * HOUR)) == SaveCounts(new=1)


@settings(max_examples=2000, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-11, minutes=-30)), timezone(timedelta(hours=14))]
        ),
    )
)
def test_sqlite_times_are_bound_as_sqlalchemy_binds_them(value: datetime) -> None:
    """UTCDateTime's own SQLite binder against what a TypeDecorator does without it:
    process_bind_param, then the dialect's DATETIME formatting of the naive value."""
    from sqlalchemy.dialects import sqlite

    from aggregator.store import UTCDateTime

    dialect = sqlite.dialect()
    decorator = UTCDateTime()
    formatting = decorator.impl.dialect_impl(dialect).bind_processor(dialect)
    assert formatting is not None
    reference = formatting(decorator.process_bind_param(value, dialect))
    assert decorator.dialect_impl(dialect).bind_processor(dialect)(value) == reference


def test_a_naive_time_is_refused_by_the_sqlite_binder() -> None:
    from sqlalchemy.dialects import sqlite

    from aggregator.store import UTCDateTime

    dialect = sqlite.dialect()
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    with pytest.raises(ValueError, match="naive datetime"):
        bind(datetime(2025, 3, 1, 12, 0))


def test_times_written_past_sqlalchemy_are_stored_as_sqlalchemy_stores_them(
    tmp_path: Path,
) -> None:
    """Fingerprints go to the driver directly: on SQLite, which keeps times as text, theirs
    must be the same text as every other column's. Candidate keys keep whole seconds."""
    path = tmp_path / "times.db"
    sqlite_store = Store(f"sqlite:///{path}")
    sqlite_store.upgrade()
    sqlite_store.sync_sources([source("alpha")])
    whole = T0.replace(minute=0, second=0, microsecond=0)
    text = "<p>" + " ".join(f"word{n}" for n in range(40)) + "</p>"  # long enough for MinHash
    sqlite_store.record_poll(poll("alpha", entry(1, published=whole, summary=text)))
    sqlite_store.close()
    with closing(sqlite3.connect(path)) as raw:
        published = raw.execute("SELECT published FROM entries").fetchone()[0]
        times = {row[0] for row in raw.execute("SELECT at FROM entry_fingerprints")}
        key_times = {row[0] for row in raw.execute("SELECT at FROM match_keys")}
    assert published == whole.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert times == {published}
    assert key_times == {int(whole.timestamp())}  # whole seconds since migration 0008


def test_a_group_of_polls_is_one_transaction_each_poll_as_alone(synced: Store) -> None:
    """record_polls (the poller's group commit) writes what record_poll of each would,
    in one transaction: a poll the database refuses keeps every poll of the group out."""
    synced.record_poll(poll("alpha", entry(1), validators=Validators('"a1"', None)))
    later = T0 + HOUR
    group = [
        poll("alpha", at=later, status="not_modified", validators=Validators('"a2"', None)),
        poll("beta", at=later, status="error", error="beta: boom", http_status=500),
        poll("gamma", entry(7), at=later, validators=Validators('"g1"', "Tue")),
    ]
    counts = synced.record_polls(group)
    assert counts == [SaveCounts(), SaveCounts(), SaveCounts(new=1)]
    alpha, beta, gamma = (state(synced, name) for name in ("alpha", "beta", "gamma"))
    assert (alpha.last_status, alpha.validators.etag, alpha.entry_count) == (
        "not_modified",
        '"a2"',
        1,
    )
    assert (beta.last_status, beta.error_count, beta.last_error) == ("error", 1, "beta: boom")
    assert (gamma.validators, gamma.entry_count) == (Validators('"g1"', "Tue"), 1)
    assert [line.status for line in synced.poll_history("alpha")] == ["not_modified", "ok"]
    day = synced.activity(T0.date())["alpha"][0]
    assert (day.polls, day.ok, day.not_modified) == (2, 1, 1)

    version = synced.data_version()
    with pytest.raises(UnknownSourceError, match="nowhere"):
        synced.record_polls(
            [
                poll("alpha", at=later + HOUR, status="not_modified"),
                poll("nowhere", at=later + HOUR, status="not_modified"),
            ]
        )
    assert state(synced, "alpha").last_polled_at == later  # nothing of the group was kept
    assert len(synced.poll_history("alpha")) == 2
    assert synced.data_version() == version


def test_entry_coming_back_after_its_row_was_removed_keeps_its_story_uid(synced: Store) -> None:
    linkless = entry(1, link=None)  # no story keys: only its uid can find its story again
    synced.record_poll(poll("alpha", linkless))
    [before] = synced.stories()
    with synced._engine.begin() as conn:  # what retention pruning of the entry alone leaves
        conn.execute(delete(entries))
    assert synced.record_poll(poll("alpha", linkless, at=T0 + HOUR)) == SaveCounts(new=1)
    [after] = synced.stories()
    assert (after.uid, after.face.first_seen) == (before.uid, T0 + HOUR)


# -- stories across sources --------------------------------------------------


def test_two_sources_with_one_article_make_one_story_with_the_first_uid(synced: Store) -> None:
    late_copy = entry(1, guid="alpha-1", published=T0 - HOUR)
    early_copy = entry(1, guid="beta-1", link="http://www.news.example/articles/1/#top")
    early_copy = replace(early_copy, published=T0 - 5 * HOUR, title="Beta's headline")
    assert synced.record_poll(poll("alpha", late_copy)) == SaveCounts(new=1)
    assert synced.record_poll(poll("beta", early_copy, at=T0 + HOUR)) == SaveCounts(
        new=1, duplicates=1
    )
    [story] = synced.stories()
    assert story.uid == dedupe.story_uid("alpha", "id:alpha-1")
    assert (story.face.source, story.face.title, story.sort_time) == (
        "beta",
        "Beta's headline",
        T0 - 5 * HOUR,
    )
    assert [copy.source for copy in story.copies] == ["beta", "alpha"]
    assert story.sources == ("beta", "alpha")


def test_face_ties_go_to_the_copy_seen_first(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1, guid="a")))
    synced.record_poll(poll("beta", entry(1, guid="b"), at=T0 + HOUR))
    [story] = synced.stories()
    assert story.face.source == "alpha"


@pytest.mark.parametrize(
    ("published", "updated", "sort_time"),
    [
        (T0 - HOUR, T0, T0 - HOUR),
        (None, T0 - 2 * HOUR, T0 - 2 * HOUR),
        (None, None, T0),
        (T0 + 2 * timedelta(days=1), None, T0),  # a date far ahead counts as first seen
        (T0 + timedelta(hours=20), None, T0 + timedelta(hours=20)),
    ],
)
def test_sort_time_is_published_else_updated_else_first_seen(
    synced: Store, published: datetime | None, updated: datetime | None, sort_time: datetime
) -> None:
    synced.record_poll(poll("alpha", entry(1, published=published, updated=updated)))
    assert synced.stories()[0].sort_time == sort_time


def test_stories_newest_first_with_limit_offset_sources_and_since(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1), entry(3), entry(5)))
    synced.record_poll(poll("beta", entry(2), entry(4)))
    late_copy = entry(6, link="https://news.example/articles/1", published=T0 - HOUR / 2)
    synced.record_poll(poll("gamma", late_copy))

    def titles(**query: object) -> list[str]:
        return [story.face.title for story in synced.stories(**query)]  # type: ignore[arg-type]

    assert titles() == ["Article 1", "Article 2", "Article 3", "Article 4", "Article 5"]
    assert titles(limit=2, offset=1) == ["Article 2", "Article 3"]
    assert titles(sources=["beta"]) == ["Article 2", "Article 4"]
    assert titles(sources=["gamma"]) == ["Article 1"]
    assert titles(sources=[]) == []
    assert titles(since=T0 - 3 * HOUR) == ["Article 1", "Article 2", "Article 3"]


def test_stories_with_equal_sort_time_newest_row_first(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1, published=T0), entry(2, published=T0)))
    assert [story.face.title for story in synced.stories()] == ["Article 2", "Article 1"]


@pytest.mark.parametrize(
    ("configured", "from_feed", "expected"),
    [("Configured", "Feed's", "Configured"), (None, "Feed's", "Feed's"), (None, None, "alpha")],
)
def test_source_title_is_configured_else_the_feeds_else_the_name(
    store: Store, configured: str | None, from_feed: str | None, expected: str
) -> None:
    store.sync_sources([source("alpha", title=configured)])
    store.record_poll(poll("alpha", entry(1), feed_title=from_feed))
    assert store.stories()[0].face.source_title == expected


# -- data version --------------------------------------------------------------


def test_data_version_moves_only_when_outputs_change(synced: Store) -> None:
    versions = [synced.data_version()]
    steps = [
        poll("alpha", entry(1)),  # new
        poll("alpha", entry(1), at=T0 + HOUR),  # unchanged
        poll("alpha", status="not_modified", at=T0 + 2 * HOUR),
        poll("alpha", entry(1, title="Edited"), at=T0 + 3 * HOUR),  # updated
        poll("alpha", entry(1, title="Edited"), feed_title="Renamed", at=T0 + 4 * HOUR),
    ]
    for record in steps:
        synced.record_poll(record)
        versions.append(synced.data_version())
    assert versions == [0, 1, 1, 1, 2, 3]


# -- stories across sources: titles and texts ----------------------------------------

ARTICLE_TEXT = (
    "<p>In Iran, protests and strikes are now spreading across every sector of the economy, "
    "with 100 strikes and protests over the past few months. There now exists an enormous "
    "potential to unify the movement.</p>"
)


def test_copy_under_its_own_url_joins_by_title_and_text(synced: Store) -> None:
    original = entry(1, title="Iran: For an Independent Labor Movement!", summary=ARTICLE_TEXT)
    copy = entry(
        1,
        guid="beta-1",
        link="https://beta.example/2021/06/iran-labor/",
        title="IRAN: FOR AN INDEPENDENT LABOR MOVEMENT…",
        summary=ARTICLE_TEXT.replace("</p>", " This article first appeared elsewhere.</p>"),
        published=T0,
    )
    synced.record_poll(poll("alpha", original))
    assert synced.record_poll(poll("beta", copy, at=T0 + HOUR)) == SaveCounts(new=1, duplicates=1)
    [story] = synced.stories()
    assert story.sources == ("alpha", "beta")
    # The copy's own URL now leads to the story too.
    third = entry(1, guid="gamma-1", link="https://beta.example/2021/06/iran-labor", title="x")
    assert synced.record_poll(poll("gamma", third)) == SaveCounts(new=1, duplicates=1)


@pytest.mark.parametrize(
    "title", ["Editorial", "Weekly update", "Letters", "Podcast", "Help Wanted"]
)
def test_different_articles_with_a_generic_title_stay_apart(synced: Store, title: str) -> None:
    synced.record_poll(poll("alpha", entry(1, title=title, summary="<p>Short one.</p>")))
    synced.record_poll(poll("beta", entry(2, title=title, summary=ARTICLE_TEXT)))
    synced.record_poll(poll("gamma", entry(3, title=title, summary="")))
    assert len(synced.stories()) == 3


def test_one_source_never_joins_its_own_story_by_likeness(synced: Store) -> None:
    first = entry(1, title="Iran: For an Independent Labor Movement!", summary=ARTICLE_TEXT)
    again = replace(first, guid="guid-1-reposted", link="https://news.example/repost")
    synced.record_poll(poll("alpha", first))
    synced.record_poll(poll("alpha", first, again, at=T0 + HOUR))
    assert len(synced.stories()) == 2


def test_same_title_far_apart_in_time_is_another_story(synced: Store) -> None:
    title = "Iran: For an Independent Labor Movement!"
    synced.record_poll(poll("alpha", entry(1, title=title, published=T0 - 30 * 24 * HOUR)))
    synced.record_poll(poll("beta", entry(2, title=title, published=T0)))
    assert len(synced.stories()) == 2


def test_changed_entry_is_found_by_what_it_says_now(synced: Store) -> None:
    synced.record_poll(poll("alpha", entry(1, title="Draft", summary="")))
    new_title = "The Racist Terror of Tulsa 1921"
    synced.record_poll(poll("alpha", entry(1, title=new_title), at=T0 + HOUR))
    copy = entry(9, guid="b", link="https://beta.example/tulsa", title=new_title, published=T0)
    assert synced.record_poll(poll("beta", copy, at=T0 + 2 * HOUR)).duplicates == 1
    assert len(synced.stories()) == 1


def test_upgrade_gives_entries_stored_without_fingerprints_their_keys(synced: Store) -> None:
    from aggregator.store import (
        FINGERPRINT_VERSION,
        entry_fingerprints,
        match_keys,
        meta,
        story_keys,
    )

    title = "The Racist Terror of Tulsa 1921"
    amp_link = "https://amp.news.example/tulsa"
    synced.record_poll(poll("alpha", entry(1, title=title, link=amp_link)))
    with synced._engine.begin() as conn:  # what a database from before fingerprints holds
        conn.execute(delete(match_keys))
        conn.execute(delete(entry_fingerprints))
        conn.execute(delete(story_keys))  # and link keys of an older form
        conn.execute(delete(meta).where(meta.c.key == FINGERPRINT_VERSION))
    synced.upgrade()
    by_title = entry(2, guid="b", link="https://beta.example/tulsa", title=title)
    by_link = entry(3, guid="c", link="https://news.example/tulsa", title="Other")
    assert synced.record_poll(poll("beta", by_title)).duplicates == 1
    assert synced.record_poll(poll("gamma", by_link)).duplicates == 1
    assert len(synced.stories()) == 1


def _downgrade(store: Store, revision: str) -> None:
    import alembic.command
    import alembic.config

    config = alembic.config.Config()
    config.set_main_option("script_location", "aggregator:migrations")
    with store._engine.begin() as conn:
        config.attributes["connection"] = conn
        alembic.command.downgrade(config, revision)


def test_migration_0007_rebuilds_the_candidate_keys_without_the_story(synced: Store) -> None:
    """Down to 0006 (match_keys with its story column, empty) and up again: the keys are
    recomputed from the stored entries by the upgrade, and a copy still finds its story."""
    from sqlalchemy import func, inspect

    from aggregator.store import match_keys

    title = "The Racist Terror of Tulsa 1921"
    synced.record_poll(poll("alpha", entry(1, title=title, summary=f"<p>{FLOYD_TEXT}</p>")))
    with synced._engine.connect() as conn:
        keys_before = set(conn.execute(select(match_keys)).all())
    assert keys_before

    _downgrade(synced, "0006_scale")
    with synced._engine.connect() as conn:
        old_columns = {column["name"] for column in inspect(conn).get_columns("match_keys")}
        assert "story_id" in old_columns
        assert conn.scalar(select(func.count()).select_from(text("match_keys"))) == 0

    synced.upgrade()
    with synced._engine.connect() as conn:
        columns = {column["name"] for column in inspect(conn).get_columns("match_keys")}
        assert columns == {"key", "at", "entry_id", "source_id"}
        assert set(conn.execute(select(match_keys)).all()) == keys_before
    copy = entry(2, guid="b", link="https://beta.example/tulsa", title="A headline of its own")
    copy = replace(copy, summary=f"<p>{FLOYD_TEXT}</p>")
    assert synced.record_poll(poll("beta", copy)).duplicates == 1


def test_migration_0008_keeps_candidate_key_times_as_whole_seconds(synced: Store) -> None:
    """Down to 0007 (the time as a timestamp, table empty) and up again: the keys come back
    with their times as whole seconds since the epoch, and a copy still finds its story."""
    from sqlalchemy import func

    from aggregator.store import key_seconds, match_keys

    published = datetime(2025, 3, 1, 9, 30, 15, 999_999, tzinfo=UTC)
    first = replace(entry(1, title="A headline"), summary=f"<p>{FLOYD_TEXT}</p>")
    synced.record_poll(poll("alpha", replace(first, published=published)))
    with synced._engine.connect() as conn:
        keys_before = set(conn.execute(select(match_keys)).all())
    assert keys_before
    assert {row.at for row in keys_before} == {key_seconds(published)}
    assert key_seconds(published) == int(published.timestamp())  # rounded down

    _downgrade(synced, "0007_slim_match_keys")
    with synced._engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(text("match_keys"))) == 0

    synced.upgrade()
    with synced._engine.connect() as conn:
        assert set(conn.execute(select(match_keys)).all()) == keys_before
    copy = entry(2, guid="b", link="https://beta.example/other", title="A headline of its own")
    copy = replace(copy, summary=f"<p>{FLOYD_TEXT}</p>", published=published)
    assert synced.record_poll(poll("beta", copy)).duplicates == 1


FLOYD_TEXT = (
    "One year ago, George Floyd was brutally murdered by racist police. His tragic death "
    "would ignite the largest mass movement in the history of the US. Millions took to the "
    "streets in every state, defying curfews, tear gas and the National Guard."
)
