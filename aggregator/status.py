"""What the status page and `aggregator status` show: plain rows from source states.

Pure: the web page (`pages`) and the terminal table (`cli status`) render these same
rows, so both always say the same thing. Times are shown relative to `now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.model import SourceState
from aggregator.outputs import OutputFeed
from aggregator.schedule import due_at

HEALTHS = ("ok", "failing", "gone", "disabled", "new")


@dataclass(frozen=True, slots=True)
class SourceRow:
    name: str
    title: str
    location: str  # URL in use, or the file's path
    health: str  # one of HEALTHS
    detail: str  # one line saying why, for people
    last_polled_at: datetime | None
    last_status: str | None
    http_status: int | None
    next_poll_at: datetime | None  # when it will really be polled (host holds included)
    entries: int
    errors: int
    last_error: str | None
    moved_from: str | None
    polling_now: bool


@dataclass(frozen=True, slots=True)
class FeedRow:
    name: str
    title: str
    description: str
    sources: int
    links: Mapping[str, str]  # format → absolute URL: atom, rss, json


@dataclass(frozen=True, slots=True)
class Overview:
    sources: tuple[SourceRow, ...]
    feeds: tuple[FeedRow, ...]
    counts: Mapping[str, int]  # health → how many sources
    opml_url: str
    now: datetime


def health_of(state: SourceState) -> str:
    """One word for a source's health: ok, failing, gone, disabled, new (never polled)."""
    if not state.enabled:
        return "disabled"
    if state.gone:
        return "gone"
    if state.last_status is None:
        return "new"
    return "failing" if state.last_status == "error" else "ok"


def source_row(state: SourceState, title: str | None, now: datetime) -> SourceRow:
    health = health_of(state)
    return SourceRow(
        name=state.name,
        title=title or state.feed_title or state.name,
        location=state.url or state.path or "",
        health=health,
        detail=_detail(state, health, now),
        last_polled_at=state.last_polled_at,
        last_status=state.last_status,
        http_status=state.http_status,
        next_poll_at=None if health in ("gone", "disabled") else (due_at(state) or now),
        entries=state.entry_count,
        errors=state.error_count,
        last_error=state.last_error,
        moved_from=state.moved_from,
        polling_now=state.lease_until is not None and state.lease_until > now,
    )


def _detail(state: SourceState, health: str, now: datetime) -> str:
    if health == "disabled":
        return "disabled in the configuration"
    if health == "gone":
        return "answered 410 Gone: no longer polled; give it a new url to start again"
    if health == "new":
        return "not polled yet"
    parts = []
    if health == "failing":
        parts.append(f"{state.error_count} failed poll{'s' if state.error_count != 1 else ''}")
        if state.last_ok_at is not None:
            parts.append(f"last success {relative(state.last_ok_at, now)}")
    else:
        parts.append({"not_modified": "not modified", "unchanged": "unchanged"}.get(
            state.last_status or "", "ok"))  # fmt: skip
    if state.host_not_before is not None and state.host_not_before > now:
        parts.append(f"host {state.host} asked us to wait until {iso(state.host_not_before)}")
    if state.moved_from:
        moved = f" ({relative(state.moved_at, now)})" if state.moved_at else ""
        parts.append(f"moved from {state.moved_from}{moved}")
    return "; ".join(parts)


def overview(
    states: Iterable[SourceState],
    titles: Mapping[str, str | None],
    feeds: Mapping[str, OutputFeed],
    *,
    base_url: str,
    now: datetime,
) -> Overview:
    """Every configured source (by name) and every output feed, with health counts.

    `titles` maps each configured source to its configured title; states of
    sources not in it (removed from the configuration) are left out.
    """
    rows = tuple(
        source_row(state, titles[state.name], now)
        for state in sorted(states, key=lambda s: s.name)
        if state.name in titles
    )
    counts = dict.fromkeys(HEALTHS, 0)
    for row in rows:
        counts[row.health] += 1
    feed_rows = tuple(
        FeedRow(
            name=feed.name,
            title=feed.title,
            description=feed.description,
            sources=len(feed.sources),
            links={fmt: f"{base_url}/feeds/{feed.name}.{fmt}" for fmt in ("atom", "rss", "json")},
        )
        for feed in feeds.values()
    )
    return Overview(rows, feed_rows, counts, f"{base_url}/feeds.opml", now)


def relative(when: datetime | None, now: datetime) -> str:
    """`3 min ago`, `in 2 h`, `now`; `—` for never."""
    if when is None:
        return "—"
    delta = when - now
    seconds = abs(delta.total_seconds())
    if seconds < 5:
        return "now"
    text = _span(timedelta(seconds=seconds))
    return f"in {text}" if delta.total_seconds() > 0 else f"{text} ago"


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def iso(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when is not None else "—"
