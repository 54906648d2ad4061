"""The database: sources and their polling state, entries, stories and the dedup index.

Everything SQL lives here, written as SQLAlchemy Core statements over the tables
below; the schema itself is created and changed only by the Alembic migrations in
`aggregator/migrations/`. SQLite (one file) and PostgreSQL are both first-class.

Each public method is one transaction. `record_poll` writes a source's new polling
state together with the entries of the document it fetched, so a crash at any
moment leaves either the old state and old entries or the new ones, never a mix.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    cast,
    create_engine,
    event,
    exists,
    func,
    insert,
    inspect,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.types import DateTime

from aggregator import dedupe
from aggregator.fingerprint import VERSION as FINGERPRINTS
from aggregator.fingerprint import candidate_keys_of, fingerprints
from aggregator.model import (
    DayActivity,
    Enclosure,
    Image,
    ParsedEntry,
    PollLog,
    PollRecord,
    SaveCounts,
    SourceState,
    StoredEntry,
    Story,
    Validators,
)

# A published date further ahead of first sight than this is a wrong clock or a
# scheduled post; it must not pin a story to the top of every output feed.
FUTURE_TOLERANCE = timedelta(days=1)

DATA_VERSION = "data_version"
# The meta key that says which release's fingerprints the stored entries have.
FINGERPRINT_VERSION = "fingerprint_version"

log = logging.getLogger("aggregator.store")

# SQLite and PostgreSQL both accept far more bound parameters than this; the cap
# keeps a 1,000-entry document's IN lists well inside old SQLite's limit of 999.
_IN_CHUNK = 500

# Lets concurrent `aggregator run` processes on PostgreSQL start at the same time:
# the first migrates, the others wait and then find the schema current.
_PG_MIGRATION_LOCK = 0x61676772  # "aggr"

# The newest migration's revision (tests hold it to the scripts). A database already
# there is not handed to Alembic at all: loading it and its scripts is a fifth of the
# start-up of every command, and almost every start finds nothing to do.
SCHEMA_HEAD = "0008_match_key_seconds"

_WRITE_OPTION = "aggregator_write"

# Retention (migration 0005_retention). Stories are pruned this many at a time, each
# batch in a transaction of its own: a few hundred rows take milliseconds, so SQLite's
# write lock and PostgreSQL's row locks are never held long and polls go on meanwhile.
PRUNE_BATCH = 200
# A tombstone lives while its source keeps listing the entry, and this long after the
# source last listed it. Feeds drop old items within days; some rotate items in and
# out for a few weeks (paged or "most read" feeds). After a month unseen, an entry is
# not coming back, and the table stays as small as what the feeds still list.
TOMBSTONE_GRACE = timedelta(days=30)
# Polls listed on a source's page; older ones are deleted as new ones are written.
POLL_HISTORY = 100
# Days of per-source activity kept for the charts (they show 30).
ACTIVITY_DAYS = 90

_T = TypeVar("_T")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in, timezone-aware UTC datetimes out.

    PostgreSQL keeps the offset (timestamptz); SQLite has no such type, so values
    are stored there as naive UTC and given their zone back when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        # On SQLite, the text the dialect's DATETIME would make of the naive value, made
        # in one step: through process_bind_param and the dialect's own formatting a value
        # took 4 µs, and a new entry binds about nine.
        if dialect.name == "sqlite":
            return _sqlite_time
        return super().bind_processor(dialect)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} given to the store; use UTC")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _sqlite_time(value: datetime | None) -> str | None:
    """A UTC datetime as SQLAlchemy's SQLite dialect writes it: "2025-03-01 12:00:00.000000"."""
    if value is None:
        return None
    # isoformat of an aware datetime would add "+00:00"; the digits before it are these.
    return _utc(value).isoformat(" ", "microseconds")[:26]


# Constraint names spelled out, so that the migrations and these tables agree and
# later migrations can drop or alter constraints by name on every database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
    }
)

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("configured_url", Text),
    Column("url", Text),  # in use: a 301/308 replaces the configured one
    Column("path", Text),
    Column("title", Text),  # configured
    Column("feed_title", Text),
    Column("site_link", Text),
    Column("enabled", Boolean, nullable=False),
    Column("gone", Boolean, nullable=False),  # answered 410
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(128)),
    Column("last_polled_at", UTCDateTime),
    Column("last_status", String(20)),
    Column("last_error", Text),
    Column("error_count", Integer, nullable=False),
    Column("next_poll_at", UTCDateTime, index=True),
    Column("http_status", Integer),
    # False once removed from the configuration; the row stays so its history does.
    Column("configured", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Migration 0003_polling: the daemon's polling state.
    Column("host", String(255), index=True),  # of `url`, lower-case: what Retry-After binds
    Column("claimed_by", String(200)),  # the poller holding the source …
    Column("lease_until", UTCDateTime),  # … until then; afterwards anyone may claim it
    Column("ttl_minutes", Integer),
    Column("update_period_minutes", Integer),
    Column("last_ok_at", UTCDateTime),
    Column("moved_from", Text),  # the URL a 301/308 moved the source away from
    Column("moved_at", UTCDateTime),
)

# A 429/503 Retry-After from one source binds every source on its host until `not_before`.
hosts = Table(
    "hosts",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("not_before", UTCDateTime, nullable=False),
    Column("reason", Text),
)

# stories.face_entry_id deliberately has no foreign key: entries already point at
# stories, and the cycle would need ALTER TABLE ADD CONSTRAINT, which SQLite lacks.
stories = Table(
    "stories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", String(100), nullable=False, unique=True),
    Column("sort_time", UTCDateTime, nullable=False, index=True),
    Column("face_entry_id", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("story_id", Integer, ForeignKey("stories.id"), nullable=False),
    Column("entry_key", Text, nullable=False),
    Column("content_hash", String(128), nullable=False),
    Column("guid", Text),
    Column("link", Text),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("author", Text),
    Column("published", UTCDateTime),
    Column("updated", UTCDateTime),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("enclosures", JSON, nullable=False),
    Column("image_url", Text),
    Column("image_caption", Text),
    Column("orig_link", Text),
    UniqueConstraint("source_id", "entry_key", name="uq_entries_source_key"),
    # (story_id, source_id): "did one of these sources carry this story?", the question
    # every output feed asks of each candidate, is answered from the index alone.
    Index("ix_entries_story_source", "story_id", "source_id"),
)

