"""Parsing: every format to the same normalised entries, and clear errors for non-feeds."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.model import Enclosure, Image, ParsedFeed
from aggregator.parse import MAX_TITLE_CHARS, ParseError, parse_document

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "config" / "samples"
SEED = REPO.parent / "shared" / "seed" / "front-page.txt"
URL = "https://example.com/feeds/news.xml"

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
     xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"
     xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel>
  <title>News &amp; Views</title><link>/</link><description>All the news</description>
  <ttl>45</ttl><sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>
  {items}
</channel></rss>"""

ITEM = """<item>
  <title>It&#8217;s &lt;b&gt;bold&lt;/b&gt; news</title>
  <link>/2021/06/story.html?a=1&amp;b=2</link>
  <guid isPermaLink="false">  story-1 </guid>
  <dc:creator>Jane Roe</dc:creator>
  <category>World</category><category>world</category><category>Labour</category>
  <pubDate>Tue, 01 Jun 2021 10:00:00 +0200</pubDate>
  <description>&lt;p&gt;Summary &lt;a href="more.html" onclick="x()"&gt;more&lt;/a&gt;
    [&#8230;]&lt;/p&gt;</description>
  <content:encoded><![CDATA[<p>Full text <img src="/img/inline.jpg" alt="Inline"></p>
    <script>evil()</script>]]></content:encoded>
  <media:content url="https://cdn.example.com/lead.jpg" medium="image">
    <media:description>Strikers outside the plant</media:description>
  </media:content>
  <enclosure url="/audio/story.mp3" type="audio/mpeg" length="1234"/>
  <feedburner:origLink>https://origin.example.org/story</feedburner:origLink>
</item>"""


def parse(text: str, **kwargs: object) -> ParsedFeed:
    return parse_document(text.encode(), url=URL, source="test", **kwargs)  # type: ignore[arg-type]


def test_rss_entry_is_normalised() -> None:
    feed = parse(RSS.format(items=ITEM))
    assert feed.format == "rss20"
    assert feed.title == "News & Views"
    assert feed.link == "https://example.com/"
    [entry] = feed.entries
    assert entry.guid == "story-1"
    assert entry.link == "https://example.com/2021/06/story.html?a=1&b=2"
    assert entry.title == "It’s bold news"
    assert entry.author == "Jane Roe"
    assert entry.tags == ("World", "Labour")
    assert entry.published == datetime(2021, 6, 1, 8, 0, tzinfo=UTC)
    assert entry.orig_link == "https://origin.example.org/story"
    assert entry.enclosures == (
        Enclosure("https://example.com/audio/story.mp3", "audio/mpeg", 1234),
    )


def test_rss_html_is_sanitised_with_absolute_urls() -> None:
    [entry] = parse(RSS.format(items=ITEM)).entries
    # relative to the document (or its xml:base), not to the entry's link
    assert 'href="https://example.com/feeds/more.html"' in entry.summary
    assert "onclick" not in entry.summary
    assert "[…]" in entry.summary
    assert 'src="https://example.com/img/inline.jpg"' in entry.content
    assert "evil" not in entry.content and "<script" not in entry.content


def test_media_content_is_the_image_and_media_description_its_caption() -> None:
    [entry] = parse(RSS.format(items=ITEM)).entries
    assert entry.image == Image("https://cdn.example.com/lead.jpg", "Strikers outside the plant")
    # feedparser alone would let the caption replace the summary
    assert "Strikers" not in entry.summary


def test_media_description_before_description_does_not_become_the_summary() -> None:
    item = """<item><title>t</title><guid>g</guid>
      <media:content url="https://cdn.example.com/a.jpg" medium="image">
        <media:description>The caption</media:description></media:content>
      <description>The real summary</description></item>"""
    [entry] = parse(RSS.format(items=item)).entries
    assert entry.summary == "The real summary"
    assert entry.image is not None and entry.image.caption == "The caption"


def test_media_description_is_the_summary_when_there_is_no_other() -> None:
    item = """<item><title>Video</title><guid>v</guid>
      <media:description>What the video shows</media:description></item>"""
    [entry] = parse(RSS.format(items=item)).entries
    assert entry.summary == "<p>What the video shows</p>"


