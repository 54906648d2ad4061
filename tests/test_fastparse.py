"""The fast path reads every document it accepts exactly as feedparser does.

The differential tests parse each document twice, through `parse_document` (fast
path where it accepts) and `parse_with_feedparser` (never), and compare the
normalised feeds field by field. They run over the shared real-world corpus and a
generated benchmark corpus.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator import dedupe
from aggregator.fastparse import parse_fast
from aggregator.model import ParsedEntry, ParsedFeed
from aggregator.parse import ParseError, parse_document, parse_with_feedparser
from bench import gencorpus

# Fields of ParsedEntry / ParsedFeed allowed to differ between the paths, and why.
# Empty: over the shared corpus and the benchmark corpus no field differs. Where the
# fast path could not match feedparser it refuses the document instead; those
# features are the table below.
MAY_DIFFER: dict[str, str] = {}

# What makes the fast path hand a document to feedparser, and the difference it avoids.
REFUSED_BECAUSE = [
    ("not well-formed XML", "fastfeedparser/lxml recovery cut titles at entities, drop '&'"),
    ("a DOCTYPE", "entities it declares would be read differently"),
    ("an encoding other than UTF-8", "feedparser's Latin-1 repair applies to UTF-8 only"),
    ("a charset in Content-Type other than UTF-8, or text/xml without one", "RFC 3023 rules"),
    ("xml:base anywhere", "feedparser resolves links against it"),
    ("roots other than RSS 2.0, RSS 1.0, Atom 1.0", "version-specific rules (0.9x, Atom 0.3, CDF)"),
    ("XHTML, base64 or out-of-line text constructs", "feedparser re-serialises or decodes them"),
    ("a repeated title, link, summary, id, author or date", "its rules for repeats differ"),
    (
        "elements of feedparser namespaces not walked (iTunes, dcterms, media:title…)",
        "they map into title, summary, tags or dates",
    ),
]

FIELDS_OF_FEED = (
    "format",
    "title",
    "link",
    "description",
    "ttl_minutes",
    "update_period_minutes",
    "warning",
)


def _differences(fast: ParsedFeed, slow: ParsedFeed) -> list[str]:
    found = [
        f"feed.{name}: {getattr(fast, name)!r} != {getattr(slow, name)!r}"
        for name in FIELDS_OF_FEED
        if name not in MAY_DIFFER and getattr(fast, name) != getattr(slow, name)
    ]
    if len(fast.entries) != len(slow.entries):
        return [*found, f"entries: {len(fast.entries)} != {len(slow.entries)}"]
    for number, (a, b) in enumerate(zip(fast.entries, slow.entries, strict=True)):
        if dedupe.entry_key(a) != dedupe.entry_key(b):
            found.append(f"entry {number} key: {dedupe.entry_key(a)!r} != {dedupe.entry_key(b)!r}")
        for field in dataclasses.fields(ParsedEntry):
            mine, theirs = getattr(a, field.name), getattr(b, field.name)
            if field.name not in MAY_DIFFER and mine != theirs:
                found.append(f"entry {number} {field.name}: {mine!r} != {theirs!r}")
    # What the parser workers derive from the entries (key, content hash, strong keys,
    # fingerprint, candidate keys) is what the store matches and writes by.
    for number, (a, b) in enumerate(
        zip(dedupe.prepare(fast.entries), dedupe.prepare(slow.entries), strict=False)
    ):
        for name in ("key", "content_hash", "story_keys", "fingerprint", "candidate_keys"):
            if getattr(a, name) != getattr(b, name):
                found.append(f"entry {number} prepared {name}: differs")
    return found


def _compare(documents: list[tuple[str, bytes, str | None]]) -> tuple[int, int, list[str]]:
    """(documents the fast path took, their entries, every difference found)."""
    taken = entries = 0
    problems: list[str] = []
    for url, body, content_type in documents:
        if parse_fast(body, url=url, content_type=content_type, max_entries=1000) is None:
            continue
        taken += 1
        fast = parse_document(body, url=url, content_type=content_type)
        try:
            slow = parse_with_feedparser(body, url=url, content_type=content_type)
        except ParseError as error:
            problems.append(f"{url}: fast path read a document feedparser refuses: {error}")
            continue
        entries += len(fast.entries)
        problems += [f"{url}: {difference}" for difference in _differences(fast, slow)]
    return taken, entries, problems


@pytest.mark.corpus
def test_fast_path_matches_feedparser_on_the_shared_corpus(corpus_dir: Path) -> None:
    rows = (corpus_dir / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]
    documents = []
    for row in rows:
        path = row.split("\t")[0]
        documents.append((f"https://corpus.test/{path}", (corpus_dir / path).read_bytes(), None))
    taken, entries, problems = _compare(documents)
    print(f"fast path took {taken} of {len(documents)} documents, {entries} entries")
    assert taken > 0 and entries > 0
    assert problems == []


def test_fast_path_matches_feedparser_on_the_benchmark_corpus() -> None:
    corpus = gencorpus.generate(60, seed=7, now=datetime(2025, 3, 1, tzinfo=UTC))
    documents = []
    xml_documents = 0
    for feed in corpus.feeds:
        body = gencorpus.RENDERERS[feed.format](feed).encode()
        kind = {"rss": "application/rss+xml", "atom": "application/atom+xml"}.get(feed.format)
        xml_documents += kind is not None
        content_type = f"{kind}; charset=utf-8" if kind else "application/feed+json"
        documents.append((f"http://127.0.0.1:8765/feeds/{feed.filename}", body, content_type))
    taken, _, problems = _compare(documents)
    assert taken == xml_documents  # every generated RSS and Atom feed is well-formed UTF-8
    assert problems == []


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>T</title><link>https://example.org/</link>
{items}</channel></rss>"""


