"""OPML in and out (pure), feed discovery in HTML (pure), and every corpus OPML file
through `aggregator sources import` into a real configuration file."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.discover import feed_links, looks_like_html
from aggregator.opml import ExportedSource, OpmlError, read_opml, write_opml
from aggregator.sources import Candidate

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

NESTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My feeds</title></head>
  <body>
    <outline text="Top level" type="rss" xmlUrl="https://top.example/feed"/>
    <outline text="Tech">
      <outline text="Linux">
        <outline title="LWN" text="ignored when a title is there" xmlUrl="https://lwn.net/headlines/rss"/>
      </outline>
      <outline text="Tagged" xmlurl="https://tagged.example/rss" category="/News/World,/Extra"/>
    </outline>
    <outline text="A note, not a feed"/>
    <outline xmlUrl="https://untitled.example/atom"/>
  </body>
</opml>
"""


def test_nested_outlines_become_folders_and_category_attributes_add_to_them() -> None:
    document = read_opml(NESTED)
    assert document.title == "My feeds"
    assert document.feeds == (
        Candidate("https://top.example/feed", "Top level", ()),
        Candidate("https://lwn.net/headlines/rss", "LWN", ("Tech", "Linux")),
        Candidate("https://tagged.example/rss", "Tagged", ("Tech", "News", "World", "Extra")),
        Candidate("https://untitled.example/atom", None, ()),
    )
    assert document.not_feeds == 1


@pytest.mark.parametrize(
    ("case", "data", "reason"),
    [
        ("empty", b"  \n", "the file is empty"),
        ("not xml", b"<opml><body><outline", "not well-formed XML"),
        ("html page", b"<html><body><p>hi</p></body></html>", "root element is <html>"),
        ("no body", b'<opml version="2.0"><head/></opml>', "no <body> element"),
        (
            "entities",
            b'<!DOCTYPE opml [<!ENTITY a "aaaa">]><opml><body><outline text="&a;"/></body></opml>',
            "declares XML entities",
        ),
        (
            "external entity",
            b'<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]><opml/>',
            "declares XML entities",
        ),
        (
            "too deep",
            b"<opml><body>" + b"<outline text='x'>" * 60 + b"</outline>" * 60 + b"</body></opml>",
            "nested deeper than 50",
        ),
    ],
)
def test_documents_that_are_no_subscription_list_are_refused_with_the_reason(
    case: str, data: bytes, reason: str
) -> None:
    with pytest.raises(OpmlError, match=reason):
        read_opml(data)


def test_export_then_import_gives_back_every_source_and_category() -> None:
    sources = [
        ExportedSource("a", "https://a.example/feed", "Alpha & Co", ("world", "theory")),
        ExportedSource("b", "https://b.example/feed", "Beta\x0b", ("world",)),
        ExportedSource("c", "https://c.example/feed", "Gamma", ()),
    ]
    data = write_opml("mine", sources, now=NOW, generator="aggregator test")
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert b"<dateCreated>Mon, 02 Mar 2026 12:00:00 GMT</dateCreated>" in data
    document = read_opml(data)
    assert document.title == "mine"
    assert [(c.url, c.title, set(c.folders)) for c in document.feeds] == [
        ("https://a.example/feed", "Alpha & Co", {"world", "theory"}),
        ("https://b.example/feed", "Beta", {"world"}),
        ("https://c.example/feed", "Gamma", set()),
    ]


# -- discovery -----------------------------------------------------------------------

PAGE = b"""<!doctype html><html><head>
<base href="https://cdn.example/site/">
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Posts" href="feed.xml">
<link rel="Alternate" type="application/atom+xml; charset=utf-8" href="https://blog.example/atom">
<link rel="alternate" type="application/rss+xml" href="feed.xml">
<link rel="alternate" type="text/html" hreflang="fr" href="/fr/">
<link rel="alternate" type="application/feed+json" href="javascript:alert(1)">
<link rel="alternate" type="application/feed+json" href="/feed.json">
</head><body></body></html>"""