def test_publisher_hints_are_read_as_minutes() -> None:
    feed = parse(RSS.format(items=ITEM))
    assert feed.ttl_minutes == 45
    assert feed.update_period_minutes == 15


def test_first_img_is_the_image_when_no_media_is_given_and_figcaption_its_caption() -> None:
    item = """<item><title>t</title><guid>g</guid><description><![CDATA[
      <figure><img src="pics/a.jpg" alt="alt text"><figcaption>Dockworkers in Durban</figcaption>
      </figure><p>Body</p>]]></description></item>"""
    [entry] = parse(RSS.format(items=item)).entries
    assert entry.image == Image("https://example.com/feeds/pics/a.jpg", "Dockworkers in Durban")


def test_image_enclosure_is_the_image() -> None:
    item = """<item><title>t</title><guid>g</guid>
      <enclosure url="https://cdn.example.com/p.png" type="image/png" length="10"/></item>"""
    [entry] = parse(RSS.format(items=item)).entries
    assert entry.image == Image("https://cdn.example.com/p.png", None)


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example.net/sub/">
  <title type="html">A &lt;em&gt;blog&lt;/em&gt;</title>
  <id>urn:blog</id><updated>2021-06-01T00:00:00Z</updated>
  <link rel="alternate" href="./"/>
  <entry>
    <title type="html">Title with &lt;i&gt;markup&lt;/i&gt; &amp;amp; more</title>
    <id>tag:blog.example.net,2021:1</id>
    <link rel="alternate" href="posts/1"/>
    <updated>2021-06-02T12:30:00-04:00</updated>
    <author><name>Sam</name><email>sam@example.net</email></author>
    <category term="labour"/>
    <summary>Plain summary &lt; with a less-than</summary>
    <content type="xhtml" xml:base="https://static.example.net/">
      <div xmlns="http://www.w3.org/1999/xhtml"><p><a href="x/y.html">link</a></p></div>
    </content>
  </entry>
</feed>"""


def test_atom_entry_is_normalised_with_xml_base() -> None:
    feed = parse(ATOM)
    assert feed.format == "atom10"
    assert feed.title == "A blog"
    [entry] = feed.entries
    assert entry.guid == "tag:blog.example.net,2021:1"
    assert entry.link == "https://blog.example.net/sub/posts/1"
    assert entry.title == "Title with markup & more"
    assert entry.author == "Sam"
    assert entry.tags == ("labour",)
    assert entry.published is None
    assert entry.updated == datetime(2021, 6, 2, 16, 30, tzinfo=UTC)
    assert entry.summary == "<p>Plain summary &lt; with a less-than</p>"
    assert 'href="https://static.example.net/x/y.html"' in entry.content


RSS10 = """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://example.org/"><title>RDF site</title><link>https://example.org/</link>
    <description>d</description></channel>
  <item rdf:about="https://example.org/a"><title>First</title><link>https://example.org/a</link>
    <dc:date>2021-06-01T09:00:00+01:00</dc:date></item>
