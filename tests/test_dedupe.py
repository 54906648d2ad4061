"""Entry identity, change detection and story keys."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.dedupe import (
    canonical_url,
    entry_hash,
    entry_key,
    story_keys,
    story_uid,
    unique_entries,
)
from aggregator.model import Enclosure, Image, ParsedEntry

CANONICAL_CASES: list[tuple[str, str]] = [
    # scheme: http and https serve the same article
    ("http://example.com/a", "https://example.com/a"),
    ("HTTPS://example.com/a", "https://example.com/a"),
    # host: case, www., a trailing dot
    ("https://Example.COM/a", "https://example.com/a"),
    ("https://www.example.com/a", "https://example.com/a"),
    ("https://WWW.example.com./a", "https://example.com/a"),
    ("https://www2.example.com/a", "https://www2.example.com/a"),
    # default ports go, others stay
    ("http://example.com:80/a", "https://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    # IPv6 literals keep their brackets
    ("http://[2001:DB8::1]:8080/a", "https://[2001:db8::1]:8080/a"),
    ("https://[::1]/a", "https://[::1]/a"),
    # fragment, trailing slash, doubled slashes
    ("https://example.com/a#comments", "https://example.com/a"),
    ("https://example.com/a/", "https://example.com/a"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com/", "https://example.com/"),
    ("https://example.com//a///b", "https://example.com/a/b"),
    # path case is the site's business
    ("https://example.com/Article", "https://example.com/Article"),
    # tracking parameters removed, the rest kept and sorted
    ("https://example.com/a?utm_source=rss&utm_medium=feed", "https://example.com/a"),
    ("https://example.com/a?UTM_Campaign=x&id=3", "https://example.com/a?id=3"),
    ("https://example.com/a?fbclid=abc&p=1", "https://example.com/a?p=1"),
    ("https://example.com/a?gclid=abc", "https://example.com/a"),
    ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
    ("https://example.com/?p=123&utm_content=x", "https://example.com/?p=123"),
    ("https://example.com/a?q=", "https://example.com/a?q="),
    # surrounding whitespace
    ("  https://example.com/a \n", "https://example.com/a"),
    # not absolute http(s): left alone, only stripped
    ("mailto:editor@example.com", "mailto:editor@example.com"),
    ("ftp://Example.com/a/", "ftp://Example.com/a/"),
    ("/relative/path/", "/relative/path/"),
    ("example.com/a", "example.com/a"),
    ("urn:uuid:1234", "urn:uuid:1234"),
    ("tag:example.com,2024:1", "tag:example.com,2024:1"),
    # malformed: returned as given
    ("http://[::1/a", "http://[::1/a"),
    ("http://example.com:99999/a", "http://example.com:99999/a"),
    ("", ""),
]


@pytest.mark.parametrize(("url", "canonical"), CANONICAL_CASES)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@given(st.text(max_size=80) | st.from_regex(r"\Ahttps?://[\w.\[\]:@-]{0,20}[/?#&=%\w]{0,30}\Z"))
def test_canonical_url_never_raises_and_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


def make_parsed(**fields: Any) -> ParsedEntry:
    values: dict[str, Any] = {"guid": None, "link": None, "title": "A title"}
    values.update(fields)
    return ParsedEntry(**values)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"guid": "urn:x:1", "link": "https://e.com/a"}, "id:urn:x:1"),
        ({"guid": "https://e.com/a"}, "id:https://e.com/a"),
        ({"guid": None, "link": "https://e.com/a"}, "link:https://e.com/a"),
        ({"guid": "", "link": "https://e.com/a"}, "link:https://e.com/a"),
    ],
)
def test_entry_key_prefers_id_then_link(fields: dict[str, Any], key: str) -> None:
    assert entry_key(make_parsed(**fields)) == key


def test_entry_key_without_id_or_link_hashes_what_the_entry_says() -> None:
    key = entry_key(make_parsed(title="T", summary="S"))
    assert re.fullmatch(r"hash:[0-9a-f]{32}", key)
    assert entry_key(make_parsed(title="T", summary="S")) == key
    assert entry_key(make_parsed(title="T", summary="S2")) != key
    assert entry_key(make_parsed(title="T", summary="S", content="C")) != key


def test_id_that_looks_like_a_link_never_collides_with_that_link() -> None:
    url = "https://e.com/a"
    assert entry_key(make_parsed(guid=url)) != entry_key(make_parsed(link=url))


BASE = make_parsed(
    guid="g",
    link="https://e.com/a",
    title="Title",
    summary="<p>Summary</p>",
    content="<p>Content</p>",
    author="Author",
    published=datetime(2024, 5, 1, tzinfo=UTC),
    updated=datetime(2024, 5, 2, tzinfo=UTC),
    tags=("world",),
    enclosures=(Enclosure("https://e.com/a.mp3", "audio/mpeg", 10),),
    image=Image("https://e.com/a.jpg", "Caption"),
    orig_link="https://orig.com/a",
)

CHANGES: list[tuple[str, Any]] = [
    ("guid", "g2"),
    ("link", "https://e.com/b"),
    ("title", "Title!"),
    ("summary", "<p>Summary.</p>"),
    ("content", "<p>Content.</p>"),
    ("author", "Someone"),
    ("author", None),
    ("published", datetime(2024, 5, 1, 0, 1, tzinfo=UTC)),
    ("published", None),
    ("updated", datetime(2024, 5, 3, tzinfo=UTC)),
    ("tags", ("world", "theory")),
    ("tags", ()),
    ("enclosures", (Enclosure("https://e.com/a.mp3", "audio/mpeg", 11),)),
    ("enclosures", (Enclosure("https://e.com/a.ogg", "audio/mpeg", 10),)),
    ("enclosures", ()),
    ("image", Image("https://e.com/a.jpg", "Other caption")),
    ("image", Image("https://e.com/b.jpg", "Caption")),
    ("image", None),
    ("orig_link", "https://orig.com/b"),
]


@pytest.mark.parametrize(("field", "value"), CHANGES)
def test_entry_hash_changes_when_any_shown_field_changes(field: str, value: Any) -> None:
    assert entry_hash(dataclasses.replace(BASE, **{field: value})) != entry_hash(BASE)


def test_entry_hash_is_equal_for_equal_entries() -> None:
    assert entry_hash(dataclasses.replace(BASE)) == entry_hash(BASE)


@pytest.mark.parametrize(
    ("fields", "keys"),
    [
        ({"link": "http://www.e.com/a?utm_source=x"}, ("url:https://e.com/a",)),
        (
            {"link": "https://proxy.com/~r/a", "orig_link": "https://e.com/a"},
            ("url:https://e.com/a", "url:https://proxy.com/~r/a"),
        ),
        ({"link": "https://e.com/a", "orig_link": "http://e.com/a/"}, ("url:https://e.com/a",)),
        ({"link": "mailto:x@e.com"}, ()),
        ({"link": "/relative"}, ()),
        ({"link": None}, ()),
        # a guid that is a permalink is a way in too (WordPress's ?p=123 guids) …
        ({"guid": "https://e.com/a", "link": None}, ("url:https://e.com/a",)),
        (
            {"guid": "http://e.com/?p=123", "link": "https://e.com/2021/06/pretty/"},
            ("url:https://e.com/2021/06/pretty", "url:https://e.com/?p=123"),
        ),
        # … but not one naming a place in a page, nor ids that are not URLs
        ({"guid": "https://e.com/feed#item-3", "link": None}, ()),
        ({"guid": "urn:uuid:1234", "link": None}, ()),
        ({"guid": "tag:e.com,2021:1", "link": None}, ()),
        # a site's home page names no article
        ({"link": "https://www.e.com/"}, ()),
        ({"link": "https://e.com/?utm_source=rss"}, ()),
        # AMP and mobile editions, redirect wrappers
        ({"link": "https://amp.e.com/world/a"}, ("url:https://e.com/world/a",)),
        ({"link": "https://m.e.com/world/a?amp=1"}, ("url:https://e.com/world/a",)),
        (
            {"link": "https://www.google.com/url?q=https://e.com/a%3Futm_source%3Dx&sa=D"},
            ("url:https://e.com/a",),
        ),
    ],
)
def test_story_keys(fields: dict[str, Any], keys: tuple[str, ...]) -> None:
    assert story_keys(make_parsed(**fields)) == keys


def test_republished_copies_share_a_story_key() -> None:
    original = make_parsed(guid="1", link="https://www.marxist.com/x.htm")
    copy = make_parsed(guid="abc", link="http://marxist.com/x.htm/?utm_source=feed#top")
    assert set(story_keys(original)) & set(story_keys(copy))


def test_unique_entries_keeps_the_first_of_each_key_in_order() -> None:
    first = make_parsed(guid="1", title="first")
    second = make_parsed(guid="2", title="second")
    repeat = make_parsed(guid="1", title="repeat")
    by_link = make_parsed(link="https://e.com/a", title="by link")
    by_link_again = make_parsed(link="https://e.com/a", title="by link again")
    assert unique_entries([first, second, repeat, by_link, by_link_again]) == (
        first,
        second,
        by_link,
    )


def test_story_uid_is_an_urn_uuid_stable_per_source_and_key() -> None:
    uid = story_uid("marxist", "id:1")
    assert re.fullmatch(
        r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", uid
    )
    assert story_uid("marxist", "id:1") == uid
    assert story_uid("socialist", "id:1") != uid
    assert story_uid("marxist", "id:2") != uid
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert story_uid("ab", "c") != story_uid("a", "bc")


def test_story_uid_never_changes_across_releases() -> None:
    # Readers key their read/unread state on this id: a change to the namespace or the
    # recipe would republish every story as new. The literal is the contract.
    assert (
        story_uid("marxist", "id:https://www.marxist.com/?p=1")
        == "urn:uuid:5dd59a0b-ede8-5dfb-a0ac-2c9cf56b1b81"
    )
