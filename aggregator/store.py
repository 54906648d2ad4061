"""The database: sources and their polling state, entries, stories and the dedup index.

Everything SQL lives here, written as SQLAlchemy Core statements over the tables
below; the schema itself is created and changed only by the Alembic migrations in
`aggregator/migrations/`. SQLite (one file) and PostgreSQL are both first-class.

Each public method is one transaction. `record_poll` writes a source's new polling
state together with the entries of the document it fetched, so a crash at any
moment leaves either the old state and old entries or the new ones, never a mix.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import alembic.command
import alembic.config
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
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
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.sql import Select
from sqlalchemy.types import DateTime

from aggregator import dedupe
from aggregator.model import (
    Enclosure,
    Image,
    ParsedEntry,
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

# SQLite and PostgreSQL both accept far more bound parameters than this; the cap
# keeps a 1,000-entry document's IN lists well inside old SQLite's limit of 999.
_IN_CHUNK = 500

# Lets concurrent `aggregator run` processes on PostgreSQL start at the same time:
# the first migrates, the others wait and then find the schema current.
_PG_MIGRATION_LOCK = 0x61676772  # "aggr"

_WRITE_OPTION = "aggregator_write"

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
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


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


class UnknownSourceError(LookupError):
    """A poll was recorded for a source the database does not hold."""

    def __init__(self, source: str) -> None:
        super().__init__(f"{source}: no such source in the database (sync_sources first)")
        self.source = source


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
        self._engine: Engine = create_engine(parsed)
        if self._sqlite:
            _configure_sqlite(self._engine)

    # -- schema and health -------------------------------------------------

    def upgrade(self) -> None:
        """Apply every Alembic migration not yet applied (alembic upgrade head)."""
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
            config = alembic.config.Config()
            config.set_main_option("script_location", "aggregator:migrations")
            config.attributes["connection"] = conn
            alembic.command.upgrade(config, "head")

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
                        "etag": None,
                        "last_modified": None,
                        "body_hash": None,
                        "gone": False,
                        "error_count": 0,
                        "next_poll_at": None,
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
        query = select(sources).where(sources.c.configured, sources.c.enabled)
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

    # -- polls ---------------------------------------------------------------

    def record_poll(self, record: PollRecord) -> SaveCounts:
        """Write everything one poll learned in one transaction; say what the entries did.

        `new` counts every entry inserted; `duplicates` counts those of them that
        joined an existing story (another source's, or one an earlier entry of the
        same document started) instead of starting one.
        Raises UnknownSourceError when `record.source` was never synced.
        """
        # Identity and hashes are pure work: done before the write lock is taken.
        incoming = _incoming(record.feed.entries) if record.feed is not None else []
        with self._write() as conn:
            source = conn.execute(
                select(sources.c.id, sources.c.feed_title, sources.c.site_link).where(
                    sources.c.name == record.source
                )
            ).one_or_none()
            if source is None:
                raise UnknownSourceError(record.source)
            conn.execute(
                update(sources)
                .where(sources.c.id == source.id)
                .values(_polling_state(record, sources.c.error_count))
            )
            counts = _save_entries(conn, source.id, record.source, incoming, record.polled_at)
            feed = record.feed
            # The source's title, home page and URL show in every output entry's <source>.
            source_changed = record.new_url is not None or (
                feed is not None
                and (feed.title, feed.link) != (source.feed_title, source.site_link)
            )
            if counts.new or counts.updated or source_changed:
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

    # -- plumbing ------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that will write: on SQLite it takes the write lock up front."""
        with self._engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn


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
            # reread the same pages from the OS over and over. Not more than 16 MB: each
            # pooled connection has its own, and it all counts in the daemon's memory.
            cursor.execute("PRAGMA cache_size=-16384")
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


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


# -- source state ------------------------------------------------------------


def _source_state_query() -> Select[Any]:
    entry_count = (
        select(func.count())
        .select_from(entries)
        .where(entries.c.source_id == sources.c.id)
        .scalar_subquery()
    )
    return select(sources, entry_count.label("entry_count"))


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
    )


def _polling_state(record: PollRecord, error_count: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "last_polled_at": record.polled_at,
        "last_status": record.status,
        "last_error": record.error,
        "next_poll_at": record.next_poll_at,
        "http_status": record.http_status,
        "error_count": error_count + 1 if record.status == "error" else 0,
    }
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
    return values


# -- saving entries ----------------------------------------------------------


# How a story's copies are ranked: effective published time, first seen, row id.
_CopyOrder = tuple[datetime, datetime, int]


@dataclass(frozen=True, slots=True)
class _Existing:
    id: int
    content_hash: str
    story_id: int


@dataclass(frozen=True, slots=True)
class _Incoming:
    key: str
    content_hash: str
    story_keys: tuple[str, ...]
    entry: ParsedEntry


def _incoming(parsed: Iterable[ParsedEntry]) -> list[_Incoming]:
    return [
        _Incoming(
            dedupe.entry_key(entry), dedupe.entry_hash(entry), dedupe.story_keys(entry), entry
        )
        for entry in dedupe.unique_entries(parsed)
    ]