def test_feed_links_are_absolute_deduplicated_and_in_page_order() -> None:
    assert feed_links(PAGE, "https://blog.example/") == (
        "https://cdn.example/site/feed.xml",
        "https://blog.example/atom",
        "https://cdn.example/feed.json",
    )


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<!DOCTYPE html><html>", None, True),
        (b"<!-- hi -->\n<html lang=en>", "application/octet-stream", True),
        (b"<?xml version='1.0'?><rss/>", "text/html; charset=utf-8", True),
        (b"<?xml version='1.0'?><rss/>", "application/rss+xml", False),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', None, False),
    ],
)
def test_looks_like_html(body: bytes, content_type: str | None, expected: bool) -> None:
    assert looks_like_html(body, content_type) is expected


def test_a_page_without_feed_links_offers_none() -> None:
    assert feed_links(b"<html><head><title>x</title></head></html>", "https://x.example/") == ()
    assert feed_links(b"", "https://x.example/") == ()


# -- the corpus through the command ------------------------------------------------------


def corpus_files() -> list[Path]:
    root = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "opml"
    return sorted(root.rglob("*.opml")) if root.is_dir() else []


CONFIG = """\
[aggregator]
database = "sqlite:///{db}"

[sources.existing]
url = "http://schneier.com/blog/atom.xml"
"""


@pytest.mark.corpus
@pytest.mark.parametrize("opml", corpus_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_opml_file_imports_or_is_refused_with_a_reason(
    opml: Path, tmp_path: Path
) -> None:
    config = tmp_path / "aggregator.toml"
    config.write_text(CONFIG.format(db=tmp_path / "a.db"), encoding="utf-8")
    before = config.read_bytes()
    result = CliRunner().invoke(
        main, ["--config", str(config), "sources", "import", str(opml), "--no-reload"]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert f"{opml}: not imported: " in result.stderr
        assert config.read_bytes() == before
        return
    assert result.exit_code == 0, result.output
    loaded = load_config(config)
    added = len(loaded.sources) - 1
    document = read_opml(opml.read_bytes())
    skipped = result.stderr.count("skipped: ")
    merged = result.stderr.count("merged: ")
    assert added + skipped + merged == len(document.feeds)
    if added:
        assert f"imported {added} sources into {config}" in result.stdout
    else:
        assert config.read_bytes() == before


def test_corpus_is_present_or_the_import_table_says_why() -> None:
    if not corpus_files():
        pytest.skip("../shared/corpus/opml is absent: the corpus import cases are not run")
    assert len(corpus_files()) >= 50


@pytest.mark.corpus
def test_a_real_export_imports_with_categories_and_reports_duplicates(tmp_path: Path) -> None:
    files = {p.name: p for p in corpus_files()}
    if "inoreader-export.opml" not in files:
        pytest.skip("../shared/corpus/opml is absent")
    config = tmp_path / "aggregator.toml"
    config.write_text(CONFIG.format(db=tmp_path / "a.db"), encoding="utf-8")
    runner = CliRunner()
    args = ["--config", str(config), "sources", "import"]
    result = runner.invoke(main, [*args, str(files["inoreader-export.opml"]), "--no-reload"])
    assert result.exit_code == 0, result.output
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    categories = {c for source in data["sources"].values() for c in source.get("categories", [])}
    assert "infosec-newsletter" in categories  # "📩 Infosec | Newsletter"
    # r/netsec sits in three folders of the export: one source, in all three categories.
    netsec = [s for s in data["sources"].values() if s.get("url", "").endswith("/r/netsec/.rss")]
    assert len(netsec) == 1
    assert netsec[0]["categories"] == [
        "infosec-reddits",
        "infosec-curated",
        "all-infosec-relevant",
    ]
    assert "merged: /r/netsec <http://www.reddit.com/r/netsec/.rss>: listed again" in result.stderr
    # Schneier's blog was a source already; an import of the same list twice adds nothing.
    assert "already a source: existing" in result.stderr
    again = runner.invoke(main, [*args, str(files["inoreader-export.opml"]), "--no-reload"])
    assert again.exit_code == 0
    assert "importing 0, skipping" in again.stdout
    # Two folders each hold a feed titled "planet": two names, nothing written.
    before = config.read_bytes()
    dupes = runner.invoke(main, [*args, str(files["duplicates.opml"]), "--dry-run"])
    assert dupes.exit_code == 0
    assert "would import 3, skipping 0" in dupes.stdout
    names = [line.split("\t")[0] for line in dupes.stdout.splitlines()[1:]]
    assert names == ["slashdot", "planet", "planet-2"]
    assert config.read_bytes() == before