# The dedup index: any entry whose dedupe.story_keys hit a row here joins that story.
story_keys = Table(
    "story_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column(
        "story_id",
        Integer,
        ForeignKey("stories.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)

# What fuzzy matching compares of each entry (fingerprint.Fingerprint), one row per entry.
entry_fingerprints = Table(
    "entry_fingerprints",
    metadata,
    Column("entry_id", Integer, ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("title", Text, nullable=False),
    Column("title_specific", Boolean, nullable=False),
    Column("lead", Text, nullable=False),  # the first words, space-separated
    Column("words", Integer, nullable=False),
    Column("shingles", Integer, nullable=False),
    Column("truncated", Boolean, nullable=False),
    Column("signature", LargeBinary),  # MinHash, NUM_PERM little-endian uint32
    Column("at", UTCDateTime, nullable=False),
)

# The candidate key index: every entry under each of its fingerprint.candidate_keys.
# Ordered by (key, at) so that a key's copies within the time window are one range read.
match_keys = Table(
    "match_keys",
    metadata,
    Column("key", BigInteger, primary_key=True),
    # Whole seconds since the epoch (`key_seconds`): half the row a timestamp was (0008).
    Column("at", BigInteger, primary_key=True),
    Column("entry_id", Integer, ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    # No story: an entry never changes story, and a third index written for every key
    # cost more than reading a found key's story from its entry (migration 0007).
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Index("ix_match_keys_entry_id", "entry_id"),
    sqlite_with_rowid=False,
)

# Entries removed by retention, so a source that still lists one does not bring it back.
tombstones = Table(
    "tombstones",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("entry_key", Text, primary_key=True),
    Column("pruned_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False, index=True),  # last listed by the source
)

# The last POLL_HISTORY polls of each source, for its status page.
polls = Table(
    "polls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("polled_at", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False),
    Column("http_status", Integer),
    Column("bytes", Integer, nullable=False),
    Column("new", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("duration", Float),
    Column("error", Text),
    Index("ix_polls_source_id", "source_id", "id"),
)

# Per source and UTC day: polls by outcome and entries that arrived (the status charts).
poll_days = Table(
    "poll_days",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True, index=True),
    Column("polls", Integer, nullable=False),
    Column("ok", Integer, nullable=False),
    Column("not_modified", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("new", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)


class SourceSettings(Protocol):
    """What the store reads of a configured source (config.SourceConfig has these)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def path(self) -> Path | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def enabled(self) -> bool: ...


# What SQLite's terser messages usually mean on a server (it must also create the
# -wal and -shm files beside the database).
_SQLITE_HINTS = {
    "unable to open database file": "is its folder missing, read-only or full?",
    "disk I/O error": "is the disk full or read-only?",
    "attempt to write a readonly database": "is the file or its disk read-only?",
    "database is locked": "another process holds the write lock",
}


def describe_error(error: BaseException) -> str:
    """A database error as an admin reads it: the driver's own words, on one line,
    without SQLAlchemy's SQL echo and documentation link, with a hint where
    SQLite's words are terse."""
    cause = getattr(error, "orig", None) or error
    text = " ".join(str(cause).split()) or type(cause).__name__
    hint = _SQLITE_HINTS.get(text)
    return f"{text} ({hint})" if hint else text


def display_url(url: str) -> str:
    """The database URL as logs and messages show it: any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


class UnknownSourceError(LookupError):
    """A poll was recorded for a source the database does not hold."""

    def __init__(self, source: str) -> None:
        super().__init__(f"{source}: no such source in the database (sync_sources first)")
        self.source = source


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What `Store.prune` removed (or, with dry_run, would remove)."""

    cutoff: datetime  # stories sorted before this are old enough
    stories: int
    entries: int
    tombstones_expired: int  # tombstones dropped, their entries unseen for TOMBSTONE_GRACE
    tombstones: int  # tombstones kept afterwards (with dry_run: now)
    batches: int = 0
    dry_run: bool = False


class Store:
    """The aggregator's database behind a small typed API; every method is one transaction."""

    def __init__(self, url: str) -> None:
        """Connect lazily to `url` (any SQLAlchemy URL); the schema is not touched."""
        parsed = make_url(url)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        database = parsed.database
        if (
            self._sqlite
            and database
            and database != ":memory:"
            and not database.startswith("file:")
        ):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # SQLite: the most recently returned connection is handed out first, so the one
        # writer keeps its page cache warm from one write to the next (another
        # connection's write makes SQLite drop a connection's cache), and the others
        # idle with whatever little they read.
        self._engine: Engine = (
            create_engine(parsed, pool_use_lifo=True) if self._sqlite else create_engine(parsed)
        )
        if self._sqlite:
            _configure_sqlite(self._engine)

    @property
    def single_writer(self) -> bool:
        """Whether one writer at a time is all the database takes (SQLite's lock): no
        other poller's write can then get in the way of a group commit."""
        return self._sqlite

    # -- schema and health -------------------------------------------------

    def upgrade(self) -> None:
        """Apply every Alembic migration not yet applied (alembic upgrade head)."""
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
            if _schema_revision(conn) != SCHEMA_HEAD:
                # Imported here: only a database that is behind (or new) needs them.
                import alembic.command
                import alembic.config

                config = alembic.config.Config()
                config.set_main_option("script_location", "aggregator:migrations")
                config.attributes["connection"] = conn
                alembic.command.upgrade(config, "head")
            _refresh_fingerprints(conn)

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self._engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self._engine.dispose()

    def data_version(self) -> int:
        """A number that changes in every transaction that changes what outputs show."""
        with self._engine.connect() as conn:
            value = conn.scalar(select(meta.c.value).where(meta.c.key == DATA_VERSION))
        return int(value) if value is not None else 0

    # -- sources -------------------------------------------------------------

    def sync_sources(self, configured: Iterable[SourceSettings]) -> None:
        """Make the sources table match the configuration.

        New sources are due at once. A source whose URL or path changed starts
        afresh at the new location: validators, body hash, error count and `gone`
        are cleared and it is due at once. Sources no longer configured keep their
        rows (and entries) but are never due again.
        """
        now = datetime.now(UTC)
        wanted = {source.name: source for source in configured}
        with self._write() as conn:
            rows = {row.name: row for row in conn.execute(select(sources))}
            changed_outputs = False
            new_rows = []
            for name, source in wanted.items():
                path = str(source.path) if source.path is not None else None
                row = rows.get(name)
                if row is None:
                    new_rows.append(
                        {
                            "name": name,
                            "configured_url": source.url,
                            "url": source.url,
                            "path": path,
                            "title": source.title,
                            "enabled": source.enabled,
                            "gone": False,
                            "error_count": 0,
                            "configured": True,
                            "created_at": now,
                            "host": host_of(source.url),
                        }
                    )
                    continue
                values: dict[str, Any] = {
                    "path": path,
                    "title": source.title,
                    "enabled": source.enabled,
                    "configured": True,
                }
                if row.configured_url != source.url or row.path != path:
                    values |= {
                        "configured_url": source.url,
                        "url": source.url,
                        "host": host_of(source.url),
                        "etag": None,
                        "last_modified": None,
                        "body_hash": None,
                        "gone": False,
                        "error_count": 0,
                        "next_poll_at": None,
                        "moved_from": None,
                        "moved_at": None,
                        "ttl_minutes": None,
                        "update_period_minutes": None,
                    }
                if any(getattr(row, column) != value for column, value in values.items()):
                    conn.execute(update(sources).where(sources.c.id == row.id).values(values))
                    # Titles and URLs show in every output entry's <source>.
                    changed_outputs = changed_outputs or (row.title, row.url) != (
                        source.title,
                        values.get("url", row.url),
                    )
            if new_rows:
                conn.execute(insert(sources), new_rows)
            removed = [
                row.id for name, row in rows.items() if name not in wanted and row.configured
            ]
            if removed:
                conn.execute(
                    update(sources).where(sources.c.id.in_(removed)).values(configured=False)
                )
            if changed_outputs:
                _bump_data_version(conn)

    def source_states(self) -> list[SourceState]:
        """Every configured source, by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                _source_state_query().where(sources.c.configured).order_by(sources.c.name)
            )
            return [_source_state(row) for row in rows]

    def source_state(self, name: str) -> SourceState | None:
        """One source by name, configured or not; None when the database never held it."""
        with self._engine.connect() as conn:
            row = conn.execute(_source_state_query().where(sources.c.name == name)).one_or_none()
        return _source_state(row) if row is not None else None

    def due_sources(self, now: datetime, names: Collection[str] | None = None) -> list[SourceState]:
        """Configured, enabled sources to poll now, the longest-waiting first.

        Their `entry_count` is left at 0 (see `source_states` for counts).

        Without `names`: those not gone whose next poll time has come (never
        polled counts as due). With `names`: those sources whatever their next
        poll time, gone ones included, since someone asked for them by name.
        """
        # Without entry counts: the scheduler never reads them, and counting each due
        # source's entries on every tick took 1.4 s on PostgreSQL at 300,000 entries.
        query = _source_state_query(counts=False).where(sources.c.configured, sources.c.enabled)
        if names is None:
            query = query.where(
                ~sources.c.gone,
                sources.c.next_poll_at.is_(None) | (sources.c.next_poll_at <= now),
            )
        else:
            query = query.where(sources.c.name.in_(list(names)))
        query = query.order_by(sources.c.next_poll_at.asc().nulls_first(), sources.c.name)
        with self._engine.connect() as conn:
            return [_source_state(row) for row in conn.execute(query)]

    # -- claims ----------------------------------------------------------------

    def claim_due(
        self, now: datetime, *, owner: str, lease: timedelta, limit: int
    ) -> list[SourceState]:
        """Take up to `limit` due sources for `owner` until `now + lease`, most overdue first.

        Due: configured, enabled, not gone, next poll time come (or never polled), no
        live lease held by anyone, and no Retry-After holding back its host. One
        transaction: on PostgreSQL the candidate rows are locked `FOR UPDATE SKIP
        LOCKED`, so concurrent pollers each take different sources without waiting on
        one another; on SQLite the write lock taken at BEGIN IMMEDIATE does the same.
        The lease is released by `record_poll` (or `release_claims`); a poller that dies
        holding one loses it when it runs out, and the source is claimed again.
        """
        if limit <= 0:
            return []
        candidates = (
            select(sources.c.id)
            .where(sources.c.configured, sources.c.enabled, ~sources.c.gone)
            .where(sources.c.next_poll_at.is_(None) | (sources.c.next_poll_at <= now))
            .where(_unleased(now), _host_open(now))
            .order_by(sources.c.next_poll_at.asc().nulls_first(), sources.c.name)
            .limit(limit)
            .with_for_update(skip_locked=True, of=sources)
        )
        return self._claim(candidates, now, owner, lease)

    def claim_named(
        self, names: Collection[str], now: datetime, *, owner: str, lease: timedelta
    ) -> list[SourceState]:
        """Take these configured, enabled sources whatever their schedule (gone ones too,
        since someone asked for them by name), skipping any another poller holds now."""
        candidates = (
            select(sources.c.id)
            .where(sources.c.configured, sources.c.enabled, sources.c.name.in_(list(names)))
            .where(_unleased(now))
            .order_by(sources.c.name)
            .with_for_update(skip_locked=True, of=sources)
        )
        return self._claim(candidates, now, owner, lease)

    def _claim(
        self, candidates: Select[Any], now: datetime, owner: str, lease: timedelta
    ) -> list[SourceState]:
        with self._write() as conn:
            ids = list(conn.scalars(candidates))
            if not ids:
                return []
            for chunk in _chunks(ids):
                conn.execute(
                    update(sources)
                    .where(sources.c.id.in_(chunk))
                    .values(claimed_by=owner, lease_until=now + lease)
                )
            order = {source_id: index for index, source_id in enumerate(ids)}
            rows: list[Row[Any]] = []
            for chunk in _chunks(ids):
                rows.extend(conn.execute(_source_state_query().where(sources.c.id.in_(chunk))))
        rows.sort(key=lambda row: order[row.id])
        return [_source_state(row) for row in rows]

    def release_claims(self, owner: str, names: Collection[str] | None = None) -> int:
        """Give back `owner`'s leases (all, or these sources') without recording a poll,
        so polls abandoned at shutdown are due again at once; returns how many."""
        statement = update(sources).where(sources.c.claimed_by == owner)
        if names is not None:
            statement = statement.where(sources.c.name.in_(list(names)))
        with self._write() as conn:
            return conn.execute(statement.values(claimed_by=None, lease_until=None)).rowcount

    def defer(self, name: str, owner: str, until: datetime) -> None:
        """Give back `owner`'s claim on `name` unpolled, due again at `until` (its host
        asked for a pause while the source waited for its turn)."""
        with self._write() as conn:
            conn.execute(
                update(sources)
                .where(sources.c.name == name, sources.c.claimed_by == owner)
                .values(claimed_by=None, lease_until=None, next_poll_at=until)
            )

    def renew_claims(self, owner: str, names: Collection[str], until: datetime) -> set[str]:
        """Move the lease of `owner`'s claims on these sources to `until`, so a poll that
        runs long (a slow host, a busy parser pool) keeps its source; returns the names
        renewed. A claim that ran out and was taken by another poller is not `owner`'s
        any more and stays with its new holder."""
        if not names:
            return set()
        renewed: set[str] = set()
        with self._write() as conn:
            for chunk in _chunks(sorted(names)):
                renewed.update(
                    conn.scalars(
                        update(sources)
                        .where(sources.c.claimed_by == owner, sources.c.name.in_(chunk))
                        .values(lease_until=until)
                        .returning(sources.c.name)
                    )
                )
        return renewed

    def claim_holders(self, now: datetime) -> set[str]:
        """Every owner holding a live lease on some source at `now`."""
        query = (
            select(sources.c.claimed_by)
            .where(sources.c.claimed_by.is_not(None), ~_unleased(now))
            .distinct()
        )
        with self._engine.connect() as conn:
            return {str(owner) for owner in conn.scalars(query)}

    def overdue_sources(self, now: datetime) -> list[SourceState]:
        """Unclaimed sources that would be claimed now: never polled, or their time passed."""
        query = (
            _source_state_query()
            .where(sources.c.configured, sources.c.enabled, ~sources.c.gone)
            .where(sources.c.next_poll_at.is_(None) | (sources.c.next_poll_at <= now))
            .where(_unleased(now))
            .order_by(sources.c.name)
        )
        with self._engine.connect() as conn:
            return [_source_state(row) for row in conn.execute(query)]

    def reschedule(self, times: Mapping[str, datetime], now: datetime) -> int:
        """Move these sources' next poll to the given times, for those still overdue and
        unclaimed (so a poller that took one meanwhile keeps it); returns how many moved."""
        if not times:
            return 0
        moved = 0
        with self._write() as conn:
            for name, when in times.items():
                moved += conn.execute(
                    update(sources)
                    .where(sources.c.name == name, _unleased(now))
                    .where(sources.c.next_poll_at.is_(None) | (sources.c.next_poll_at <= now))
                    .values(next_poll_at=when)
                ).rowcount
        return moved

    # -- polls ---------------------------------------------------------------

    def record_poll(self, record: PollRecord) -> SaveCounts:
        """Write everything one poll learned in one transaction; say what the entries did.

        `new` counts every entry inserted; `duplicates` counts those of them that
        joined an existing story (another source's, or one an earlier entry of the
        same document started) instead of starting one.
        Raises UnknownSourceError when `record.source` was never synced.
        """
        return self.record_polls([record])[0]

    def record_polls(self, records: Sequence[PollRecord]) -> list[SaveCounts]:
        """`record_poll` of each record, all in one transaction (a group commit): each
        poll's writes are whole, and all of them are kept or none is. One commit for
        many polls is what a pass over thousands of sources pays: the 304s need no more,
        and documents' entries dirty the same index pages, written to the WAL once."""
        # Identity, hashes and fingerprints are pure work: done before the write lock is
        # taken, and by the parser worker when the poll ran one (`record.prepared`).
        incoming = [_prepared_entries(record) for record in records]
        with self._write() as conn:
            known: dict[str, Any] = {}
            for names in _chunks(sorted({record.source for record in records})):
                for row in conn.execute(
                    select(
                        sources.c.id,
                        sources.c.name,
                        sources.c.feed_title,
                        sources.c.site_link,
                        sources.c.url,
                        sources.c.host,
                    ).where(sources.c.name.in_(names))
                ):
                    known[row.name] = row
            counts: list[SaveCounts] = []
            changed = False
            for record, items in zip(records, incoming, strict=True):
                source = known.get(record.source)
                if source is None:
                    raise UnknownSourceError(record.source)
                one, source_changed = _record(conn, source, record, items)
                counts.append(one)
                changed = changed or bool(one.new or one.updated or source_changed)
            # The bookkeeping of every poll of the group (the sources' polling state, the
            # history lines, the day tallies) in a few executemany statements.
            ids = [known[record.source].id for record in records]
            _update_sources(conn, list(zip(ids, records, strict=True)))
            _log_polls(conn, list(zip(ids, records, counts, strict=True)))
            if changed:
                _bump_data_version(conn)
            return counts

    # -- reading stories -----------------------------------------------------

    def stories(
        self,
        *,
        sources: Collection[str] | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Story]:
        """Stories newest first, each with its face and every copy (earliest published first).

        `sources` keeps stories that at least one of these sources carries; `since`
        keeps stories whose sort time is at or after it.
        """
        page = select(stories.c.id, stories.c.uid, stories.c.sort_time, stories.c.face_entry_id)
        if sources is not None:
            page = page.where(
                exists()
                .where(entries.c.story_id == stories.c.id)
                .where(entries.c.source_id == _sources_table.c.id)
                .where(_sources_table.c.name.in_(list(sources)))
            )
        if since is not None:
            page = page.where(stories.c.sort_time >= since)
        page = page.order_by(stories.c.sort_time.desc(), stories.c.id.desc())
        page = page.limit(limit).offset(offset)
        with self._engine.connect() as conn:
            heads = conn.execute(page).all()
            if not heads:
                return []
            copies: dict[int, list[tuple[_CopyOrder, int, StoredEntry]]] = {}
            for chunk in _chunks([head.id for head in heads]):
                for row in conn.execute(_copies_query().where(entries.c.story_id.in_(chunk))):
                    order = _copy_order(row.published, row.updated, row.first_seen, row.id)
                    copies.setdefault(row.story_id, []).append((order, row.id, _stored_entry(row)))
        result = []
        for head in heads:
            story_copies = sorted(copies.get(head.id, []), key=lambda item: item[0])
            if not story_copies:
                continue  # its entries were pruned under it
            face = next(
                (entry for _, entry_id, entry in story_copies if entry_id == head.face_entry_id),
                story_copies[0][2],
            )
            result.append(
                Story(
                    uid=head.uid,
                    sort_time=head.sort_time,
                    face=face,
                    copies=tuple(entry for _, _, entry in story_copies),
                )
            )
        return result

    # -- what the status pages show -------------------------------------------

    def poll_history(self, name: str, limit: int = 50) -> list[PollLog]:
        """A source's most recent polls, newest first (at most POLL_HISTORY are kept)."""
        query = (
            select(polls)
            .join(sources, polls.c.source_id == sources.c.id)
            .where(sources.c.name == name)
            .order_by(polls.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                PollLog(
                    polled_at=row.polled_at,
                    status=row.status,
                    http_status=row.http_status,
                    bytes=row.bytes,
                    new=row.new,
                    updated=row.updated,
                    duration=row.duration,
                    error=row.error,
                )
                for row in conn.execute(query)
            ]

    def activity(
        self, since: date, names: Collection[str] | None = None
    ) -> dict[str, list[DayActivity]]:
        """Each source's days from `since` on that saw a poll, oldest first: one query
        for every source, so a page of sparklines costs one round trip."""
        query = (
            select(sources.c.name, poll_days)
            .join(sources, poll_days.c.source_id == sources.c.id)
            .where(poll_days.c.day >= since)
            .order_by(sources.c.name, poll_days.c.day)
        )
        if names is not None:
            query = query.where(sources.c.name.in_(list(names)))
        found: dict[str, list[DayActivity]] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                found.setdefault(row.name, []).append(
                    DayActivity(
                        day=row.day,
                        polls=row.polls,
                        ok=row.ok,
                        not_modified=row.not_modified,
                        unchanged=row.unchanged,
                        errors=row.errors,
                        new=row.new,
                        updated=row.updated,
                        bytes=row.bytes,
                    )
                )
        return found

    def source_entries(self, name: str, limit: int = 50) -> list[StoredEntry]:
        """A source's own entries, newest published (else first seen) first."""
        query = (
            _copies_query()
            .where(sources.c.name == name)
            .order_by(
                func.coalesce(entries.c.published, entries.c.first_seen).desc(),
                entries.c.id.desc(),
            )
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_stored_entry(row) for row in conn.execute(query)]

    # -- retention -----------------------------------------------------------

    def prune(
        self,
        now: datetime,
        retention: timedelta,
        *,
        batch: int = PRUNE_BATCH,
        dry_run: bool = False,
    ) -> PruneReport:
        """Delete stories whose sort time is older than `now - retention`, with their
        entries, story keys, fingerprints and match keys, `batch` stories per transaction;
        leave a tombstone for every entry removed; drop tombstones unseen for
        TOMBSTONE_GRACE and activity older than ACTIVITY_DAYS. With `dry_run`, only count.
        """
        cutoff = now - retention
        forgotten = now - TOMBSTONE_GRACE
        old_days = (now - timedelta(days=ACTIVITY_DAYS)).date()
        if dry_run:
            with self._engine.connect() as conn:
                old = select(stories.c.id).where(stories.c.sort_time < cutoff)
                return PruneReport(
                    cutoff=cutoff,
                    stories=conn.scalar(select(func.count()).select_from(old.subquery())) or 0,
                    entries=conn.scalar(
                        select(func.count()).select_from(entries).where(entries.c.story_id.in_(old))
                    )
                    or 0,
                    tombstones_expired=conn.scalar(
                        select(func.count())
                        .select_from(tombstones)
                        .where(tombstones.c.seen_at < forgotten)
                    )
                    or 0,
                    tombstones=conn.scalar(select(func.count()).select_from(tombstones)) or 0,
                    dry_run=True,
                )
        removed_stories = removed_entries = batches = 0
        while True:
            with self._write() as conn:
                done = _prune_batch(conn, cutoff, now, batch)
            if done is None:
                break
            batches += 1
            removed_stories += done[0]
            removed_entries += done[1]
        expired = 0
        while True:
            with self._write() as conn:
                keys = conn.execute(
                    select(tombstones.c.source_id, tombstones.c.entry_key)
                    .where(tombstones.c.seen_at < forgotten)
                    .limit(batch * 5)
                ).all()
                if keys:
                    conn.execute(
                        tombstones.delete().where(
                            tuple_(tombstones.c.source_id, tombstones.c.entry_key).in_(
                                [tuple(key) for key in keys]
                            )
                        )
                    )
            expired += len(keys)
            if len(keys) < batch * 5:
                break
        with self._write() as conn:
            conn.execute(poll_days.delete().where(poll_days.c.day < old_days))
            kept = conn.scalar(select(func.count()).select_from(tombstones)) or 0
        return PruneReport(
            cutoff=cutoff,
            stories=removed_stories,
            entries=removed_entries,
            tombstones_expired=expired,
            tombstones=kept,
            batches=batches,
        )

    # -- jobs for one process at a time --------------------------------------

    @contextmanager
    def once_every(self, job: str, every: timedelta, now: datetime) -> Iterator[bool]:
        """Yield True when this process should run `job` now: no other process runs it at
        this moment, and nobody ran it (to the end) in the last `every`.

        On PostgreSQL, several daemons share the database, and each schedules the same
        daily jobs: a session advisory lock (`pg_try_advisory_lock`, on a connection held
        for the job's length) lets one of them run while the others skip, and the lock
        goes with the session if that process dies, so no job stays locked. The job's
        last run is kept in `meta`, so it runs once per `every` across all processes,
        not once per process. SQLite has one daemon (the pid file sees to it): the lock
        is a no-op there and only the last run is checked.
        The last run is written only when the block ends without an exception.
        """
        key = f"job:{job}"
        with self._engine.connect() as conn:
            locked = False
            if not self._sqlite:
                # Autocommit: the lock belongs to the session, and no transaction (with its
                # snapshot holding back vacuum) stays open while the job runs.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                locked = bool(conn.scalar(select(func.pg_try_advisory_lock(_job_lock(job)))))
                if not locked:
                    yield False
                    return
            try:
                last = conn.scalar(select(meta.c.value).where(meta.c.key == key))
                if self._sqlite:
                    conn.rollback()  # the read's transaction must not hold SQLite's snapshot
                if last is not None and now - datetime.fromisoformat(last) < every:
                    yield False
                    return
                yield True
                with self._write() as writer:
                    stamp = now.isoformat()
                    if (
                        writer.execute(
                            update(meta).where(meta.c.key == key).values(value=stamp)
                        ).rowcount
                        == 0
                    ):
                        writer.execute(insert(meta).values(key=key, value=stamp))
            finally:
                if locked:
                    conn.scalar(select(func.pg_advisory_unlock(_job_lock(job))))

    # -- plumbing ------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that will write: on SQLite it takes the write lock up front."""
        with self._engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn


# Each SQLite connection's page cache, at most (KiB).
CACHE_KIB = 65536
# Pages of WAL between automatic checkpoints (4 KB each: 64 MB).
WAL_CHECKPOINT_PAGES = 16384

# `stories()` has a parameter named `sources`; the table is reached under this name there.
_sources_table = sources


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and transactions that SQLite really begins.

    Python's sqlite3 module only opens a transaction before the first INSERT or
    UPDATE, so the reads a poll makes before writing would see no snapshot, and DDL
    would run outside any transaction. Handing transaction control to SQLAlchemy
    fixes both; writers take the write lock at BEGIN (IMMEDIATE), so two writers
    queue on the busy timeout instead of one failing when it upgrades its lock.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            # SQLite's default page cache is 2 MB: a poll's index lookups and inserts then
            # reread the same pages from the OS over and over. The candidate key index is
            # keyed by hash, so every document's keys land on pages all over it: with 16 MB
            # a cold pass over 2,000 feeds (a 55 MB index) stored 16% slower than with 64.
            # A connection only fills what it reads; the pool is LIFO, so that is mostly
            # the writer's.
            cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # A checkpoint (copying the WAL into the database, two fsyncs) every 64 MB of
            # WAL instead of SQLite's 4 MB: a cold poll of thousands of feeds spent a
            # quarter of its writer's time checkpointing, rewriting the same index pages
            # again and again; the WAL is cut back to that size after each checkpoint.
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            cursor.execute(f"PRAGMA journal_size_limit={WAL_CHECKPOINT_PAGES * 4096}")
            cursor.execute("PRAGMA temp_store=MEMORY")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _bump_data_version(conn: Connection) -> None:
    # One atomic UPDATE, so concurrent writers on PostgreSQL each get their own increment.
    bumped = conn.execute(
        update(meta)
        .where(meta.c.key == DATA_VERSION)
        .values(value=cast(cast(meta.c.value, Integer) + 1, Text))
    )
    if bumped.rowcount == 0:
        conn.execute(insert(meta).values(key=DATA_VERSION, value="1"))


def _job_lock(job: str) -> int:
    """The advisory lock key of a job: a signed 64-bit number, stable across releases and
    apart from `_PG_MIGRATION_LOCK` (which is below 2**32)."""
    digest = hashlib.blake2b(f"aggregator job {job}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True) | (1 << 40)


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


# -- retention and poll history ---------------------------------------------


def _prune_batch(
    conn: Connection, cutoff: datetime, now: datetime, batch: int
) -> tuple[int, int] | None:
    """Remove the `batch` oldest stories sorted before `cutoff`; None when none is left.

    On PostgreSQL the stories are locked first, skipping any a poll is adding a copy to
    right now (its foreign key check holds them): those wait for the next prune.
    """
    story_ids = list(
        conn.scalars(
            select(stories.c.id)
            .where(stories.c.sort_time < cutoff)
            .order_by(stories.c.sort_time, stories.c.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    if not story_ids:
        return None
    doomed = conn.execute(
        select(entries.c.id, entries.c.source_id, entries.c.entry_key).where(
            entries.c.story_id.in_(story_ids)
        )
    ).all()
    entry_ids = [row.id for row in doomed]
    if doomed:
        _bury(conn, [(row.source_id, row.entry_key) for row in doomed], now)
    for chunk in _chunks(entry_ids):
        conn.execute(match_keys.delete().where(match_keys.c.entry_id.in_(chunk)))
        conn.execute(entry_fingerprints.delete().where(entry_fingerprints.c.entry_id.in_(chunk)))
        conn.execute(entries.delete().where(entries.c.id.in_(chunk)))
    conn.execute(story_keys.delete().where(story_keys.c.story_id.in_(story_ids)))
    conn.execute(stories.delete().where(stories.c.id.in_(story_ids)))
    _bump_data_version(conn)
    return len(story_ids), len(entry_ids)


def _bury(conn: Connection, keys: Sequence[tuple[int, str]], now: datetime) -> None:
    """Tombstones for these (source id, entry key) pairs; an existing one is renewed."""
    rows = [
        {"source_id": source_id, "entry_key": key, "pruned_at": now, "seen_at": now}
        for source_id, key in dict.fromkeys(keys)
    ]
    statement = _upsert(conn)(tombstones).values(rows)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[tombstones.c.source_id, tombstones.c.entry_key],
            set_={"pruned_at": statement.excluded.pruned_at, "seen_at": statement.excluded.seen_at},
        )
    )


def _without_tombstoned(
    conn: Connection, source_id: int, incoming: Sequence[_Incoming], now: datetime
) -> Sequence[_Incoming]:
    """The entries retention has not removed before; the others' tombstones are marked
    seen, so they live as long as the source keeps listing them."""
    if not incoming:
        return incoming
    buried = {
        entry_key
        for (entry_key,) in _select_in(
            conn,
            "SELECT entry_key FROM tombstones WHERE source_id = {mark} AND entry_key IN ({marks})",
            [item.key for item in incoming],
            source_id,
        )
    }
    if not buried:
        return incoming
    for chunk in _chunks(sorted(buried)):
        conn.execute(
            update(tombstones)
            .where(tombstones.c.source_id == source_id, tombstones.c.entry_key.in_(chunk))
            .values(seen_at=now)
        )
    return [item for item in incoming if item.key not in buried]


_OUTCOME_COLUMN = {
    "ok": "ok",
    "not_modified": "not_modified",
    "unchanged": "unchanged",
    "error": "errors",
    "gone": "errors",
}


def _record(
    conn: Connection, source: Row[Any], record: PollRecord, incoming: Sequence[_Incoming]
) -> tuple[SaveCounts, bool]:
    """The entries of one poll and what only it needs (a move, a host's hold); returns what
    the entries did and whether the source's own title, link or URL changed."""
    if record.new_url and record.new_url != source.url:
        conn.execute(
            update(sources)
            .where(sources.c.id == source.id)
            .values(moved_from=source.url, moved_at=record.polled_at, host=host_of(record.new_url))
        )
    if record.host_not_before is not None and source.host:
        _hold_host(conn, source.host, record.host_not_before, record.error)
    incoming = _without_tombstoned(conn, source.id, incoming, record.polled_at)
    counts = _save_entries(conn, source.id, record.source, incoming, record.polled_at)
    feed = record.feed
    # The source's title, home page and URL show in every output entry's <source>.
    source_changed = record.new_url is not None or (
        feed is not None and (feed.title, feed.link) != (source.feed_title, source.site_link)
    )
    return counts, source_changed


def _update_sources(conn: Connection, done: Sequence[tuple[int, PollRecord]]) -> None:
    """Each source's polling state after its poll: one executemany per shape of update
    (the columns a 304 sets differ from those a parsed document sets)."""
    shapes: dict[tuple[tuple[str, ...], bool], list[dict[str, Any]]] = {}
    for source_id, record in done:
        values = _polling_state(record)
        shape = (tuple(sorted(values)), record.status == "error")
        params = {f"b_{name}": value for name, value in values.items()}
        shapes.setdefault(shape, []).append({"b_id": source_id, **params})
    for (names, failed), rows in shapes.items():
        columns: dict[str, Any] = {name: bindparam(f"b_{name}") for name in names}
        columns["error_count"] = sources.c.error_count + 1 if failed else 0
        conn.execute(update(sources).where(sources.c.id == bindparam("b_id")).values(columns), rows)


def _log_polls(conn: Connection, done: Sequence[tuple[int, PollRecord, SaveCounts]]) -> None:
    """Each poll's line in its source's history and its day's tally, in the polls' own
    transaction; each history is cut back to its last POLL_HISTORY lines."""
    if not done:
        return
    conn.execute(
        insert(polls),
        [
            {
                "source_id": source_id,
                "polled_at": record.polled_at,
                "status": record.status,
                "http_status": record.http_status,
                "bytes": record.fetched_bytes,
                "new": counts.new,
                "updated": counts.updated,
                "duration": record.duration,
                "error": record.error,
            }
            for source_id, record, counts in done
        ],
    )
    oldest_kept = (
        select(polls.c.id)
        .where(polls.c.source_id == bindparam("b_source"))
        .order_by(polls.c.id.desc())
        .offset(POLL_HISTORY - 1)
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(
        polls.delete().where(polls.c.source_id == bindparam("b_source"), polls.c.id < oldest_kept),
        [{"b_source": source_id} for source_id in dict.fromkeys(item[0] for item in done)],
    )
    tallies = []
    for source_id, record, counts in done:
        tally = dict.fromkeys(("ok", "not_modified", "unchanged", "errors"), 0)
        column = _OUTCOME_COLUMN.get(record.status)
        if column is not None:
            tally[column] = 1
        tallies.append(
            {
                "source_id": source_id,
                "day": record.polled_at.astimezone(UTC).date(),
                "polls": 1,
                **tally,
                "new": counts.new,
                "updated": counts.updated,
                "bytes": record.fetched_bytes,
            }
        )
    statement = _upsert(conn)(poll_days)
    added = ("polls", "ok", "not_modified", "unchanged", "errors", "new", "updated", "bytes")
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[poll_days.c.source_id, poll_days.c.day],
            set_={name: poll_days.c[name] + statement.excluded[name] for name in added},
        ),
        tallies,
    )


def _upsert(conn: Connection) -> Any:
    """The dialect's INSERT … ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


# -- source state ------------------------------------------------------------


def _source_state_query(*, counts: bool = True) -> Select[Any]:
    host_not_before = (
        select(hosts.c.not_before).where(hosts.c.host == sources.c.host).scalar_subquery()
    )
    if not counts:
        return select(sources, host_not_before.label("host_not_before"))
    entry_count = (
        select(func.count())
        .select_from(entries)
        .where(entries.c.source_id == sources.c.id)
        .scalar_subquery()
    )
    return select(
        sources, entry_count.label("entry_count"), host_not_before.label("host_not_before")
    )


def _source_state(row: Row[Any]) -> SourceState:
    return SourceState(
        name=row.name,
        url=row.url,
        path=row.path,
        enabled=row.enabled,
        validators=Validators(etag=row.etag, last_modified=row.last_modified),
        body_hash=row.body_hash,
        last_polled_at=row.last_polled_at,
        last_status=row.last_status,
        last_error=row.last_error,
        error_count=row.error_count,
        next_poll_at=row.next_poll_at,
        feed_title=row.feed_title,
        entry_count=row._mapping.get("entry_count", 0),
        gone=row.gone,
        host=row.host,
        host_not_before=row.host_not_before,
        http_status=row.http_status,
        last_ok_at=row.last_ok_at,
        moved_from=row.moved_from,
        moved_at=row.moved_at,
        ttl_minutes=row.ttl_minutes,
        update_period_minutes=row.update_period_minutes,
        claimed_by=row.claimed_by,
        lease_until=row.lease_until,
    )


def _polling_state(record: PollRecord) -> dict[str, Any]:
    """The columns of `sources` a poll sets (error_count aside: `_update_sources`)."""
    values: dict[str, Any] = {
        "last_polled_at": record.polled_at,
        "last_status": record.status,
        "last_error": record.error,
        "next_poll_at": record.next_poll_at,
        "http_status": record.http_status,
        # The poll's result ends its claim, in the transaction that stores what it found.
        "claimed_by": None,
        "lease_until": None,
    }
    if record.status in ("ok", "not_modified", "unchanged"):
        values["last_ok_at"] = record.polled_at
    if record.validators is not None:
        values["etag"] = record.validators.etag
        values["last_modified"] = record.validators.last_modified
    if record.body_hash is not None:
        values["body_hash"] = record.body_hash
    if record.new_url:
        values["url"] = record.new_url
    if record.status == "gone":
        values["gone"] = True
    elif record.status != "error":
        # A source that answers again (polled by name after a 410) is back.
        values["gone"] = False
    if record.feed is not None:
        values["feed_title"] = record.feed.title
        values["site_link"] = record.feed.link
        values["ttl_minutes"] = record.feed.ttl_minutes
        values["update_period_minutes"] = record.feed.update_period_minutes
    return values


def host_of(url: str | None) -> str | None:
    """The lower-case host name of an http(s) URL; None for none or an unreadable one."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def _unleased(now: datetime) -> ColumnElement[bool]:
    return sources.c.lease_until.is_(None) | (sources.c.lease_until <= now)


def _host_open(now: datetime) -> ColumnElement[bool]:
    held = (
        exists()
        .where(hosts.c.host == sources.c.host)
        .where(hosts.c.not_before > now)
        .correlate(sources)
    )
    return ~held


def _hold_host(conn: Connection, host: str, not_before: datetime, reason: str | None) -> None:
    """Keep every source on `host` unclaimed until `not_before` (the later of two holds)."""
    # Read-then-write is safe on SQLite (one writer); PostgreSQL gets an upsert, since
    # two pollers may record a 429 from one host at once.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(hosts).values(host=host, not_before=not_before, reason=reason)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[hosts.c.host],
                set_={
                    "not_before": func.greatest(hosts.c.not_before, statement.excluded.not_before),
                    "reason": statement.excluded.reason,
                },
            )
        )
        return
    current = conn.scalar(select(hosts.c.not_before).where(hosts.c.host == host))
    if current is None:
        conn.execute(insert(hosts).values(host=host, not_before=not_before, reason=reason))
    elif current < not_before:
        conn.execute(
            update(hosts).where(hosts.c.host == host).values(not_before=not_before, reason=reason)
        )


# -- saving entries ----------------------------------------------------------


# How a story's copies are ranked: effective published time, first seen, row id.
_CopyOrder = tuple[datetime, datetime, int]

# A candidate key shared by more stored copies than this (within the time window) is
# read only for its nearest ones: a bucket that full says little about any one copy.
_MAX_CANDIDATES_PER_KEY = 50


@dataclass(frozen=True, slots=True)
class _Existing:
    id: int
    content_hash: str
    story_id: int


# An entry as the store writes it: what follows from the entry alone, computed once.
_Incoming = dedupe.PreparedEntry


@dataclass(frozen=True, slots=True)
class _Matching:
    """An entry's fingerprint and candidate keys: computed only for new and changed entries."""

    fingerprint: dedupe.Fingerprint
    keys: tuple[int, ...]


def _prepared_entries(record: PollRecord) -> Sequence[_Incoming]:
    if record.prepared is not None:
        return record.prepared
    if record.feed is not None:
        return dedupe.prepare(record.feed.entries)
    return ()


def _matchings(items: Sequence[tuple[ParsedEntry, datetime]]) -> list[_Matching]:
    """The fingerprint and candidate keys of each (entry, first seen), all at once: one
    numpy pass for many entries costs about what one entry's does."""
    prints = fingerprints(
        [
            (entry, _effective_time(entry.published, entry.updated, first_seen))
            for entry, first_seen in items
        ]
    )
    return [_Matching(fp, keys) for fp, keys in zip(prints, candidate_keys_of(prints), strict=True)]


def _placed(item: _Incoming, first_seen: datetime) -> _Matching:
    """A prepared entry's fingerprint at its effective time (candidate keys do not depend
    on the time)."""
    entry = item.entry
    at = _effective_time(entry.published, entry.updated, first_seen)
    return _Matching(replace(item.fingerprint, at=at), item.candidate_keys)


def _save_entries(
    conn: Connection,
    source_id: int,
    source_name: str,
    incoming: Sequence[_Incoming],
    now: datetime,
) -> SaveCounts:
    if not incoming:
        return SaveCounts()
    existing = {
        entry_key: _Existing(entry_id, content_hash, story_id)
        for entry_id, entry_key, content_hash, story_id in _select_in(
            conn,
            "SELECT id, entry_key, content_hash, story_id FROM entries "
            "WHERE source_id = {mark} AND entry_key IN ({marks})",
            [item.key for item in incoming],
            source_id,
        )
    }

    unchanged_ids: list[int] = []
    changed: list[tuple[_Existing, _Incoming]] = []
    fresh: list[_Incoming] = []
    for item in incoming:
        row = existing.get(item.key)
        if row is None:
            fresh.append(item)
        elif row.content_hash == item.content_hash:
            unchanged_ids.append(row.id)
        else:
            changed.append((row, item))

    for ids in _chunks(unchanged_ids):
        conn.execute(update(entries).where(entries.c.id.in_(ids)).values(last_seen=now))

    # Fingerprints only for what is written: most entries of a re-polled feed are unchanged.
    matching = {item.key: _placed(item, now) for item in fresh}
    touched: set[int] = set()
    marks: list[tuple[int, int, _Matching]] = []  # entry, source, fingerprint
    if changed:
        conn.execute(
            update(entries).where(entries.c.id == bindparam("b_id")),
            [{"b_id": row.id, **_entry_values(item), "last_seen": now} for row, item in changed],
        )
        touched.update(row.story_id for row, _ in changed)
        _forget_fingerprints(conn, [row.id for row, _ in changed])
        # A changed entry stays in its story (its uid is already out there); what it now
        # says becomes a way in to that story for copies to come.
        marks.extend((row.id, source_id, _placed(item, now)) for row, item in changed)

    key_owner = _story_keys_of(conn, [*fresh, *(item for _, item in changed)])
    new_keys: dict[str, int] = {}
    for row, item in changed:
        # A changed link becomes a way in to the story the entry already belongs to.
        for key in item.story_keys:
            if key not in key_owner:
                key_owner[key] = row.story_id
                new_keys[key] = row.story_id

    duplicates = 0
    faces: dict[int, tuple[_CopyOrder, int]] = {}
    if fresh:
        story_of, created, duplicates = _assign_stories(
            conn, source_id, source_name, fresh, matching, key_owner, new_keys, now
        )
        inserted = _insert_returning(
            conn,
            entries,
            [
                {
                    **_entry_values(item),
                    "source_id": source_id,
                    "story_id": story_of[item.key],
                    "entry_key": item.key,
                    "first_seen": now,
                    "last_seen": now,
                }
                for item in fresh
            ],
            ("entry_key", "id"),
        )
        entry_ids = dict(inserted)
        marks.extend((entry_ids[item.key], source_id, matching[item.key]) for item in fresh)
        # Stories born in this poll hold only entries of this document: their faces
        # are known without reading them back.
        for item in fresh:
            story_id = story_of[item.key]
            if story_id in created:
                entry_id = entry_ids[item.key]
                order = _copy_order(item.entry.published, item.entry.updated, now, entry_id)
                if story_id not in faces or order < faces[story_id][0]:
                    faces[story_id] = (order, entry_id)
            else:
                touched.add(story_id)
    if new_keys:
        _insert_rows(conn, story_keys, ("key", "story_id"), list(new_keys.items()))
    _write_fingerprints(conn, marks)
    faces.update(_faces_of(conn, touched))
    if faces:
        bind_time = _binder(conn, stories.c.sort_time)
        updated_at = bind_time(now)
        conn.exec_driver_sql(
            "UPDATE stories SET face_entry_id = {0}, sort_time = {0}, updated_at = {0} "
            "WHERE id = {0}".format(_marks(conn, 1)),
            [
                (entry_id, bind_time(order[0]), updated_at, story_id)
                for story_id, (order, entry_id) in faces.items()
            ],
        )
    return SaveCounts(
        new=len(fresh), updated=len(changed), unchanged=len(unchanged_ids), duplicates=duplicates
    )


def _story_keys_of(conn: Connection, items: Iterable[_Incoming]) -> dict[str, int]:
    """Which of these entries' story keys the index already holds, and for which story."""
    wanted = sorted({key for item in items for key in item.story_keys})
    return dict(
        _select_in(conn, "SELECT key, story_id FROM story_keys WHERE key IN ({marks})", wanted)
    )


def _assign_stories(
    conn: Connection,
    source_id: int,
    source_name: str,
    fresh: Sequence[_Incoming],
    matching: Mapping[str, _Matching],
    key_owner: dict[str, int],
    new_keys: dict[str, int],
    now: datetime,
) -> tuple[dict[str, int], set[int], int]:
    """Give each new entry a story (`dedupe.place` decides), creating the new ones.

    Returns entry key → story id, the ids of the stories created, and how many
    entries joined a story instead of starting one.
    Fills `key_owner` and `new_keys` with the strong keys the new entries bring.
    """
    newcomers = [
        dedupe.Newcomer(item.story_keys, matching[item.key].keys, matching[item.key].fingerprint)
        for item in fresh
    ]
    # Only entries that no stored strong key places need their candidates read.
    unplaced = [n for n in newcomers if not any(key in key_owner for key in n.strong)]
    candidates = _candidates(conn, source_id, unplaced)
    own_stories = _stories_carried_by(
        conn, source_id, {c.story_id for found in candidates.values() for c in found}
    )
    decision = dedupe.place(newcomers, key_owner, candidates, own_stories)

    founders = [
        index for index, placement in enumerate(decision.placements) if placement.founder == index
    ]
    story_of_founder: dict[int, int] = {}
    created: dict[str, int] = {}
    if founders:
        uids = {dedupe.story_uid(source_name, fresh[index].key): index for index in founders}
        # A story can outlive its first entry (pruning, a feed that drops an item and
        # brings it back); its uid then names the same story and must be reused.
        known: dict[str, int] = dict(
            _select_in(conn, "SELECT uid, id FROM stories WHERE uid IN ({marks})", list(uids))
        )
        to_create = [
            {
                "uid": uid,
                "sort_time": matching[fresh[index].key].fingerprint.at,
                "created_at": now,
                "updated_at": now,
            }
            for uid, index in uids.items()
            if uid not in known
        ]
        if to_create:
            created = dict(_insert_returning(conn, stories, to_create, ("uid", "id")))
            known.update(created)
        story_of_founder = {index: known[uid] for uid, index in uids.items()}

    story_of: dict[str, int] = {}
    joined = 0
    for index, (item, placement) in enumerate(zip(fresh, decision.placements, strict=True)):
        if placement.story_id is not None:
            story_of[item.key] = placement.story_id
        else:
            assert placement.founder is not None
            story_of[item.key] = story_of_founder[placement.founder]
        if placement.founder != index:
            joined += 1
    for key, story_id in decision.keys_to_story.items():
        key_owner[key] = new_keys[key] = story_id
    for key, founder in decision.keys_to_founder.items():
        key_owner[key] = new_keys[key] = story_of_founder[founder]
    return story_of, set(created.values()), joined


def _candidates(
    conn: Connection, source_id: int, newcomers: Sequence[dedupe.Newcomer]
) -> dict[int, list[dedupe.Candidate]]:
    """Stored copies of other sources under the newcomers' candidate keys, within the window.

    One indexed range read per key (match_keys is ordered by key, then time); the
    bounds span the whole document, and `same_story` applies each entry's own window.
    Straight to the driver: a document asks for some 500 keys, almost all absent, and
    SQLAlchemy's expansion of an IN list of that size cost three times what SQLite's
    reads did (0.9 million keys in a cold poll of 2,000 documents found 20 rows).
    """
    wanted = sorted({key for item in newcomers for key in item.candidate_keys})
    if not wanted:
        return {}
    low = min(item.fingerprint.at for item in newcomers) - dedupe.WINDOW
    high = max(item.fingerprint.at for item in newcomers) + dedupe.WINDOW
    readers = [_reader(conn, entry_fingerprints.c[name]) for name in _FINGERPRINT_COLUMNS[1:]]
    columns = ", ".join(f"f.{name}" for name in _FINGERPRINT_COLUMNS[1:])
    found: dict[int, list[dedupe.Candidate]] = {}
    template = (
        f"SELECT m.key, e.story_id, {columns} FROM match_keys m "
        "JOIN entry_fingerprints f ON f.entry_id = m.entry_id "
        "JOIN entries e ON e.id = m.entry_id "
        "WHERE m.at BETWEEN {mark} AND {mark} AND m.source_id != {mark} "
        "AND m.key IN ({marks})"
    )
    bounds = (key_seconds(low), key_seconds(high) + 1, source_id)
    for key, story_id, *stored in _select_in(conn, template, wanted, *bounds):
        fingerprint = _stored_fingerprint(
            [read(value) for read, value in zip(readers, stored, strict=True)]
        )
        found.setdefault(key, []).append(dedupe.Candidate(story_id, fingerprint))
    middle = low + (high - low) / 2
    for key, copies in found.items():
        if len(copies) > _MAX_CANDIDATES_PER_KEY:
            copies.sort(key=lambda c: abs(c.fingerprint.at - middle))
            found[key] = copies[:_MAX_CANDIDATES_PER_KEY]
    return found


def _stories_carried_by(conn: Connection, source_id: int, story_ids: set[int]) -> set[int]:
    """Which of these stories already hold a copy from this source."""
    carried: set[int] = set()
    for chunk in _chunks(sorted(story_ids)):
        carried.update(
            conn.scalars(
                select(entries.c.story_id)
                .where(entries.c.source_id == source_id)
                .where(entries.c.story_id.in_(chunk))
                .distinct()
            )
        )
    return carried


def _forget_fingerprints(conn: Connection, entry_ids: Sequence[int]) -> None:
    for chunk in _chunks(entry_ids):
        conn.execute(match_keys.delete().where(match_keys.c.entry_id.in_(chunk)))
        conn.execute(entry_fingerprints.delete().where(entry_fingerprints.c.entry_id.in_(chunk)))


def _write_fingerprints(conn: Connection, marks: Sequence[tuple[int, int, _Matching]]) -> None:
    """Store each (entry id, source id, matching) fingerprint and candidate keys.

    Straight to the driver's executemany, each value bound by its column's own type
    once: a document's entries bring about fifteen candidate key rows each, and
    SQLAlchemy's per-row parameter handling was a third of what storing them cost.
    """
    if not marks:
        return
    bind_at = _binder(conn, entry_fingerprints.c.at)
    bind_flag = _binder(conn, entry_fingerprints.c.truncated)
    bind_blob = _binder(conn, entry_fingerprints.c.signature)
    prints: list[tuple[Any, ...]] = []
    keys: list[tuple[Any, ...]] = []
    for entry_id, source_id, item in marks:
        fp = item.fingerprint
        at = bind_at(fp.at)
        prints.append(
            (
                entry_id,
                fp.title,
                bind_flag(fp.title_specific),
                fp.lead,
                fp.words,
                fp.shingles,
                bind_flag(fp.truncated),
                bind_blob(fp.signature) if fp.signature is not None else None,
                at,
            )
        )
        # The same key twice (a title that is also the lead) is one row.
        seconds = key_seconds(fp.at)
        keys.extend((key, seconds, entry_id, source_id) for key in dict.fromkeys(item.keys))
    _insert_rows(conn, entry_fingerprints, _FINGERPRINT_COLUMNS, prints)
    if keys:
        _insert_rows(conn, match_keys, ("key", "at", "entry_id", "source_id"), keys)


def key_seconds(at: datetime) -> int:
    """A candidate key's time: whole seconds since the epoch, rounded down."""
    return math.floor(at.timestamp())


_FINGERPRINT_COLUMNS = (
    "entry_id",
    "title",
    "title_specific",
    "lead",
    "words",
    "shingles",
    "truncated",
    "signature",
    "at",
)


def _binder(conn: Connection, column: Column[Any]) -> Callable[[Any], Any]:
    """What SQLAlchemy would send the driver for a value of `column` (its type's bind
    processing for this dialect: UTC datetimes as SQLite text, booleans as integers)."""
    # The dialect's own implementation: a TypeDecorator's bind_processor alone would hand
    # the driver a naive datetime, which sqlite3 writes in another text form than SQLAlchemy.
    processor = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return processor if processor is not None else _same


def _reader(conn: Connection, column: Column[Any]) -> Callable[[Any], Any]:
    """What SQLAlchemy would make of a value of `column` the driver returned (`_binder`
    the other way: SQLite's text datetimes as UTC datetimes, integers as booleans)."""
    processor = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
    return processor if processor is not None else _same


def _marks(conn: Connection, count: int) -> str:
    """`count` positional parameter marks in the driver's own style."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * count)


def _same(value: Any) -> Any:
    return value


def _insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT `rows` (values already bound, see `_binder`) with one executemany."""
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({_marks(conn, len(columns))})"
    )
    conn.exec_driver_sql(statement, rows)


def _select_in(
    conn: Connection, template: str, values: Sequence[Any], *before: Any
) -> list[tuple[Any, ...]]:
    """Rows of `template` for `values`, chunked: `{marks}` becomes one parameter mark per
    value of a chunk, `{mark}` one mark for each of `before` (bound first).

    Straight to the driver, for the lookups every document makes (its entries, story
    keys, tombstones, story uids, candidate keys) with IN lists of tens to hundreds of
    text or integer values, which need no bind processing: SQLAlchemy's expansion of such
    a list cost three times what the driver's query did (about 350 µs against 110 for a
    document's entries)."""
    rows: list[tuple[Any, ...]] = []
    mark = _marks(conn, 1)
    for chunk in _chunks(values):
        statement = template.format(marks=_marks(conn, len(chunk)), mark=mark)
        rows.extend(tuple(row) for row in conn.exec_driver_sql(statement, (*before, *chunk)))
    return rows


def _insert_returning(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """INSERT `rows` (each a dict of the same columns) and give back each row's `returning`
    columns, in no particular order: multi-row INSERT … RETURNING statements straight to
    the driver, every value bound by its column's type (`_binder`). SQLAlchemy's own
    executemany with RETURNING processed each of a document's 35 rows' 19 values through
    several layers: a third of what storing an entry cost the writer, not counting SQLite.
    The returned columns must be ones the driver gives as they are (integers, text)."""
    if not rows:
        return []
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    binders = [_binder(conn, table.c[name]) for name in names]
    limit = _MAX_PARAMETERS
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32):
        limit = 999  # SQLITE_MAX_VARIABLE_NUMBER before 3.32
    per_statement = max(1, limit // len(names))
    pairs = list(zip(names, binders, strict=True))
    columns = ", ".join(quote(name) for name in names)
    result = ", ".join(quote(name) for name in returning)
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = ", ".join([f"({_marks(conn, len(names))})"] * len(chunk))
        parameters: list[Any] = []
        for row in chunk:
            # One value at a time into the statement's parameters: a bound copy of each
            # row as a dict first cost more than binding (1.8 s of a cold pass's writer).
            parameters.extend([bind(row[name]) for name, bind in pairs])
        statement = f"INSERT INTO {table.name} ({columns}) VALUES {values} RETURNING {result}"
        found.extend(tuple(row) for row in conn.exec_driver_sql(statement, tuple(parameters)))
    return found


# Bound parameters in one statement, at most: under SQLite's limit (32,766 since 3.32)
# and PostgreSQL's (65,535).
_MAX_PARAMETERS = 30_000


def _stored_fingerprint(values: Sequence[Any]) -> dedupe.Fingerprint:
    """A fingerprint from its stored columns, in _FINGERPRINT_COLUMNS order after entry_id."""
    title, specific, lead, words, shingles, truncated, signature, at = values
    return dedupe.Fingerprint(
        title=title,
        title_specific=specific,
        lead=lead,
        words=words,
        shingles=shingles,
        truncated=truncated,
        signature=bytes(signature) if signature else None,
        at=at,
    )


def _entry_values(item: _Incoming) -> dict[str, Any]:
    entry = item.entry
    return {
        "content_hash": item.content_hash,
        "guid": entry.guid,
        "link": entry.link,
        "title": entry.title,
        "summary": entry.summary,
        "content": entry.content,
        "author": entry.author,
        "published": entry.published,
        "updated": entry.updated,
        "tags": list(entry.tags),
        "enclosures": [
            {"url": enclosure.url, "type": enclosure.type, "length": enclosure.length}
            for enclosure in entry.enclosures
        ],
        "image_url": entry.image.url if entry.image else None,
        "image_caption": entry.image.caption if entry.image else None,
        "orig_link": entry.orig_link,
    }


def _faces_of(conn: Connection, story_ids: set[int]) -> dict[int, tuple[_CopyOrder, int]]:
    """Each story's earliest-published copy, read from all its entries."""
    best: dict[int, tuple[_CopyOrder, int]] = {}
    for chunk in _chunks(sorted(story_ids)):
        for row in conn.execute(
            select(
                entries.c.id,
                entries.c.story_id,
                entries.c.published,
                entries.c.updated,
                entries.c.first_seen,
            ).where(entries.c.story_id.in_(chunk))
        ):
            order = _copy_order(row.published, row.updated, row.first_seen, row.id)
            current = best.get(row.story_id)
            if current is None or order < current[0]:
                best[row.story_id] = (order, row.id)
    return best


def _effective_time(
    published: datetime | None, updated: datetime | None, first_seen: datetime
) -> datetime:
    """When a copy says it was published, trusting no date far ahead of its first sight."""
    claimed = published or updated
    if claimed is None or claimed > first_seen + FUTURE_TOLERANCE:
        return first_seen
    return claimed


def _copy_order(
    published: datetime | None, updated: datetime | None, first_seen: datetime, entry_id: int
) -> _CopyOrder:
    """Sort key of a story's copies: earliest published first, then first seen, then oldest row."""
    return (_effective_time(published, updated, first_seen), first_seen, entry_id)


def _schema_revision(conn: Connection) -> str | None:
    """The Alembic revision the database is at; None when it has none (a new database)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    revisions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    # More than one row is a branched history, which this project never has; Alembic
    # itself makes sense of it.
    return revisions[0] if len(revisions) == 1 else None


def _refresh_fingerprints(conn: Connection) -> None:
    """Give every stored entry the fingerprint, candidate keys and strong keys of this release.

    Runs when `meta.fingerprint_version` differs from `fingerprint.VERSION`: after the
    migration that introduced fingerprints, and whenever what they hold changes. Each
    entry stays in its story; only the ways in to it are recomputed.
    """
    stored = conn.scalar(select(meta.c.value).where(meta.c.key == FINGERPRINT_VERSION))
    if stored == FINGERPRINTS:
        return
    if stored is not None:
        count = conn.scalar(select(func.count()).select_from(entries))
        # Measured: about 30 s per 70,000 entries on SQLite (bench corpus, 2 cores).
        log.info(
            "recomputing the story-matching fingerprints of %d stored entries "
            "(fingerprint version %s, this release's is %s): about 30 s per 70,000 entries",
            count,
            stored,
            FINGERPRINTS,
        )
    conn.execute(match_keys.delete())
    conn.execute(entry_fingerprints.delete())
    last_id = 0
    while True:
        rows = conn.execute(
            select(
                entries.c.id,
                entries.c.story_id,
                entries.c.source_id,
                entries.c.guid,
                entries.c.link,
                entries.c.orig_link,
                entries.c.title,
                entries.c.summary,
                entries.c.content,
                entries.c.published,
                entries.c.updated,
                entries.c.first_seen,
            )
            .where(entries.c.id > last_id)
            .order_by(entries.c.id)
            .limit(_IN_CHUNK)
        ).all()
        if not rows:
            break
        last_id = rows[-1].id
        parsed = {
            row.id: ParsedEntry(
                guid=row.guid,
                link=row.link,
                orig_link=row.orig_link,
                title=row.title,
                summary=row.summary,
                content=row.content,
                published=row.published,
                updated=row.updated,
            )
            for row in rows
        }
        matchings = _matchings([(parsed[row.id], row.first_seen) for row in rows])
        _write_fingerprints(
            conn,
            [
                (row.id, row.source_id, matching)
                for row, matching in zip(rows, matchings, strict=True)
            ],
        )
        wanted = {key: row.story_id for row in rows for key in dedupe.story_keys(parsed[row.id])}
        held: set[str] = set()
        for chunk in _chunks(sorted(wanted)):
            held.update(conn.scalars(select(story_keys.c.key).where(story_keys.c.key.in_(chunk))))
        missing = [
            {"key": key, "story_id": story} for key, story in wanted.items() if key not in held
        ]
        if missing:
            conn.execute(insert(story_keys), missing)
    if stored is None:
        conn.execute(insert(meta).values(key=FINGERPRINT_VERSION, value=FINGERPRINTS))
    else:
        conn.execute(
            update(meta).where(meta.c.key == FINGERPRINT_VERSION).values(value=FINGERPRINTS)
        )


# -- reading entries ---------------------------------------------------------


def _copies_query() -> Select[Any]:
    return select(
        entries,
        sources.c.name.label("source_name"),
        func.coalesce(sources.c.title, sources.c.feed_title, sources.c.name).label("source_title"),
        sources.c.url.label("source_url"),
        sources.c.site_link.label("source_link"),
    ).join(sources, entries.c.source_id == sources.c.id)


def _stored_entry(row: Row[Any]) -> StoredEntry:
    return StoredEntry(
        source=row.source_name,
        source_title=row.source_title,
        source_url=row.source_url,
        source_link=row.source_link,
        guid=row.guid,
        link=row.link,
        title=row.title,
        summary=row.summary,
        content=row.content,
        author=row.author,
        published=row.published,
        updated=row.updated,
        first_seen=row.first_seen,
        tags=tuple(row.tags or ()),
        enclosures=tuple(_enclosure(item) for item in row.enclosures or ()),
        image=Image(row.image_url, row.image_caption) if row.image_url else None,
    )


def _enclosure(item: Mapping[str, Any]) -> Enclosure:
    return Enclosure(url=item["url"], type=item.get("type"), length=item.get("length"))
