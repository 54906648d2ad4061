"""The whole pipeline through the real command line: serve feeds, poll, build, check outputs."""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from feedserver import FeedServer
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "config" / "samples"
ATOM = "{http://www.w3.org/2005/Atom}"


def aggregator(config: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def write_config(path: Path, body: str, database: Path, out: Path | None = None) -> Path:
    head = f'[aggregator]\ndatabase = "sqlite:///{database}"\nbase_url = "http://feeds.test"\n'
    if out is not None:
        head += f'output_dir = "{out}"\n'
    path.write_text(head + body, encoding="utf-8")
    return path


def entry_rows(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as conn:
        return [
            (str(source), str(key))
            for source, key in conn.execute(
                "SELECT s.name, e.entry_key FROM entries e JOIN sources s ON s.id = e.source_id"
            )
        ]


def assert_valid_outputs(out: Path, names: set[str]) -> None:
    """Every output parses strictly and carries the elements its format requires."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)
    for name in names:
        atom = etree.fromstring((out / f"{name}.atom").read_bytes(), parser)
        assert atom.tag == f"{ATOM}feed"
        for required in ("id", "title", "updated"):
            assert atom.find(f"{ATOM}{required}") is not None, (name, required)
        feed_author = atom.find(f"{ATOM}author") is not None
        for entry in atom.iter(f"{ATOM}entry"):
            for required in ("id", "title", "updated"):
                assert entry.find(f"{ATOM}{required}") is not None, (name, required)
            assert feed_author or entry.find(f"{ATOM}author") is not None
        rss = etree.fromstring((out / f"{name}.rss").read_bytes(), parser)
        channel = rss.find("channel")
        assert channel is not None
        for required in ("title", "link", "description"):
            assert channel.find(required) is not None, (name, required)
        for item in channel.iter("item"):
            assert item.find("guid") is not None
            assert item.find("title") is not None or item.find("description") is not None
        document = json.loads((out / f"{name}.json").read_bytes())
        assert document["version"] == "https://jsonfeed.org/version/1.1"
        assert isinstance(document["title"], str)
        for item in document["items"]:
            assert isinstance(item["id"], str) and item["id"]
            assert "content_html" in item or "content_text" in item
    opml = etree.fromstring((out / "feeds.opml").read_bytes(), parser)
    assert {
        o.get("xmlUrl", "").rsplit("/", 1)[-1].split(".")[0] for o in opml.iter("outline")
    } >= names


def test_bundled_sample_config_is_valid() -> None:
    result = aggregator(REPO / "config" / "aggregator.toml", "check")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_bad_config_exits_2_with_every_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[aggregator]\ninterval = "soon"\n\n[sources.a]\nurl = "ftp://x"\nbogus = 1\n',
        encoding="utf-8",
    )
    result = aggregator(config, "check")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(config))]
    assert len(lines) >= 3, result.stderr
    assert any(line.startswith(f"{config}:2:") for line in lines), lines
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [("poll", "--all"), ("status",), ("db", "upgrade")])
def test_unreachable_database_is_one_line_without_its_password(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
    config = tmp_path / "aggregator.toml"
    config.write_text(
        '[aggregator]\ndatabase = "postgresql+psycopg://feeds:s3cret@127.0.0.1:9/feeds"\n'
        'base_url = "http://feeds.test"\n[sources.a]\nurl = "http://127.0.0.1:9/feed"\n',
        encoding="utf-8",
    )
    result = aggregator(config, *command, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert result.stderr.startswith(
        "error: database postgresql+psycopg://feeds:***@127.0.0.1:9/feeds: connection failed"
    ), result.stderr
    assert "[SQL" not in result.stderr and "sqlalche.me" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_daemon_without_its_database_exits_1_saying_why(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "aggregator.toml"
    config.write_text(
        '[aggregator]\ndatabase = "postgresql+psycopg://feeds:s3cret@127.0.0.1:9/feeds"\n'
        f'base_url = "http://feeds.test"\nlisten = "127.0.0.1:{port}"\n'
        '[sources.a]\nurl = "http://127.0.0.1:9/feed"\n',
        encoding="utf-8",
    )
    result = aggregator(config, "run", timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "s3cret" not in result.stderr
    assert (
        "ERROR aggregator.daemon: cannot start: database "
        "postgresql+psycopg://feeds:***@127.0.0.1:9/feeds: connection failed"
    ) in result.stderr, result.stderr


def serve_samples(server: FeedServer) -> dict[str, str]:
    """Every sample feed on the real server, with an ETag; returns name → URL."""
    urls: dict[str, str] = {}
    for sample in sorted(SAMPLES.iterdir()):
        body = sample.read_bytes()
        etag = f'"{abs(hash(body)) % 10**12}"'
        kind = "application/feed+json" if sample.suffix == ".json" else "application/xml"
        server.add(f"/{sample.name}", body, content_type=kind, etag=etag)
        urls[sample.stem.replace(".", "-").lower()] = server.url(f"/{sample.name}")
    return urls


def test_poll_twice_stores_once_and_second_pass_is_all_304(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    urls = serve_samples(feed_server)
    body = "".join(
        f'\n[sources.{name}]\nurl = "{url}"\ncategories = ["news"]\n' for name, url in urls.items()
    )
    database = tmp_path / "a.db"
    config = write_config(tmp_path / "aggregator.toml", body, database)

    first = aggregator(config, "poll", "--all")
    assert first.returncode == 0, first.stderr
    rows = entry_rows(database)
    assert rows and len(rows) == len(set(rows))
    assert f"{len(urls)} ok" in first.stdout

    second = aggregator(config, "poll", "--all")
    assert second.returncode == 0, second.stderr
    assert f"{len(urls)} not modified" in second.stdout
    assert "0 new" in second.stdout
    assert entry_rows(database) == rows
    conditional = [r for r in feed_server.requests if "if-none-match" in r.headers]
    assert len(conditional) == len(urls)


def test_republished_article_appears_once_in_all_feed(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    urls = serve_samples(feed_server)
    body = "".join(f'\n[sources.{name}]\nurl = "{url}"\n' for name, url in urls.items())
    database = tmp_path / "a.db"
    out = tmp_path / "public"
    config = write_config(tmp_path / "aggregator.toml", body, database, out)
    assert aggregator(config, "poll", "--all").returncode == 0
    built = aggregator(config, "build")
    assert built.returncode == 0, built.stderr

    items = json.loads((out / "all.json").read_bytes())["items"]
    titles = [re.sub(r"\s+", " ", item["title"]).casefold() for item in items]
    assert len(titles) == len(set(titles)), sorted(titles)
    with sqlite3.connect(database) as conn:
        (entries,) = conn.execute("SELECT count(*) FROM entries").fetchone()
        (stories,) = conn.execute("SELECT count(*) FROM stories").fetchone()
    assert entries > stories, "the samples republish articles: some stories must have two copies"
    assert_valid_outputs(out, {"all"})


def corpus_documents(corpus: Path) -> list[tuple[str, Path, str | None]]:
    """(source name, file, content type to simulate) for every feed-like corpus file."""
    documents = []
    rows = (corpus / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]
    for number, row in enumerate(rows):
        path, fmt, *_rest, notes = row.split("\t")
        if fmt == "opml":
            continue
        simulated = re.search(
            r"HTTP headers to simulate: Content-type: ([^;]+(?:;\s*charset=[\w-]+)?)", notes
        )
        documents.append(
            (f"c{number:04d}", corpus / path, simulated.group(1) if simulated else None)
        )
    return documents


@pytest.mark.corpus
@pytest.mark.slow
def test_every_corpus_file_ingests_and_every_output_stays_valid(
    feed_server: FeedServer, corpus_dir: Path, tmp_path: Path
) -> None:
    documents = corpus_documents(corpus_dir)
    body = []
    for name, file, content_type in documents:
        data = file.read_bytes()
        compressed = data[:2] == b"\x1f\x8b"
        if compressed:
            data = gzip.decompress(data)
        feed_server.add(
            f"/{name}", data, content_type=content_type or "application/xml", gzip=compressed
        )
        category = "real" if "/real/" in str(file) else "cases"
        url = feed_server.url("/" + name)
        body.append(f'\n[sources.{name}]\nurl = "{url}"\ncategories = ["{category}"]\n')
    body.append('\n[feeds.everything]\ntitle = "Everything"\nlimit = 500\n')
    database = tmp_path / "corpus.db"
    out = tmp_path / "public"
    config = write_config(tmp_path / "aggregator.toml", "".join(body), database, out)

    polled = aggregator(config, "poll", "--all")
    assert polled.returncode in (0, 1), polled.stderr
    assert "Traceback" not in polled.stderr
    assert "unexpected failure" not in polled.stderr
    summary = re.search(r"sources: (\d+) polled, (\d+) ok", polled.stdout)
    assert summary is not None, polled.stdout
    assert int(summary.group(1)) == len(documents)
    # Non-feeds (HTML, empty, broken beyond recovery) fail cleanly; the feeds must ingest.
    assert int(summary.group(2)) >= 0.8 * len(documents), polled.stdout
    failures = [line for line in polled.stderr.splitlines() if line.startswith("failed: ")]
    assert all(re.match(r"failed: c\d{4}: http://127\.0\.0\.1:\d+/c\d{4}: \S", f) for f in failures)

    built = aggregator(config, "build")
    assert built.returncode == 0, built.stderr
    assert_valid_outputs(out, {"all", "real", "cases", "everything"})
    everything = json.loads((out / "everything.json").read_bytes())["items"]
    assert len(everything) == 500
