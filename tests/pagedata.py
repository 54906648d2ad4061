"""A database with 30 days of history for the status pages: written through the real
`Store.record_poll`, on a fake clock, for sources that behave differently.

- `steady`: a few new entries every day, polled every six hours;
- `flooding`: quiet, then dozens of entries a day in the last week;
- `dying`: news until ten days ago, then nothing new, then failures;
- `broken`: every poll fails, with a long error;
plus whatever sources the configuration names besides (left as they are).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aggregator.config import Config
from aggregator.model import ParsedEntry, ParsedFeed, PollRecord, Validators
from aggregator.store import Store

DAY = timedelta(days=1)
HISTORY_SOURCES = {
    "steady": "https://steady.example/feed.xml",
    "flooding": "https://flood.example/rss",
    "dying": "https://dying.example/atom.xml",
    "broken": "https://broken.example/feed",
}
LONG_ERROR = (
    "broken: https://broken.example/feed: HTTP 503 Service Unavailable — the server said: "
    "upstream connect error or disconnect/reset before headers. reset reason: connection "
    "termination; retried 3 times over 40 minutes; next attempt after backoff"
)

TOPICS = (
    "Dockworkers strike over pay in {city}",
    "Tenants organise against rent rises in {city}",
    "Teachers vote to walk out across {city}",
    "Nurses rally outside parliament in {city}",
    "Bus drivers win pay deal after strike in {city}",
)
CITIES = (
    "Rotterdam",
    "Hamburg",
    "Antwerp",
    "Genoa",
    "Piraeus",
    "Lisbon",
    "Gdansk",
    "Valencia",
    "Marseille",
    "Naples",
)


def sources_toml() -> str:
    return "".join(
        f'\n[sources.{name}]\nurl = "{url}"\ntitle = "{name.title()} News"\n'
        f'categories = ["{"labour" if name != "broken" else "world"}"]\n'
        for name, url in HISTORY_SOURCES.items()
    )


def _entry(source: str, n: int, at: datetime) -> ParsedEntry:
    title = TOPICS[n % len(TOPICS)].format(city=CITIES[(n // len(TOPICS)) % len(CITIES)])
    return ParsedEntry(
        guid=f"{source}-{n}",
        link=f"https://{source}.example/articles/{n}",
        title=f"{title} ({source} {n})",
        summary=f"<p>Report number {n} from {source}: {title}.</p>",
        published=at,
    )


def seed(config: Config, now: datetime, days: int = 30) -> None:
    """Record `days` days of polls ending at `now` for the HISTORY_SOURCES."""
    store = Store(config.settings.database)
    try:
        store.upgrade()
        store.sync_sources(config.sources.values())
        counters = dict.fromkeys(HISTORY_SOURCES, 0)
        documents: dict[str, list[ParsedEntry]] = {name: [] for name in HISTORY_SOURCES}
        start = now - days * DAY
        for day in range(days):
            for hour in (1, 7, 13, 19):
                at = start + day * DAY + timedelta(hours=hour)
                for name in HISTORY_SOURCES:
                    store.record_poll(_poll(name, day, hour, at, days, counters, documents))
    finally:
        store.close()


def _poll(
    name: str,
    day: int,
    hour: int,
    at: datetime,
    days: int,
    counters: dict[str, int],
    documents: dict[str, list[ParsedEntry]],
) -> PollRecord:
    new = 0
    failing = False
    if name == "steady":
        new = 1 if hour in (7, 19) else 0
        if day % 6 == 0 and hour == 13:
            new = 2
    elif name == "flooding":
        new = 0 if day < days - 7 else (6 if hour != 1 else 3)
        if day < days - 7 and hour == 7 and day % 3 == 0:
            new = 1
    elif name == "dying":
        new = 1 if day < days - 10 and hour == 13 else 0
        failing = day >= days - 4
    elif name == "broken":
        failing = True
    if failing:
        return PollRecord(
            source=name,
            polled_at=at,
            status="error",
            next_poll_at=at + timedelta(hours=6),
            http_status=503,
            error=LONG_ERROR.replace("broken", name)
            if name == "broken"
            else (f"{name}: {HISTORY_SOURCES[name]}: timed out after 30s"),
            duration=30.0,
        )
    for _ in range(new):
        counters[name] += 1
        documents[name].insert(0, _entry(name, counters[name], at - timedelta(minutes=20)))
    del documents[name][40:]
    if not new:
        return PollRecord(
            source=name,
            polled_at=at,
            status="not_modified",
            next_poll_at=at + timedelta(hours=6),
            http_status=304,
            validators=Validators(etag=f'"{name}-{counters[name]}"'),
            duration=0.05,
        )
    feed = ParsedFeed("rss20", title=f"{name.title()} News", link=f"https://{name}.example/",
                      entries=tuple(documents[name]))  # fmt: skip
    return PollRecord(
        source=name,
        polled_at=at,
        status="ok",
        next_poll_at=at + timedelta(hours=6),
        http_status=200,
        validators=Validators(etag=f'"{name}-{counters[name]}"'),
        body_hash=f"{name}-{counters[name]}",
        feed=feed,
        fetched_bytes=1200 * len(documents[name]),
        duration=0.2,
    )
