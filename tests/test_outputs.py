"""Which stories an output feed publishes: `admits` and `select` over hand-built feeds.

`output_feeds(config)` needs a `Config` and is tested with the configuration module.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.filters import parse_query
from aggregator.model import StoredEntry, Story
from aggregator.outputs import DEFAULT_LIMIT, OutputFeed, admits, explain, review, select

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def make_copy(source: str, title: str = "", tags: tuple[str, ...] = ()) -> StoredEntry:
    return StoredEntry(
        source=source,
        source_title=source.title(),
        source_url=f"https://{source}.example/feed",
        source_link=f"https://{source}.example/",
        guid=None,
        link=f"https://{source}.example/{title.replace(' ', '-')}",
        title=title,
        summary="",
        content="",
        author=None,
        published=None,
        updated=None,
        first_seen=NOW,
        tags=tags,
    )


def make_story(*copies: StoredEntry, age: timedelta = timedelta(0), uid: str = "") -> Story:
    return Story(
        uid=uid or f"urn:uuid:{copies[0].source}-{copies[0].title}",
        sort_time=NOW - age,
        face=copies[0],
        copies=copies,
    )


def make_feed(**fields: Any) -> OutputFeed:
    values: dict[str, Any] = {"name": "world", "title": "World", "sources": frozenset({"a", "b"})}
    for key in ("include", "exclude"):
        if key in fields:
            fields[key] = tuple(parse_query(q) for q in fields[key])
    values.update(fields)
    return OutputFeed(**values)


ADMITS_CASES: list[
    tuple[str, dict[str, Any], list[tuple[str, str, tuple[str, ...]]], str, bool]
] = [
    ("candidate source", {}, [("a", "Anything", ())], "", True),
    ("source outside the feed", {}, [("c", "Anything", ())], "", False),
    ("one copy from a candidate", {}, [("c", "X", ()), ("b", "X", ())], "", True),
    ("no sources at all", {"sources": frozenset()}, [("a", "X", ())], "", False),
    ("include matches", {"include": ["Iran"]}, [("a", "Iran talks", ())], "", True),
    ("include misses", {"include": ["Iran"]}, [("a", "Iraq talks", ())], "", False),
    ("any include admits", {"include": ["Iran", "Gaza"]}, [("a", "Gaza", ())], "", True),
    (
        "include on another copy",
        {"include": ["Iran"]},
        [("a", "Talks", ()), ("c", "Iran talks", ())],
        "",
        True,
    ),
    (
        "include query needs one copy to match all its terms",
        {"include": ["title:Iran -tag:sport"]},
        [("a", "Iran", ("sport",)), ("b", "Talks", ())],
        "",
        False,
    ),
    (
        "include query with negation admits",
        {"include": ["title:Iran -tag:sport"]},
        [("a", "Iran", ("world",))],
        "",
        True,
    ),
    ("exclude rejects", {"exclude": ['"Help Wanted"']}, [("a", "Help wanted", ())], "", False),
    ("exclude misses", {"exclude": ['"Help Wanted"']}, [("a", "Help", ())], "", True),
    (
        "exclude on any copy rejects",
        {"exclude": ["tag:sport"]},
        [("a", "Match", ()), ("b", "Match", ("sport",))],
        "",
        False,
    ),
    (
        "exclude wins over include",
        {"include": ["Iran"], "exclude": ["tag:sport"]},
        [("a", "Iran", ("sport",))],
        "",
        False,
    ),
    ("extra query matches", {}, [("a", "Iran talks", ())], "Iran", True),
    ("extra query misses", {}, [("a", "Iraq talks", ())], "Iran", False),
    (
        "extra is ANDed with include",
        {"include": ["Iran"]},
        [("a", "Iran talks", ())],
        "Gaza",
        False,
    ),
    ("extra cannot admit a foreign source", {}, [("c", "Iran", ())], "Iran", False),
]


@pytest.mark.parametrize(
    ("case", "feed_fields", "copies", "extra", "expected"),
    ADMITS_CASES,
    ids=[case[0] for case in ADMITS_CASES],
)
def test_admits(
    case: str,
    feed_fields: dict[str, Any],
    copies: list[tuple[str, str, tuple[str, ...]]],
    extra: str,
    expected: bool,
) -> None:
    story = make_story(*(make_copy(source, title, tags) for source, title, tags in copies))
    extra_query = parse_query(extra) if extra else None
    assert admits(make_feed(**feed_fields), story, extra_query) is expected


def numbered_stories(count: int, source: str = "a") -> list[Story]:
    """`count` stories one hour apart, newest first."""
    return [
        make_story(make_copy(source, f"story {n}"), age=timedelta(hours=n)) for n in range(count)
    ]


def test_select_keeps_candidate_order_and_skips_rejected_stories() -> None:
    stories = numbered_stories(5)
    foreign = make_story(make_copy("c", "foreign"), age=timedelta(minutes=30))
    candidates = [stories[0], foreign, *stories[1:]]
    assert select(make_feed(), candidates, now=NOW) == stories


def test_select_applies_the_feed_filters() -> None:
    wanted = make_story(make_copy("a", "Iran talks"), age=timedelta(hours=1))
    unwanted = make_story(make_copy("a", "Budget"), age=timedelta(hours=2))
    feed = make_feed(include=["Iran"])
    assert select(feed, [wanted, unwanted], now=NOW) == [wanted]


@pytest.mark.parametrize(
    ("feed_limit", "limit", "available", "expected"),
    [
        (DEFAULT_LIMIT, None, 60, DEFAULT_LIMIT),
        (3, None, 10, 3),
        (3, None, 2, 2),
        (3, 5, 10, 5),
        (10, 1, 10, 1),
        (3, 0, 10, 0),
    ],
)
def test_select_stops_at_the_limit(
    feed_limit: int, limit: int | None, available: int, expected: int
) -> None:
    stories = numbered_stories(available)
    chosen = select(make_feed(limit=feed_limit), stories, now=NOW, limit=limit)
    assert chosen == stories[:expected]


def test_select_limit_counts_published_stories_not_candidates() -> None:
    foreign = [make_story(make_copy("c", f"foreign {n}")) for n in range(5)]
    ours = numbered_stories(3)
    assert select(make_feed(limit=2), [*foreign, *ours], now=NOW) == ours[:2]


def test_select_drops_stories_older_than_max_age() -> None:
    stories = numbered_stories(48)
    chosen = select(make_feed(max_age=timedelta(hours=24)), stories, now=NOW)
    assert chosen == stories[:25]  # 0 … 24 hours old: the 24-hour-old one is on the line


def test_select_stops_at_the_first_story_past_max_age() -> None:
    # Candidates come newest first, so the first too-old one ends the scan; a newer story
    # behind it would be a store bug, and is not looked at.
    fresh, stale, misplaced = (
        make_story(make_copy("a", "fresh"), age=timedelta(hours=1)),
        make_story(make_copy("a", "stale"), age=timedelta(days=3)),
        make_story(make_copy("a", "misplaced"), age=timedelta(hours=2)),
    )
    feed = make_feed(max_age=timedelta(days=2))
    assert select(feed, iter([fresh, stale, misplaced]), now=NOW) == [fresh]


def test_select_without_max_age_keeps_old_stories() -> None:
    old = make_story(make_copy("a", "old"), age=timedelta(days=3650))
    assert select(make_feed(), [old], now=NOW) == [old]


def test_select_extra_query_narrows_the_feed() -> None:
    iran = make_story(make_copy("a", "Iran talks"), age=timedelta(hours=1))
    gaza = make_story(make_copy("a", "Gaza ceasefire"), age=timedelta(hours=2))
    assert select(make_feed(), [iran, gaza], now=NOW, extra=parse_query("Gaza")) == [gaza]


EXPLAIN_CASES: list[
    tuple[str, dict[str, Any], list[tuple[str, str, tuple[str, ...]]], str, str]
] = [
    ("no include", {}, [("a", "Anything", ())], "", "admitted: the feed has no include queries"),
    ("foreign", {}, [("c", "X", ())], "", "rejected: no copy from the feed's sources"),
    (
        "include names the copy that matched",
        {"include": ["Gaza", "Iran"]},
        [("a", "Talks", ()), ("c", "Iran talks", ())],
        "",
        "admitted by include Iran (copy from c)",
    ),
    (
        "no include matches",
        {"include": ["Gaza"]},
        [("a", "Iran", ())],
        "",
        "rejected: no include query matches any copy",
    ),
    (
        "exclude names query and copy",
        {"include": ["Iran"], "exclude": ["tag:sport"]},
        [("a", "Iran", ()), ("b", "Iran", ("sport",))],
        "",
        "rejected by exclude tag:sport (copy from b)",
    ),
    ("extra", {}, [("a", "Iran", ())], "Gaza", "rejected: q=Gaza matches no copy"),
]


@pytest.mark.parametrize(
    ("case", "feed_fields", "copies", "extra", "said"),
    EXPLAIN_CASES,
    ids=[case[0] for case in EXPLAIN_CASES],
)
def test_explain_says_which_rule_and_query_decided(
    case: str,
    feed_fields: dict[str, Any],
    copies: list[tuple[str, str, tuple[str, ...]]],
    extra: str,
    said: str,
) -> None:
    story = make_story(*(make_copy(source, title, tags) for source, title, tags in copies))
    feed = make_feed(**feed_fields)
    extra_query = parse_query(extra) if extra else None
    verdict = explain(feed, story, extra_query)
    assert str(verdict) == said
    assert verdict.admitted is admits(feed, story, extra_query)


@pytest.mark.parametrize("case", ADMITS_CASES, ids=[case[0] for case in ADMITS_CASES])
def test_explain_agrees_with_admits(case: Any) -> None:
    _, feed_fields, copies, extra, expected = case
    story = make_story(*(make_copy(source, title, tags) for source, title, tags in copies))
    extra_query = parse_query(extra) if extra else None
    assert explain(make_feed(**feed_fields), story, extra_query).admitted is expected


def test_review_lists_what_select_passed_over_until_the_limit() -> None:
    wanted = [make_story(make_copy("a", f"Iran {n}"), age=timedelta(hours=n)) for n in (1, 3, 5)]
    unwanted = [make_story(make_copy("a", f"Budget {n}"), age=timedelta(hours=n)) for n in (2, 4)]
    candidates = sorted([*wanted, *unwanted], key=lambda s: s.sort_time, reverse=True)
    feed = make_feed(include=["Iran"], limit=2)
    reviewed = review(feed, candidates, now=NOW)
    assert [(s.face.title, v.admitted) for s, v in reviewed] == [
        ("Iran 1", True),
        ("Budget 2", False),
        ("Iran 3", True),
    ]
    assert select(feed, candidates, now=NOW) == [s for s, v in reviewed if v.admitted]
