"""`aggregator run` as a real process: it polls, serves, answers conditionally, reloads, stops."""

from __future__ import annotations

import gzip
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from daemonproc import DaemonProcess, free_port, running_daemon, settings_toml
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "config" / "samples"


def sample_sources() -> str:
    return "".join(
        f'\n[sources.{sample.stem.replace(".", "-").lower()}]\npath = "{sample}"\n'
        f'categories = ["news"]\n'
        for sample in sorted(SAMPLES.iterdir())
    )


def serves_stories(daemon: DaemonProcess) -> bool:
    if not daemon.answers("/feeds/all.json", (200,)):
        return False
    return bool(daemon.get("/feeds/all.json").json()["items"])


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    port = free_port()
    config = tmp_path / "aggregator.toml"
    config.write_text(
        settings_toml(f"sqlite:///{tmp_path / 'd.db'}", port) + sample_sources(),
        encoding="utf-8",
    )
    with running_daemon(config, port=port, ready=serves_stories) as running:
        yield running


def test_serves_every_format_with_its_media_type(daemon: DaemonProcess) -> None:
    for ext, media_type in [
        ("atom", "application/atom+xml"),
        ("rss", "application/rss+xml"),
        ("json", "application/feed+json"),
    ]:
        response = httpx2.get(f"{daemon.base}/feeds/news.{ext}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media_type)
        if ext == "json":
            assert response.json()["items"]
        else:
            etree.fromstring(response.content)
    opml = httpx2.get(f"{daemon.base}/feeds.opml")
    assert opml.status_code == 200
    assert b"/feeds/news.atom" in opml.content


def test_conditional_requests_get_304(daemon: DaemonProcess) -> None:
    first = httpx2.get(f"{daemon.base}/feeds/all.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    by_etag = httpx2.get(f"{daemon.base}/feeds/all.atom", headers={"If-None-Match": etag})
    assert by_etag.status_code == 304
    assert by_etag.content == b""
    by_date = httpx2.get(f"{daemon.base}/feeds/all.atom", headers={"If-Modified-Since": modified})
    assert by_date.status_code == 304
    stale = httpx2.get(f"{daemon.base}/feeds/all.atom", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


def test_gzip_when_asked(daemon: DaemonProcess) -> None:
    with httpx2.stream(
        "GET", f"{daemon.base}/feeds/all.atom", headers={"Accept-Encoding": "gzip"}
    ) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    etree.fromstring(gzip.decompress(raw))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/feeds/nope.atom", 404),
        ("/feeds/all.html", 404),
        ("/feeds/all.atom?q=title:%22unclosed", 400),
        ("/feeds/all.atom?q=nofield:x", 400),
        ("/feeds/all.atom?limit=0", 400),
        ("/feeds/all.atom?limit=501", 400),
        ("/feeds/all.atom?limit=ten", 400),
    ],
)
def test_bad_requests_get_clear_errors(daemon: DaemonProcess, path: str, status: int) -> None:
    response = httpx2.get(daemon.base + path)
    assert response.status_code == status
    assert response.text.strip()


def test_query_and_limit_narrow_the_feed(daemon: DaemonProcess) -> None:
    everything = httpx2.get(f"{daemon.base}/feeds/all.json").json()["items"]
    assert len(everything) > 2
    two = httpx2.get(f"{daemon.base}/feeds/all.json", params={"limit": "2"}).json()["items"]
    assert [item["id"] for item in two] == [item["id"] for item in everything[:2]]
    gaza = httpx2.get(f"{daemon.base}/feeds/all.json", params={"q": "Gaza"}).json()["items"]
    assert gaza and len(gaza) < len(everything)
    assert all("gaza" in json.dumps(item).casefold() for item in gaza)


def test_healthz_reports_database_and_scheduler(daemon: DaemonProcess) -> None:
    response = httpx2.get(f"{daemon.base}/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["scheduler"] == "ok"


def test_sighup_with_bad_config_keeps_serving_and_good_config_applies(
    daemon: DaemonProcess,
) -> None:
    good = daemon.config.read_text()
    daemon.config.write_text(good + "\n[sources.broken]\nurl = 7\n")
    daemon.process.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert httpx2.get(f"{daemon.base}/feeds/all.atom").status_code == 200
    assert "reload refused" in daemon.log.read_text()

    daemon.config.write_text(good + '\n[feeds.gaza]\ntitle = "Gaza"\ninclude = ["Gaza"]\n')
    daemon.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while httpx2.get(f"{daemon.base}/feeds/gaza.atom").status_code != 200:
        assert time.monotonic() < deadline, daemon.log.read_text()
        time.sleep(0.2)


def test_sigterm_stops_cleanly_with_status_0(daemon: DaemonProcess) -> None:
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=30) == 0, daemon.log.read_text()
    assert "Traceback" not in daemon.log.read_text()