</rdf:RDF>"""

RSS091 = """<?xml version="1.0"?><rss version="0.91"><channel><title>Old</title>
<link>https://old.example/</link><description>d</description><language>en</language>
<item><title>Item</title><link>https://old.example/1</link><description>Text</description></item>
</channel></rss>"""


@pytest.mark.parametrize(
    ("document", "fmt", "title", "link"),
    [
        (RSS10, "rss10", "First", "https://example.org/a"),
        (RSS091, "rss091u", "Item", "https://old.example/1"),
    ],
)
def test_older_formats_give_the_same_entry_shape(
    document: str, fmt: str, title: str, link: str
) -> None:
    feed = parse(document)
    assert feed.format == fmt
    [entry] = feed.entries
    assert (entry.title, entry.link) == (title, link)


def test_rss10_dc_date_is_converted_to_utc() -> None:
    [entry] = parse(RSS10).entries
    # feedparser reads dc:date as the modification date
    assert (entry.published, entry.updated) == (None, datetime(2021, 6, 1, 8, 0, tzinfo=UTC))


def test_an_entry_with_only_a_published_date_has_no_updated_date() -> None:
    [entry] = parse(RSS.format(items=ITEM)).entries
    assert entry.updated is None


JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Fightback",
    "home_page_url": "https://www.example.ca/",
    "feed_url": "https://www.example.ca/feed.json",
    "authors": [{"name": "Editors"}],
    "items": [
        {
            "id": "https://www.example.ca/a",
            "url": "/a?utm_source=rss",
            "title": "Inflation &amp; Instability",
            "summary": "Short summary.",
            "content_html": '<p>Long <a href="b">text</a></p><script>x()</script>',
            "image": "/img/a.jpg",
            "date_published": "2021-06-02T13:00:00-04:00",
            "date_modified": "2021-06-03T00:00:00Z",
            "tags": ["Economy", "economy", 5],
            "attachments": [
                {"url": "/a.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 99},
                {"url": "javascript:alert(1)", "mime_type": "text/html"},
            ],
        },
        {"id": 42, "content_text": "Only text\n\nTwo paragraphs", "author": {"name": "Old"}},
        "not an item",
    ],
}


def test_json_feed_entry_is_normalised() -> None:
    feed = parse(json.dumps(JSON_FEED), content_type="application/feed+json")
    assert feed.format == "json11"
    assert (feed.title, feed.link) == ("Fightback", "https://www.example.ca/")
    first, second = feed.entries
    assert first.guid == "https://www.example.ca/a"
    assert first.link == "https://www.example.ca/a?utm_source=rss"
    assert first.title == "Inflation &amp; Instability"  # JSON titles are plain text already
    assert first.summary == "<p>Short summary.</p>"
    assert 'href="https://www.example.ca/b"' in first.content and "script" not in first.content
    assert first.image == Image("https://www.example.ca/img/a.jpg", None)
    assert first.published == datetime(2021, 6, 2, 17, 0, tzinfo=UTC)
    assert first.updated == datetime(2021, 6, 3, tzinfo=UTC)
    assert first.tags == ("Economy",)
    assert first.author == "Editors"
    assert first.enclosures == (Enclosure("https://www.example.ca/a.mp3", "audio/mpeg", 99),)
    assert second.guid == "42"
    assert second.content == "<p>Only text</p><p>Two paragraphs</p>"
    assert second.author == "Old"


@pytest.mark.parametrize(
    "version", ["https://jsonfeed.org/version/1", "1.1", "http://jsonfeed.org/version/1"]
)
def test_json_feed_versions_written_loosely_are_read(version: str) -> None:
    feed = parse(json.dumps({"version": version, "items": [{"id": "a", "title": "A"}]}))
    assert [entry.title for entry in feed.entries] == ["A"]


# (case, body, content type, words the error must contain)
NOT_FEEDS = [
    ("empty body", "", None, "empty"),
    ("only whitespace", " \n ", "application/rss+xml", "empty"),
    (
        "an HTML page",
        "<!DOCTYPE html><html><head><title>Home</title></head><body>x</body></html>",
        "text/html",
        "HTML page",
    ),
    (
        "invalid JSON",
        '{"version": "https://jsonfeed.org/version/1.1", "items": [',
        "application/feed+json",
        "invalid JSON",
    ),
    ("JSON that is not a feed", '{"hello": "world"}', "application/json", "not a JSON Feed"),
    ("a JSON array", "[1, 2]", "application/json", "not a JSON Feed"),
    ("plain text", "hello, this is not a feed", "text/plain", "not a feed"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [case[1:] for case in NOT_FEEDS],
    ids=[case[0] for case in NOT_FEEDS],
)
def test_documents_that_are_not_feeds_raise_a_clear_parse_error(
    body: str, content_type: str | None, words: str
) -> None:
    with pytest.raises(ParseError) as raised:
        parse(body, content_type=content_type)
    assert raised.value.source == "test" and raised.value.url == URL
    assert words in raised.value.cause
    assert str(raised.value).startswith(f"test: {URL}: ")


def test_parse_error_survives_pickling_for_worker_processes() -> None:
    import pickle

    error = ParseError("s", "https://x.test/", "broken")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.source, copy.url, copy.cause, str(copy)) == (
        "s",
        "https://x.test/",
        "broken",
        str(error),
    )


def test_only_the_first_max_entries_are_kept() -> None:
    items = "".join(
        f'<item><title>n{i}</title><guid isPermaLink="false">g{i}</guid></item>' for i in range(30)
    )
    feed = parse(RSS.format(items=items), max_entries=7)
    assert [entry.guid for entry in feed.entries] == [f"g{i}" for i in range(7)]


def test_empty_items_are_dropped() -> None:
    feed = parse(RSS.format(items="<item></item><item><title>kept</title></item>"))
    assert [entry.title for entry in feed.entries] == ["kept"]


def test_huge_titles_are_cut() -> None:
    long_title = "word " * 50_000
    [entry] = parse(RSS.format(items=f"<item><title>{long_title}</title></item>")).entries
    assert len(entry.title) <= MAX_TITLE_CHARS + 1 and entry.title.endswith("…")


def test_control_characters_never_reach_the_entry() -> None:
    item = "<item><title>bad&#1;title</title><guid>g</guid><description>x&#8;y</description></item>"
    [entry] = parse(RSS.format(items=item)).entries
    assert "\x01" not in entry.title and "\x08" not in entry.summary


def test_broken_xml_is_read_with_a_warning() -> None:
    broken = RSS.format(items="<item><title>Unclosed &amp; broken</title><guid>g</guid></item>")
    broken = broken.replace("</channel></rss>", "")
    feed = parse(broken)
    assert [entry.title for entry in feed.entries] == ["Unclosed & broken"]
    assert feed.warning


def test_missing_content_type_is_not_a_warning() -> None:
    assert parse(RSS.format(items=ITEM)).warning is None


def seed_titles() -> list[str]:
    """The article titles of the seed front page: lines followed by a blank line and a summary."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    return [
        line
        for index, line in enumerate(lines[:-2])
        if line and not lines[index + 1] and lines[index + 2] and not line.endswith((".", "]"))
    ]


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir()))
def test_bundled_samples_parse_with_images_and_dates(sample: str) -> None:
    path = SAMPLES / sample
    feed = parse_document(path.read_bytes(), url=f"https://samples.test/{sample}", source="s")
    assert len(feed.entries) >= 3
    for entry in feed.entries:
        assert entry.title and entry.link and (entry.published or entry.updated)
    assert any(entry.image and entry.image.caption for entry in feed.entries) or sample.endswith(
        ".json"
    )