def _save_entries(
    conn: Connection, source_id: int, source_name: str, incoming: list[_Incoming], now: datetime
) -> SaveCounts:
    if not incoming:
        return SaveCounts()
    existing: dict[str, _Existing] = {}
    for keys in _chunks([item.key for item in incoming]):
        for found in conn.execute(
            select(entries.c.id, entries.c.entry_key, entries.c.content_hash, entries.c.story_id)
            .where(entries.c.source_id == source_id)
            .where(entries.c.entry_key.in_(keys))
        ):
            existing[found.entry_key] = _Existing(found.id, found.content_hash, found.story_id)

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

    touched: set[int] = set()
    if changed:
        conn.execute(
            update(entries).where(entries.c.id == bindparam("b_id")),
            [{"b_id": row.id, **_entry_values(item), "last_seen": now} for row, item in changed],
        )
        touched.update(row.story_id for row, _ in changed)

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
            conn, source_name, fresh, key_owner, new_keys, now
        )
        inserted = conn.execute(
            insert(entries).returning(entries.c.entry_key, entries.c.id),
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
        )
        entry_ids = {row.entry_key: row.id for row in inserted}
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
        conn.execute(
            insert(story_keys),
            [{"key": key, "story_id": story_id} for key, story_id in new_keys.items()],
        )
    faces.update(_faces_of(conn, touched))
    if faces:
        conn.execute(
            update(stories)
            .where(stories.c.id == bindparam("b_id"))
            .values(
                face_entry_id=bindparam("b_face"), sort_time=bindparam("b_sort"), updated_at=now
            ),
            [
                {"b_id": story_id, "b_face": entry_id, "b_sort": order[0]}
                for story_id, (order, entry_id) in faces.items()
            ],
        )
    return SaveCounts(
        new=len(fresh), updated=len(changed), unchanged=len(unchanged_ids), duplicates=duplicates
    )


def _story_keys_of(conn: Connection, items: Iterable[_Incoming]) -> dict[str, int]:
    """Which of these entries' story keys the index already holds, and for which story."""
    wanted = sorted({key for item in items for key in item.story_keys})
    owners: dict[str, int] = {}
    for chunk in _chunks(wanted):
        for row in conn.execute(
            select(story_keys.c.key, story_keys.c.story_id).where(story_keys.c.key.in_(chunk))
        ):
            owners[row.key] = row.story_id
    return owners


def _assign_stories(
    conn: Connection,
    source_name: str,
    fresh: Sequence[_Incoming],
    key_owner: dict[str, int],
    new_keys: dict[str, int],
    now: datetime,
) -> tuple[dict[str, int], set[int], int]:
    """Give each new entry a story: the one its keys lead to, else a new one.

    Returns entry key → story id, the ids of the stories created, and how many
    entries joined a story instead of starting one.
    Fills `key_owner` and `new_keys` with the keys the new entries bring.
    """
    story_of: dict[str, int] = {}
    created: dict[str, int] = {}
    # Entries that start a story, with the entries of this document that join them.
    founders: list[_Incoming] = []
    founded_by: dict[str, str] = {}  # story key → founding entry key, for keys of unborn stories
    joins_unborn: dict[str, str] = {}  # entry key → founding entry key
    joined = 0
    for item in fresh:
        keys = item.story_keys
        owner = next((key_owner[key] for key in keys if key in key_owner), None)
        founder = next((founded_by[key] for key in keys if key in founded_by), None)
        if owner is not None:
            story_of[item.key] = owner
            joined += 1
            for key in keys:
                if key not in key_owner and key not in founded_by:
                    key_owner[key] = owner
                    new_keys[key] = owner
        elif founder is not None:
            joins_unborn[item.key] = founder
            joined += 1
            for key in keys:
                founded_by.setdefault(key, founder)
        else:
            founders.append(item)
            for key in keys:
                founded_by.setdefault(key, item.key)

    if founders:
        uids = {dedupe.story_uid(source_name, item.key): item for item in founders}
        # A story can outlive its first entry (pruning, a feed that drops an item and
        # brings it back); its uid then names the same story and must be reused.
        known: dict[str, int] = {}
        for chunk in _chunks(list(uids)):
            for row in conn.execute(
                select(stories.c.uid, stories.c.id).where(stories.c.uid.in_(chunk))
            ):
                known[row.uid] = row.id
        to_create = [
            {
                "uid": uid,
                "sort_time": _effective_time(item.entry.published, item.entry.updated, now),
                "created_at": now,
                "updated_at": now,
            }
            for uid, item in uids.items()
            if uid not in known
        ]
        if to_create:
            rows = conn.execute(insert(stories).returning(stories.c.uid, stories.c.id), to_create)
            created = {row.uid: row.id for row in rows}
            known.update(created)
        for uid, item in uids.items():
            story_of[item.key] = known[uid]
    for entry_key, founder_key in joins_unborn.items():
        story_of[entry_key] = story_of[founder_key]
    for key, founder_key in founded_by.items():
        key_owner[key] = story_of[founder_key]
        new_keys[key] = story_of[founder_key]
    return story_of, set(created.values()), joined


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
