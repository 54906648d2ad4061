"""The data that flows between pipeline stages.

Every stage takes and returns these small frozen values, so each stage can be
tested with plain values and no network or database. Datetimes are always
timezone-aware UTC; text fields are never None where "empty" will do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aggregator.dedupe import PreparedEntry

_Value = TypeVar("_Value", bound=type)


def pickled_by_fields(cls: _Value) -> _Value:
    """Pickle a frozen slots dataclass as the call of its constructor with its fields.

    What a parser worker sends the writer is pickled: tens of thousands of entries a
    pass. The state protocol Python 3.11 gives slots dataclasses calls `fields()` for
    each object and sets each attribute at load through `object.__setattr__`; a
    constructor call loaded an object of eight fields in 4.0 µs against 7.7 (and
    dumped it in 2.0 against 6.4). Only for classes whose fields are all positional
    arguments of `__init__` that it stores unchanged.
    """
    declared = fields(cls)
    names = [item.name for item in declared]
    positional = all(item.init and not item.kw_only for item in declared)
    if not positional or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: its constructor does not take every field as is")
    values = attrgetter(*names) if len(names) > 1 else lambda self: (getattr(self, names[0]),)

    def __reduce__(self: Any) -> tuple[type, tuple[Any, ...]]:
        return (cls, values(self))

    cls.__reduce__ = __reduce__  # type: ignore[assignment]
    return cls


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Enclosure:
    """A file attached to an entry (podcast audio, video, image)."""

    url: str
    type: str | None = None
    length: int | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Image:
    """The entry's lead image: media:content/thumbnail, an image enclosure or the first <img>."""

    url: str
    caption: str | None = None  # plain text: media:description, <figcaption> or alt text


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One item of one source document, normalised by `parse`.

    `title` is plain text; `summary` and `content` are sanitised HTML whose URLs
    are absolute. `guid` is the document's own id for the entry, stripped.
    """

    guid: str | None
    link: str | None
    title: str
    summary: str = ""
    content: str = ""
    author: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    tags: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    image: Image | None = None
    # Where a feed proxy (FeedBurner's feedburner:origLink) names the original article.
    orig_link: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A whole source document after parsing."""

    format: str  # "rss20", "atom10", "rss10", "json11", … as far as the parser can tell
    title: str | None = None
    link: str | None = None  # the site's home page
    description: str | None = None
    entries: tuple[ParsedEntry, ...] = ()
    # Publisher hints for the scheduler, in minutes (RSS <ttl>, sy:updatePeriod/Frequency).
    ttl_minutes: int | None = None
    update_period_minutes: int | None = None
    # A non-fatal problem the parser noticed (feedparser's bozo) — kept for the status page.
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators, stored and sent back byte for byte as received."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store knows about one source between polls."""

    name: str
    url: str | None  # the URL in use now (a 301/308 replaces the configured one)
    path: str | None
    enabled: bool
    validators: Validators = field(default_factory=Validators)
    body_hash: str | None = None
    last_polled_at: datetime | None = None
    last_status: str | None = None  # "ok", "not_modified", "unchanged", "error", "gone"
    last_error: str | None = None
    error_count: int = 0
    next_poll_at: datetime | None = None
    feed_title: str | None = None
    entry_count: int = 0
    gone: bool = False  # answered 410: disabled until its URL changes or it is polled by name
    host: str | None = None  # the host name of `url`, lower-case: what Retry-After applies to
    host_not_before: datetime | None = None  # a Retry-After of any source on that host
    http_status: int | None = None
    last_ok_at: datetime | None = None
    moved_from: str | None = None  # the URL a 301/308 moved the source away from
    moved_at: datetime | None = None
    ttl_minutes: int | None = None  # the feed's own hints, from its last parse
    update_period_minutes: int | None = None
    claimed_by: str | None = None  # the poller holding it now, until `lease_until`
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One copy of a story as the store returns it for selection and rendering."""

    source: str  # source name
    source_title: str
    source_url: str | None  # the source feed's URL (for Atom <source>, RSS <source url=>)
    source_link: str | None  # the source site's home page
    guid: str | None
    link: str | None
    title: str
    summary: str
    content: str
    author: str | None
    published: datetime | None
    updated: datetime | None
    first_seen: datetime
    tags: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    image: Image | None = None


@dataclass(frozen=True, slots=True)
class Story:
    """An article as the outputs show it: one face, every copy that carried it.

    `uid` never changes once a story exists, whatever copies arrive later.
    `face` is the earliest published copy; `copies` includes it.
    """

    uid: str
    sort_time: datetime
    face: StoredEntry
    copies: tuple[StoredEntry, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for copy in self.copies:
            seen.setdefault(copy.source, None)
        return tuple(seen)

    @property
    def tags(self) -> tuple[str, ...]:
        """The union of every copy's own categories, first-seen order, case-insensitively unique."""
        seen: dict[str, str] = {}
        for copy in (self.face, *self.copies):
            for tag in copy.tags:
                seen.setdefault(tag.casefold(), tag)
        return tuple(seen.values())


@dataclass(frozen=True, slots=True)
class PollRecord:
    """Everything one poll of one source learned, written by the store in one transaction.

    Validators are saved together with the entries they describe, so a crash
    between the two can never leave new validators over old entries.
    """

    source: str
    polled_at: datetime
    status: str  # "ok", "not_modified", "unchanged", "error", "gone"
    next_poll_at: datetime
    validators: Validators | None = None  # None keeps the stored ones
    body_hash: str | None = None  # None keeps the stored one
    http_status: int | None = None
    new_url: str | None = None  # a permanent redirect's target, used from now on
    error: str | None = None
    feed: ParsedFeed | None = None  # present when status is "ok"
    # `dedupe.prepare(feed.entries)`, when the parser worker did it; else the store does.
    prepared: tuple[PreparedEntry, ...] | None = None
    # A 429/503 Retry-After: no source on this source's host is claimed before then.
    host_not_before: datetime | None = None
    # For the poll history of the status pages: body bytes after decompression, seconds.
    fetched_bytes: int = 0
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class SaveCounts:
    """What storing one document did: entries new, changed, unchanged, and new copies
    that joined a story another source already carried."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0

    def __add__(self, other: SaveCounts) -> SaveCounts:
        return SaveCounts(
            self.new + other.new,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.duplicates + other.duplicates,
        )


@dataclass(frozen=True, slots=True)
class PollLog:
    """One recorded poll of one source, as its status page lists it."""

    polled_at: datetime
    status: str  # as PollRecord.status
    http_status: int | None
    bytes: int
    new: int
    updated: int
    duration: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DayActivity:
    """What one source did on one UTC day: polls by outcome and entries that arrived."""

    day: date
    polls: int = 0
    ok: int = 0  # new content parsed
    not_modified: int = 0  # 304
    unchanged: int = 0  # same bytes as last time
    errors: int = 0  # failures and 410s
    new: int = 0  # entries stored for the first time
    updated: int = 0
    bytes: int = 0
