"""The pipeline's values cross process boundaries by pickle: what comes out is what went in."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.model import pickled_by_fields
from aggregator.prepare import parse_and_prepare

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>
<title>Front page</title><link>https://news.example/</link><ttl>30</ttl>
<item><guid>a-1</guid><title>It&#8217;s complicated</title>
<link>https://news.example/a?x=1&amp;y=2</link>
<description>&lt;p&gt;In Iran, protests and strikes are now spreading across every
sector of the economy, from oil fields to bazaars, after weeks of unrest that began
with a currency collapse and has since drawn in teachers and truckers [&#8230;]&lt;/p&gt;
</description>
<category>World</category><category>Iran</category>
<enclosure url="https://news.example/a.mp3" type="audio/mpeg" length="123"/>
<media:content url="https://news.example/a.jpg" medium="image">
<media:description>A bazaar in Tehran</media:description></media:content>
<pubDate>Tue, 01 Dec 2026 10:00:00 GMT</pubDate></item>
<item><title>No text</title><link>https://news.example/b</link></item>
</channel></rss>"""


def test_a_prepared_document_comes_back_equal_and_sharing_its_entries() -> None:
    prepared = parse_and_prepare(FEED, url="https://news.example/feed", source="front")
    first = prepared.entries[0]
    assert first.entry.enclosures and first.entry.image and first.fingerprint.signature
    copy = pickle.loads(pickle.dumps(prepared))
    assert copy == prepared
    # The document's entries and the prepared entries are one set of objects, both
    # sides of the pipe: pickled once, not twice.
    assert all(
        mine is theirs.entry for mine, theirs in zip(copy.feed.entries, copy.entries, strict=True)
    )


def test_every_document_of_the_corpus_round_trips(corpus_dir: Path) -> None:
    compared = 0
    for path in sorted(corpus_dir.rglob("*")):
        if not path.is_file() or path.suffix not in {".xml", ".rss", ".atom", ".json"}:
            continue
        try:
            prepared = parse_and_prepare(path.read_bytes(), url="https://corpus.example/")
        except Exception:
            continue  # what a parser refuses is the parse tests' business
        assert pickle.loads(pickle.dumps(prepared)) == prepared, path
        compared += 1
    assert compared > 100


def test_only_classes_whose_constructor_takes_every_field_as_is() -> None:
    with pytest.raises(TypeError, match="Derived"):

        @pickled_by_fields
        @dataclass(frozen=True, slots=True)
        class Derived:
            value: int
            double: int = field(init=False)

    with pytest.raises(TypeError, match="Named"):

        @pickled_by_fields
        @dataclass(frozen=True, slots=True, kw_only=True)
        class Named:
            value: int

    with pytest.raises(TypeError, match="Checked"):

        @pickled_by_fields
        @dataclass(frozen=True, slots=True)
        class Checked:
            value: int

            def __post_init__(self) -> None:
                assert self.value >= 0


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class _One:
    when: datetime


def test_a_class_of_one_field() -> None:
    value = _One(datetime(2026, 12, 1, tzinfo=UTC))
    assert pickle.loads(pickle.dumps(value)) == value
