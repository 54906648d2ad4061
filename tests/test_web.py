"""The web app in process (Starlette's TestClient) over a real SQLite store."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from test_store import entry, poll

from aggregator.config import Config, parse_config
from aggregator.store import Store
from aggregator.web import DataVersion, WebState, create_app

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class CountingStore(Store):
    """A real store that counts how often the web layer asks it for the data version."""

    version_reads = 0
    story_reads = 0

    def data_version(self) -> int:
        self.version_reads += 1
        return super().data_version()

    def stories(self, **options: object) -> list:  # type: ignore[override]
        self.story_reads += 1
        return super().stories(**options)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.wall = T0

    def monotonic(self) -> float:
        return self.now

    def __call__(self) -> datetime:
        return self.wall


@pytest.fixture
def config(tmp_path: Path) -> Config:
    text = (
        f'[aggregator]\ndatabase = "sqlite:///{tmp_path / "w.db"}"\n'
        '\n[sources.alpha]\nurl = "https://alpha.example/feed"\ncategories = ["news"]\n'
    )
    return parse_config(text, tmp_path / "aggregator.toml")


@pytest.fixture
def web(config: Config) -> Iterator[tuple[TestClient, WebState, CountingStore, Clock]]:
    store = CountingStore(config.settings.database)
    store.upgrade()
    store.sync_sources(config.sources.values())
    store.record_poll(poll("alpha", entry(1), entry(2)))
    clock = Clock()
    state = WebState(
        config=config,
        store=store,
        clock=clock,
        versions=DataVersion(store, monotonic=clock.monotonic),
    )
    with TestClient(create_app(state)) as client:
        yield client, state, store, clock
    store.close()


def test_a_readers_repeated_polls_cost_no_database_access(
    web: tuple[TestClient, WebState, CountingStore, Clock],
) -> None:
    client, state, store, _ = web
    first = client.get("/feeds/all.atom")
    assert first.status_code == 200
    reads = (store.version_reads, store.story_reads)
    for _ in range(50):
        assert client.get("/feeds/all.atom").status_code == 200
        again = client.get("/feeds/all.atom", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
    assert (store.version_reads, store.story_reads) == reads
    assert state.metrics.render_cache.labels("hit")._value.get() == 100


def test_the_version_is_read_again_after_a_write_or_the_recheck_period(
    web: tuple[TestClient, WebState, CountingStore, Clock],
) -> None:
    client, state, store, clock = web
    before = client.get("/feeds/all.atom", headers={"Accept-Encoding": "identity"})
    reads = store.version_reads
    store.record_poll(poll("alpha", entry(3), at=T0 + timedelta(hours=1)))
    # Another process wrote: noticed once the recheck period has passed.
    unseen = client.get("/feeds/all.atom", headers={"Accept-Encoding": "identity"})
    assert unseen.headers["etag"] == before.headers["etag"]
    clock.now += 1.0
    clock.wall += timedelta(seconds=5)
    after = client.get("/feeds/all.atom", headers={"Accept-Encoding": "identity"})
    assert after.headers["etag"] != before.headers["etag"]
    assert store.version_reads == reads + 1
    # The daemon's own poller marks it stale: noticed at once.
    store.record_poll(poll("alpha", entry(4), at=T0 + timedelta(hours=2)))
    state.data_changed()
    latest = client.get("/feeds/all.atom", headers={"Accept-Encoding": "identity"})
    assert latest.headers["etag"] != after.headers["etag"]
    assert b"Article 4" in latest.content


def test_last_modified_moves_forward_whenever_the_bytes_change(
    web: tuple[TestClient, WebState, CountingStore, Clock],
) -> None:
    client, state, store, _ = web
    first = client.get("/feeds/all.atom")
    # A correction in place: same dates, new bytes, within the same second.
    store.record_poll(poll("alpha", entry(1, title="Corrected"), entry(2), at=T0))
    state.data_changed()
    second = client.get(
        "/feeds/all.atom", headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    assert second.status_code == 200
    assert b"Corrected" in second.content or "Corrected" in second.text
    assert second.headers["last-modified"] != first.headers["last-modified"]
    # A new data version with the same bytes keeps the validators.
    state.data_changed()
    store.record_poll(poll("alpha", entry(1, title="Corrected"), entry(2), at=T0))
    third = client.get("/feeds/all.atom", headers={"If-None-Match": second.headers["etag"]})
    assert third.status_code == 304


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip", True),
        ("br, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("deflate", False),
    ],
)
def test_gzip_only_when_the_reader_accepts_it(
    web: tuple[TestClient, WebState, CountingStore, Clock], accept: str, gzipped: bool
) -> None:
    client, *_ = web
    plain = client.get("/feeds/all.atom", headers={"Accept-Encoding": "identity"}).content
    response = client.get("/feeds/all.atom", headers={"Accept-Encoding": accept})
    assert (response.headers.get("content-encoding") == "gzip") is gzipped
    assert response.headers["vary"] == "Accept-Encoding"
    # TestClient decodes gzip itself, so the content is the same document either way.
    assert response.content == plain
    if gzipped:
        assert response.headers["etag"].endswith('-gz"')


def test_the_cached_gzip_form_is_the_body_compressed(
    web: tuple[TestClient, WebState, CountingStore, Clock],
) -> None:
    client, state, *_ = web
    client.get("/feeds/all.atom")
    [cached] = state.cache.values()
    assert cached.gzipped is not None and gzip.decompress(cached.gzipped) == cached.body


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/feeds/all.atom", 200),
        ("/feeds/news.rss", 200),
        ("/feeds/all.json?limit=1", 200),
        ("/feeds/all.atom?q=Article", 200),
        ("/feeds/nope.atom", 404),
        ("/feeds/all.txt", 404),
        ("/feeds/all.atom?q=title:%22open", 400),
        ("/feeds/all.atom?limit=0", 400),
        ("/feeds/all.atom?limit=501", 400),
        ("/feeds.opml", 200),
        ("/", 200),
        ("/metrics", 200),
        ("/healthz", 200),
    ],
)
def test_routes(
    web: tuple[TestClient, WebState, CountingStore, Clock], path: str, status: int
) -> None:
    client, *_ = web
    assert client.get(path).status_code == status


def test_opml_answers_conditional_requests(
    web: tuple[TestClient, WebState, CountingStore, Clock],
) -> None:
    client, *_ = web
    first = client.get("/feeds.opml")
    assert (
        client.get("/feeds.opml", headers={"If-None-Match": first.headers["etag"]}).status_code
        == 304
    )


def test_healthz_is_503_when_the_scheduler_is_stalled(config: Config) -> None:
    store = Store(config.settings.database)
    store.upgrade()
    state = WebState(config=config, store=store, scheduler_alive=lambda: False)
    with TestClient(create_app(state)) as client:
        response = client.get("/healthz")
    store.close()
    assert response.status_code == 503
    assert response.json()["scheduler"] == "stalled"
    assert response.json()["database"] == "ok"


@pytest.mark.parametrize("path", ["/", "/metrics"])
def test_pages_made_per_request_are_gzipped_when_asked(
    web: tuple[TestClient, WebState, CountingStore, Clock], path: str
) -> None:
    client, *_ = web
    response = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