@pytest.mark.parametrize(
    ("item", "key"),
    [
        # feedparser resolves a permalink guid against the document's URL…
        ("<guid>123</guid><title>a</title>", "id:https://example.org/feed/123"),
        # …but not one marked isPermaLink="false"
        ('<guid isPermaLink="false">123</guid><title>a</title>', "id:123"),
        # no guid: the link is the identity, never an id made up from it
        (
            "<link>https://example.org/a?x=1&amp;y=2</link><title>a</title>",
            "link:https://example.org/a?x=1&y=2",
        ),
    ],
)
def test_entry_identity_is_the_same_on_both_paths(item: str, key: str) -> None:
    body = RSS.format(items=f"<item>{item}</item>").encode()
    url = "https://example.org/feed/rss"
    assert parse_fast(body, url=url, content_type=None, max_entries=10) is not None
    fast = parse_document(body, url=url)
    slow = parse_with_feedparser(body, url=url)
    assert [dedupe.entry_key(e) for e in fast.entries] == [key]
    assert [dedupe.entry_key(e) for e in slow.entries] == [key]


@pytest.mark.parametrize(
    "item",
    [
        # Titles that do and do not look like HTML to feedparser, with "<" or "&" and without.
        "<title>a &lt;b&gt;bold&lt;/b&gt; move</title><link>https://example.org/a</link>",
        "<title>fish &amp;amp; chips, AT&amp;T</title><link>https://example.org/a</link>",
        "<title>plain words</title><link>https://example.org/a</link>",
        # UTF-8 read as Latin-1, and C1 controls: the repairs of every text.
        "<title>caf\u00c3\u00a9 \u0080 Krak\u00f3w</title><link>https://example.org/a</link>",
        # Elements of an unknown namespace, with and without a prefix feedparser knows.
        '<x:y xmlns:x="https://x.example/">v</x:y><title>t</title><link>/a</link>',
        # URLs the join changes, and one it cannot.
        "<link>HTTP://example.org/a?</link><guid>https://example.org/g#</guid>",
        "<link>https://example.org/a;p?q=1#f</link><guid>//example.org/g</guid>",
    ],
)
def test_small_documents_read_the_same_on_both_paths(item: str) -> None:
    body = RSS.format(items=f"<item>{item}</item>").encode()
    url = "https://example.org/feed/rss"
    assert parse_fast(body, url=url, content_type=None, max_entries=10) is not None
    assert parse_document(body, url=url) == parse_with_feedparser(body, url=url)


def test_html_entity_in_title_makes_the_document_take_feedparser_and_keeps_the_title() -> None:
    # &rsquo; is HTML, not XML: the document is not well-formed.
    body = RSS.format(
        items="<item><title>It&rsquo;s complicated</title>"
        "<link>https://example.org/a?x=1&y=2</link></item>"
    ).encode()
    assert parse_fast(body, url="https://example.org/f", content_type=None, max_entries=10) is None
    entry = parse_document(body, url="https://example.org/f").entries[0]
    assert entry.title == "It’s complicated"
    assert entry.link == "https://example.org/a?x=1&y=2"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (RSS.format(items="<item><title>a</title></item>").replace("utf-8", "iso-8859-1"), None),
        (RSS.format(items="<item><title>a</title></item>"), "text/xml"),
        (RSS.format(items="<item><title>a</title></item>"), "text/html; charset=utf-8"),
        (
            RSS.format(items="<item><title>a</title></item>").replace(
                "<rss", "<!DOCTYPE rss>\n<rss"
            ),
            None,
        ),
        (RSS.format(items='<item xml:base="https://b.example/"><link>x</link></item>'), None),
        (RSS.format(items="<item><title>a</title><title>b</title></item>"), None),
        (
            RSS.format(
                items='<item xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
                "<itunes:summary>s</itunes:summary></item>"
            ),
            None,
        ),
        (
            '<feed xmlns="http://www.w3.org/2005/Atom"><entry><title type="xhtml">'
            '<div xmlns="http://www.w3.org/1999/xhtml">a</div></title></entry></feed>',
            None,
        ),
    ],
    ids=[
        "latin-1",
        "text-xml-no-charset",
        "html-content-type",
        "doctype",
        "xml-base",
        "two-titles",
        "itunes-summary",
        "xhtml-title",
    ],
)
def test_documents_the_fast_path_cannot_vouch_for_are_refused(
    body: str, content_type: str | None
) -> None:
    assert (
        parse_fast(
            body.encode("latin-1"),
            url="https://example.org/f",
            content_type=content_type,
            max_entries=10,
        )
        is None
    )