def test_bundled_samples_carry_every_seed_article() -> None:
    if not SEED.is_file():
        pytest.skip(f"seed front page not found at {SEED} (../shared is absent)")
    titles = set()
    for path in SAMPLES.iterdir():
        feed = parse_document(path.read_bytes(), url="https://samples.test/x", source="s")
        titles |= {re.sub(r"\s+", " ", entry.title) for entry in feed.entries}
    missing = [title for title in seed_titles() if title not in titles]
    assert not missing


@pytest.mark.corpus
def test_every_corpus_document_parses_or_fails_with_a_parse_error(corpus_dir: Path) -> None:
    rows = (corpus_dir / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]
    parsed = failed = 0
    unreadable_feeds = []
    for row in rows:
        path, fmt, *_rest = row.split("\t")
        if fmt == "opml":
            continue
        data = (corpus_dir / path).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        try:
            feed = parse_document(data, url=f"https://corpus.test/{path}", source="c")
        except ParseError:
            failed += 1
            if fmt in ("rss20", "atom10", "jsonfeed") and "/real/" in f"/{path}":
                unreadable_feeds.append(path)
            continue
        parsed += 1
        for entry in feed.entries:
            assert entry.link is None or entry.link.startswith(("http://", "https://"))
            assert entry.published is None or entry.published.tzinfo is UTC
            assert "<script" not in entry.content.lower() and "<script" not in entry.summary
    assert not unreadable_feeds
    assert parsed > 0.9 * (parsed + failed), (parsed, failed)


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_lone_content_is_the_content_and_not_also_the_summary(fast_path: bool) -> None:
    # Both parsers copy a lone content into the summary; it is sanitised once, and the
    # summary that only repeats it is dropped.
    body = RSS.format(
        items="<item><guid>g</guid><content:encoded>&lt;p onclick='x()'&gt;Body "
        "&lt;a href='/a'&gt;link&lt;/a&gt;&lt;/p&gt;</content:encoded></item>"
    ).encode()
    (entry,) = parse_document(body, url=URL, fast_path=fast_path).entries
    assert entry.summary == ""
    assert entry.content == (
        '<p>Body <a href="https://example.com/a" rel="noopener noreferrer">link</a></p>'
    )
