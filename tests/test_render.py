"""Output feeds as readers receive them: valid Atom, RSS, JSON Feed and OPML, stable bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest
from lxml import etree

from aggregator import __version__
from aggregator.model import Enclosure, Image, StoredEntry, Story
from aggregator.outputs import OutputFeed
from aggregator.render import (
    RENDERERS,
    FeedContext,
    render_atom,
    render_json,
    render_opml,
    render_rss,
)

ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"
BASE = "http://127.0.0.1:8080"
NOW = datetime(2021, 6, 10, 12, 0, tzinfo=UTC)
CTX = FeedContext(base_url=BASE, now=NOW)
FEED = OutputFeed(
    name="middle-east",
    title="Middle East",
    sources=frozenset({"marxist", "socialist-appeal"}),
    description="Stories about Israel, Gaza and Iran",
)
FORMATS = ["atom", "rss", "json"]
STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
# Every kind of character XML 1.0 forbids: C0 controls, lone surrogates, U+FFFE/U+FFFF.
FORBIDDEN = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"]
HOSTILE = "".join(FORBIDDEN)


def copy_of(
    source: str = "marxist",
    *,
    title: str = "Tiananmen: a Marxist Reading Guide",
    link: str | None = "https://www.marxist.com/tiananmen-a-marxist-reading-guide.htm",
    published: datetime | None = datetime(2021, 6, 4, 9, 30, tzinfo=UTC),
    **overrides: Any,
) -> StoredEntry:
    """One stored copy of a seed article; any field can be overridden."""
    fields: dict[str, Any] = {
        "source": source,
        "source_title": "In Defence of Marxism" if source == "marxist" else "Socialist Appeal",
        "source_url": f"https://{source}.example/index.rss",
        "source_link": f"https://{source}.example/",
        "guid": link,
        "link": link,
        "title": title,
        "summary": (
            "<p>June 4th is the anniversary of the crushing of the 1989 Tiananmen Square "
            "movement. We publish a reading guide on these events, as both the western media "
            "and the Chinese regime actively hide what happened.</p>"
        ),
        "content": "",
        "author": "Daniel Morley",
        "published": published,
        "updated": None,
        "first_seen": datetime(2021, 6, 4, 10, 0, tzinfo=UTC),
        "tags": ("China",),
        "enclosures": (),
        "image": Image(
            url="https://www.marxist.com/images/tiananmen.jpg",
            caption="Archivo:Tiananmen Square, Beijing, China 1988 (1).jpg",
        ),
    }
    fields.update(overrides)
    return StoredEntry(**fields)


def story(uid: str, *copies: StoredEntry) -> Story:
    face = copies[0]
    return Story(
        uid=uid,
        sort_time=face.published or face.first_seen,
        face=face,
        copies=copies,
    )


NETANYAHU = story(
    "urn:uuid:00000000-0000-5000-8000-000000000001",
    copy_of(
        title="After Netanyahu’s War: a United Palestinian Movement Emerges",
        link="https://www.marxist.com/after-netanyahu-s-war.htm",
        published=datetime(2021, 6, 5, 8, 0, tzinfo=UTC),
        updated=datetime(2021, 6, 6, 7, 0, tzinfo=UTC),
        summary="<p>After eleven days of the ruthless bombardment of Gaza—which has killed "
        "more than 240 Palestinians—Israel has finally agreed to a ceasefire. The […]</p>",
        content="<p>After eleven days of the ruthless bombardment of Gaza.</p>"
        '<p><img src="https://www.marxist.com/images/gaza.jpg" alt="Gaza"></p>',
        tags=("Israel", "Palestine"),
        image=Image(url="https://www.marxist.com/images/gaza.jpg", caption="Gaza"),
    ),
    copy_of(
        "socialist-appeal",
        title="After Netanyahu's War: a United Palestinian Movement Emerges",
        link="https://socialist-appeal.example/after-netanyahus-war",
        published=datetime(2021, 6, 5, 9, 0, tzinfo=UTC),
        tags=("palestine", "Middle East"),
    ),
)
DOCKWORKERS = story(
    "urn:uuid:00000000-0000-5000-8000-000000000002",
    copy_of(
        title="Dockworkers in South Africa Protest Offloading of Israeli ship: "
        "“An Injury to One is the Concern of All”",
        link="https://www.marxist.com/dockworkers-in-south-africa.htm",
        published=datetime(2021, 6, 4, 12, 0, tzinfo=UTC),
        summary="<p>Dockworkers in South Africa have refused to handle cargo from an "
        "Israeli ship, in protest against Israel’s bombardment of the besieged Gaza strip.</p>",
        author=None,
        enclosures=(
            Enclosure("https://www.marxist.com/audio/dockworkers.mp3", "audio/mpeg", 3_145_728),
            Enclosure("https://www.marxist.com/docs/statement.pdf", None, None),
        ),
        image=Image(
            url="https://www.marxist.com/images/durban.jpg",
            caption="Durban Dockworkers in South Africa respond to Palestine",
        ),
    ),
)
TIANANMEN = story("urn:uuid:00000000-0000-5000-8000-000000000003", copy_of())
SEED = (NETANYAHU, DOCKWORKERS, TIANANMEN)  # newest first, as `outputs.select` returns them

HOSTILE_STORY = story(
    "urn:uuid:00000000-0000-5000-8000-000000000004",
    copy_of(
        title=f"Iran{HOSTILE}: For an Independent Labor Movement!",
        summary=f"<p>In Iran{HOSTILE}, protests and strikes are now spreading […]</p>",
        content=f"<p>Strikes{HOSTILE} everywhere.</p>",
        author=f"Hamid{HOSTILE} Alizadeh",
        tags=(f"Iran{HOSTILE}", f"{HOSTILE}"),
        image=Image(url="https://www.marxist.com/images/iran.jpg", caption=f"Tehran{HOSTILE}"),
        source_title=f"In Defence{HOSTILE} of Marxism",
    ),
)


def render(fmt: str, stories: tuple[Story, ...] = SEED, ctx: FeedContext = CTX) -> bytes:
    renderer, _content_type = RENDERERS[fmt]
    return renderer(FEED, stories, ctx)


def xml(body: bytes) -> Any:
    return etree.fromstring(body, STRICT)


def entry_ids(fmt: str, body: bytes) -> list[str]:
    if fmt == "json":
        return [item["id"] for item in json.loads(body)["items"]]
    if fmt == "atom":
        return [e.findtext(f"{ATOM}id") for e in xml(body).iter(f"{ATOM}entry")]
    return [item.findtext("guid") for item in xml(body).iter("item")]


def entry_titles(fmt: str, body: bytes) -> list[str]:
    if fmt == "json":
        return [item["title"] for item in json.loads(body)["items"]]
    if fmt == "atom":
        return [e.findtext(f"{ATOM}title") for e in xml(body).iter(f"{ATOM}entry")]
    return [item.findtext("title") for item in xml(body).iter("item")]


def entry_html(fmt: str, body: bytes) -> list[str]:
    """The full HTML text of each entry as a reader without extensions sees it."""
    if fmt == "json":
        return [item["content_html"] for item in json.loads(body)["items"]]
    if fmt == "atom":
        return [e.findtext(f"{ATOM}content") for e in xml(body).iter(f"{ATOM}entry")]
    encoded = "{http://purl.org/rss/1.0/modules/content/}encoded"
    return [i.findtext(encoded) or i.findtext("description") for i in xml(body).iter("item")]


def rfc4287_problems(root: Any) -> list[str]:
    """Where an Atom document breaks the MUSTs of RFC 4287 that a reader depends on."""
    problems: list[str] = []

    def exactly_one(element: Any, name: str, where: str) -> None:
        found = element.findall(f"{ATOM}{name}")
        if len(found) != 1:
            problems.append(f"{where}: {len(found)} <{name}>, need exactly one")
        elif name == "updated":
            try:
                datetime.fromisoformat(found[0].text.replace("Z", "+00:00"))
            except (AttributeError, ValueError):
                problems.append(f"{where}: <updated> {found[0].text!r} is not RFC 3339")
        elif not (found[0].text or "").strip():
            problems.append(f"{where}: empty <{name}>")

    def alternates_unique(element: Any, where: str) -> None:
        seen: set[tuple[str | None, str | None]] = set()
        for link in element.findall(f"{ATOM}link"):
            if link.get("href") is None:
                problems.append(f"{where}: <link> without href")
            if link.get("rel", "alternate") == "alternate":
                key = (link.get("type"), link.get("hreflang"))
                if key in seen:
                    problems.append(f"{where}: two alternate links of type {key}")
                seen.add(key)

    if root.tag != f"{ATOM}feed":
        return [f"root is {root.tag}, not atom:feed"]
    for name in ("id", "title", "updated"):
        exactly_one(root, name, "feed")
    alternates_unique(root, "feed")
    feed_has_author = root.find(f"{ATOM}author/{ATOM}name") is not None
    for index, entry in enumerate(root.findall(f"{ATOM}entry")):
        where = f"entry {index}"
        for name in ("id", "title", "updated"):
            exactly_one(entry, name, where)
        alternates_unique(entry, where)
        has_author = entry.find(f"{ATOM}author/{ATOM}name") is not None
        if not (feed_has_author or has_author):
            problems.append(f"{where}: no author on the entry or the feed")
        has_alternate = any(
            link.get("rel", "alternate") == "alternate" for link in entry.findall(f"{ATOM}link")
        )
        if entry.find(f"{ATOM}content") is None and not has_alternate:
            problems.append(f"{where}: neither <content> nor an alternate link")
        for content in entry.findall(f"{ATOM}content"):
            if content.get("type") not in (None, "text", "html", "xhtml"):
                problems.append(f"{where}: unexpected content type {content.get('type')}")
    return problems


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "stories",
    [SEED, (), (HOSTILE_STORY,), (*SEED, HOSTILE_STORY)],
    ids=["seed", "empty", "hostile", "seed-and-hostile"],
)
def test_every_format_parses_strictly(fmt: str, stories: tuple[Story, ...]) -> None:
    body = render(fmt, stories)
    if fmt == "json":
        assert json.loads(body.decode("utf-8", errors="strict"))["items"] is not None
    else:
        assert xml(body).tag in (f"{ATOM}feed", "rss")


@pytest.mark.parametrize("stories", [SEED, (), (HOSTILE_STORY,)], ids=["seed", "empty", "hostile"])
def test_atom_meets_rfc4287_required_elements(stories: tuple[Story, ...]) -> None:
    assert rfc4287_problems(xml(render_atom(FEED, stories, CTX))) == []


def test_rfc4287_helper_reports_missing_elements() -> None:
    broken = xml(
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        b"<entry><id>x</id><title>t</title></entry></feed>"
    )
    assert rfc4287_problems(broken) == [
        "feed: 0 <id>, need exactly one",
        "feed: 0 <updated>, need exactly one",
        "entry 0: 0 <updated>, need exactly one",
        "entry 0: no author on the entry or the feed",
        "entry 0: neither <content> nor an alternate link",
    ]


def test_atom_feed_head_names_itself_its_site_and_generator() -> None:
    root = xml(render_atom(FEED, SEED, CTX))
    assert root.findtext(f"{ATOM}id") == f"{BASE}/feeds/middle-east.atom"
    assert root.findtext(f"{ATOM}title") == "Middle East"
    assert root.findtext(f"{ATOM}subtitle") == FEED.description
    links = {link.get("rel"): link for link in root.findall(f"{ATOM}link")}
    assert links["self"].get("href") == f"{BASE}/feeds/middle-east.atom"
    assert links["self"].get("type") == "application/atom+xml"
    assert links["alternate"].get("href") == BASE
    generator = root.find(f"{ATOM}generator")
    assert (generator.text, generator.get("version")) == ("aggregator", __version__)
    # The newest change among the stories, not the wall clock.
    assert root.findtext(f"{ATOM}updated") == "2021-06-06T07:00:00+00:00"


def test_rss_channel_has_required_elements_and_self_link() -> None:
    channel = xml(render_rss(FEED, SEED, CTX)).find("channel")
    assert channel.findtext("title") == "Middle East"
    assert channel.findtext("link") == BASE
    assert channel.findtext("description") == FEED.description
    self_link = channel.find(f"{ATOM}link")
    assert self_link.get("rel") == "self"
    assert self_link.get("href") == f"{BASE}/feeds/middle-east.rss"
    assert self_link.get("type") == "application/rss+xml"
    assert channel.findtext("generator") == f"aggregator {__version__}"
    assert channel.findtext("lastBuildDate") == "Sun, 06 Jun 2021 07:00:00 +0000"
    for item in channel.iter("item"):
        assert item.find("guid").get("isPermaLink") == "false"


def test_json_feed_has_version_title_urls_and_item_ids() -> None:
    document = json.loads(render_json(FEED, SEED, CTX))
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert document["title"] == "Middle East"
    assert document["home_page_url"] == BASE
    assert document["feed_url"] == f"{BASE}/feeds/middle-east.json"
    assert document["description"] == FEED.description
    for item in document["items"]:
        assert item["id"] and item["content_html"] and item["date_published"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_entry_ids_are_story_uids_in_the_given_order(fmt: str) -> None:
    stories = (TIANANMEN, NETANYAHU, DOCKWORKERS)  # whatever order comes in is kept
    assert entry_ids(fmt, render(fmt, stories)) == [s.uid for s in stories]


@pytest.mark.parametrize("fmt", FORMATS)
def test_entry_ids_do_not_change_when_copies_arrive(fmt: str) -> None:
    late_copy = copy_of("socialist-appeal", published=datetime(2021, 6, 4, 9, 0, tzinfo=UTC))
    grown = replace(TIANANMEN, face=late_copy, copies=(late_copy, TIANANMEN.face))
    assert entry_ids(fmt, render(fmt, (grown,))) == entry_ids(fmt, render(fmt, (TIANANMEN,)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_titles_are_plain_text_with_curly_quotes_kept(fmt: str) -> None:
    assert entry_titles(fmt, render(fmt)) == [s.face.title for s in SEED]


@pytest.mark.parametrize("fmt", FORMATS)
def test_xml_forbidden_characters_are_removed_from_every_field(fmt: str) -> None:
    body = render(fmt, (HOSTILE_STORY,))
    text = body.decode("utf-8")
    if fmt == "json":
        text = json.dumps(json.loads(text), ensure_ascii=False)  # undo \u escapes
    assert [c for c in FORBIDDEN if c in text] == []
    assert entry_titles(fmt, body) == ["Iran: For an Independent Labor Movement!"]
    for expected in ("Hamid Alizadeh", "Strikes everywhere", "In Defence of Marxism", "Tehran"):
        assert expected in text


@pytest.mark.parametrize(
    ("fmt", "tags"),
    [
        ("atom", lambda b: [[c.get("term") for c in e.iter(f"{ATOM}category")] for e in b]),
        ("rss", lambda b: [[c.text for c in e.iter("category")] for e in b]),
        ("json", lambda b: [item.get("tags", []) for item in b]),
    ],
)
def test_categories_are_the_union_of_every_copy(
    fmt: str, tags: Callable[[Any], list[list[str]]]
) -> None:
    body = render(fmt)
    entries = (
        json.loads(body)["items"]
        if fmt == "json"
        else list(xml(body).iter(f"{ATOM}entry" if fmt == "atom" else "item"))
    )
    assert tags(entries)[0] == ["Israel", "Palestine", "Middle East"]


def test_atom_carries_every_enclosure_as_an_enclosure_link() -> None:
    entry = xml(render_atom(FEED, (DOCKWORKERS,), CTX)).find(f"{ATOM}entry")
    enclosures = [
        (link.get("href"), link.get("type"), link.get("length"))
        for link in entry.findall(f"{ATOM}link")
        if link.get("rel") == "enclosure"
    ]
    assert enclosures == [
        ("https://www.marxist.com/audio/dockworkers.mp3", "audio/mpeg", "3145728"),
        ("https://www.marxist.com/docs/statement.pdf", None, None),
    ]


def test_rss_carries_the_first_enclosure_with_type_and_length() -> None:
    item = xml(render_rss(FEED, (DOCKWORKERS,), CTX)).find("channel/item")
    assert [dict(e.attrib) for e in item.findall("enclosure")] == [
        {
            "url": "https://www.marxist.com/audio/dockworkers.mp3",
            "length": "3145728",
            "type": "audio/mpeg",
        }
    ]


def test_json_attachments_carry_every_enclosure() -> None:
    item = json.loads(render_json(FEED, (DOCKWORKERS,), CTX))["items"][0]
    assert item["attachments"] == [
        {
            "url": "https://www.marxist.com/audio/dockworkers.mp3",
            "mime_type": "audio/mpeg",
            "size_in_bytes": 3145728,
        },
        {
            "url": "https://www.marxist.com/docs/statement.pdf",
            "mime_type": "application/octet-stream",
        },
    ]


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_image_is_media_content_with_its_caption(fmt: str) -> None:
    root = xml(render(fmt, (DOCKWORKERS,)))
    media = next(root.iter(f"{MEDIA}content"))
    assert media.get("url") == "https://www.marxist.com/images/durban.jpg"
    assert media.get("medium") == "image"
    assert media.findtext(f"{MEDIA}description") == (
        "Durban Dockworkers in South Africa respond to Palestine"
    )
    assert next(root.iter(f"{MEDIA}thumbnail")).get("url") == media.get("url")


@pytest.mark.parametrize("fmt", FORMATS)
def test_image_is_shown_in_the_html_for_readers_without_media_support(fmt: str) -> None:
    [html] = entry_html(fmt, render(fmt, (DOCKWORKERS,)))
    assert html.startswith(
        '<figure><img src="https://www.marxist.com/images/durban.jpg" '
        'alt="Durban Dockworkers in South Africa respond to Palestine">'
        "<figcaption>Durban Dockworkers in South Africa respond to Palestine</figcaption>"
        "</figure><p>Dockworkers in South Africa"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_second_image_when_the_html_already_shows_one(fmt: str) -> None:
    [html] = entry_html(fmt, render(fmt, (NETANYAHU,)))
    assert html.count("<img") == 1
    assert "<figure>" not in html


def test_json_item_names_its_image() -> None:
    item = json.loads(render_json(FEED, (DOCKWORKERS,), CTX))["items"][0]
    assert item["image"] == "https://www.marxist.com/images/durban.jpg"


def test_atom_source_names_the_feed_the_face_came_from() -> None:
    entry = xml(render_atom(FEED, (NETANYAHU,), CTX)).find(f"{ATOM}entry")
    source = entry.find(f"{ATOM}source")
    assert source.findtext(f"{ATOM}title") == "In Defence of Marxism"
    assert source.findtext(f"{ATOM}id") == "https://marxist.example/index.rss"
    links = {link.get("rel"): link.get("href") for link in source.findall(f"{ATOM}link")}
    assert links == {
        "self": "https://marxist.example/index.rss",
        "alternate": "https://marxist.example/",
    }


def test_rss_source_names_the_feed_the_face_came_from() -> None:
    source = xml(render_rss(FEED, (NETANYAHU,), CTX)).find("channel/item/source")
    assert (source.get("url"), source.text) == (
        "https://marxist.example/index.rss",
        "In Defence of Marxism",
    )


def test_rss_source_is_left_out_for_a_source_without_a_feed_url() -> None:
    local = story("urn:uuid:local", copy_of(source_url=None))
    assert xml(render_rss(FEED, (local,), CTX)).find("channel/item/source") is None


def test_json_source_extension_names_the_feed_the_face_came_from() -> None:
    item = json.loads(render_json(FEED, (NETANYAHU,), CTX))["items"][0]
    assert item["_source"] == {
        "title": "In Defence of Marxism",
        "feed_url": "https://marxist.example/index.rss",
        "home_page_url": "https://marxist.example/",
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_story_with_several_sources_says_who_else_published_it(fmt: str) -> None:
    [html] = entry_html(fmt, render(fmt, (NETANYAHU,)))
    assert html.endswith(
        '<p>Also published by: <a href="https://socialist-appeal.example/after-netanyahus-war">'
        "Socialist Appeal</a></p>"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_story_with_one_source_has_no_also_published_line(fmt: str) -> None:
    [html] = entry_html(fmt, render(fmt, (TIANANMEN,)))
    assert "Also published by" not in html


def test_atom_links_other_copies_as_related() -> None:
    entry = xml(render_atom(FEED, (NETANYAHU,), CTX)).find(f"{ATOM}entry")
    related = [
        (link.get("href"), link.get("title"))
        for link in entry.findall(f"{ATOM}link")
        if link.get("rel") == "related"
    ]
    assert related == [
        ("https://socialist-appeal.example/after-netanyahus-war", "Socialist Appeal")
    ]


def test_rss_links_other_copies_as_atom_related() -> None:
    item = xml(render_rss(FEED, (NETANYAHU,), CTX)).find("channel/item")
    related = [(link.get("href"), link.get("title")) for link in item.findall(f"{ATOM}link")]
    assert related == [
        ("https://socialist-appeal.example/after-netanyahus-war", "Socialist Appeal")
    ]
    assert item.find("source").text == NETANYAHU.face.source_title


@pytest.mark.parametrize("render_xml", [render_atom, render_rss])
def test_a_copy_link_that_is_not_a_web_url_gets_no_related_link(render_xml: Any) -> None:
    other = copy_of("socialist-appeal", link="javascript:alert(1)")
    document = render_xml(FEED, (story("urn:uuid:x", copy_of(), other),), CTX)
    assert b"javascript:" not in document


def test_json_also_published_by_extension_lists_other_copies() -> None:
    item = json.loads(render_json(FEED, (NETANYAHU,), CTX))["items"][0]
    assert item["_also_published_by"] == [
        {
            "title": "Socialist Appeal",
            "url": "https://socialist-appeal.example/after-netanyahus-war",
        }
    ]


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,x", "http://[::1"])
def test_a_copy_link_that_is_not_a_web_url_is_named_but_not_linked(link: str) -> None:
    other = copy_of("socialist-appeal", link=link)
    [html] = entry_html("atom", render_atom(FEED, (story("urn:uuid:x", copy_of(), other),), CTX))
    assert html.endswith("<p>Also published by: Socialist Appeal</p>")


@pytest.mark.parametrize(
    ("face", "published", "updated"),
    [
        (NETANYAHU.face, "2021-06-05T08:00:00+00:00", "2021-06-06T07:00:00+00:00"),
        (TIANANMEN.face, "2021-06-04T09:30:00+00:00", "2021-06-04T09:30:00+00:00"),
        (copy_of(published=None), "2021-06-04T10:00:00+00:00", "2021-06-04T10:00:00+00:00"),
    ],
    ids=["updated-copy", "published-only", "no-dates-uses-sort-time"],
)
def test_atom_entry_dates_come_from_the_face_else_the_sort_time(
    face: StoredEntry, published: str, updated: str
) -> None:
    entry = xml(render_atom(FEED, (story("urn:uuid:d", face),), CTX)).find(f"{ATOM}entry")
    assert (entry.findtext(f"{ATOM}published"), entry.findtext(f"{ATOM}updated")) == (
        published,
        updated,
    )


def test_atom_content_and_summary_are_html_when_both_exist() -> None:
    entry = xml(render_atom(FEED, (NETANYAHU,), CTX)).find(f"{ATOM}entry")
    assert entry.find(f"{ATOM}content").get("type") == "html"
    assert entry.find(f"{ATOM}summary").get("type") == "html"
    assert entry.findtext(f"{ATOM}summary").endswith("The […]</p>")
    assert entry.find(f"{ATOM}author/{ATOM}name").text == "Daniel Morley"


def test_atom_summary_is_left_out_when_it_already_is_the_content() -> None:
    entry = xml(render_atom(FEED, (TIANANMEN,), CTX)).find(f"{ATOM}entry")
    assert entry.find(f"{ATOM}summary") is None
    assert "June 4th is the anniversary" in entry.findtext(f"{ATOM}content")


def test_rss_item_has_summary_as_description_and_full_text_as_content_encoded() -> None:
    item = xml(render_rss(FEED, (NETANYAHU,), CTX)).find("channel/item")
    assert item.findtext("description").endswith("The […]</p>")
    assert "ruthless bombardment of Gaza.</p>" in item.findtext(
        "{http://purl.org/rss/1.0/modules/content/}encoded"
    )
    assert item.findtext("{http://purl.org/dc/elements/1.1/}creator") == "Daniel Morley"
    assert item.findtext("pubDate") == "Sat, 05 Jun 2021 08:00:00 +0000"


@pytest.mark.parametrize("fmt", FORMATS)
def test_untitled_entry_is_titled_by_its_first_words(fmt: str) -> None:
    untitled = story("urn:uuid:u", copy_of(title="  "))
    [title] = entry_titles(fmt, render(fmt, (untitled,)))
    assert title.startswith("June 4th is the anniversary of the crushing")
    assert title.endswith("…")


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_entry_still_has_content(fmt: str) -> None:
    bare = story("urn:uuid:b", copy_of(title="Help Wanted", summary="", image=None, link=None))
    assert entry_html(fmt, render(fmt, (bare,))) == ["<p>Help Wanted</p>"]


def test_empty_feed_is_updated_at_now() -> None:
    assert xml(render_atom(FEED, (), CTX)).findtext(f"{ATOM}updated") == NOW.isoformat()
    assert xml(render_rss(FEED, (), CTX)).findtext("channel/lastBuildDate") == (
        "Thu, 10 Jun 2021 12:00:00 +0000"
    )
    assert json.loads(render_json(FEED, (), CTX))["items"] == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_stories_render_to_identical_bytes(fmt: str) -> None:
    later = replace(CTX, now=NOW + timedelta(hours=3))
    assert render(fmt) == render(fmt)
    # With stories, the clock does not show: the ETag only changes when the content does.
    assert render(fmt, SEED, later) == render(fmt, SEED, CTX)


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_feedparser_reads_our_feed_back(fmt: str) -> None:
    parsed = feedparser.parse(render(fmt))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [e.title for e in parsed.entries] == [s.face.title for s in SEED]
    assert [e.link for e in parsed.entries] == [s.face.link for s in SEED]
    assert [e.id for e in parsed.entries] == [s.uid for s in SEED]
    assert parsed.entries[1].enclosures[0].href.endswith("dockworkers.mp3")


def test_opml_lists_every_feed_with_its_atom_url() -> None:
    world = OutputFeed(name="world", title="World & “Theory”", sources=frozenset({"marxist"}))
    root = xml(render_opml([FEED, world], CTX))
    assert root.get("version") == "2.0"
    assert root.findtext("head/title")
    outlines = [dict(o.attrib) for o in root.iter("outline")]
    assert outlines == [
        {
            "type": "rss",
            "text": "Middle East",
            "title": "Middle East",
            "xmlUrl": f"{BASE}/feeds/middle-east.atom",
            "htmlUrl": BASE,
            "description": FEED.description,
        },
        {
            "type": "rss",
            "text": "World & “Theory”",
            "title": "World & “Theory”",
            "xmlUrl": f"{BASE}/feeds/world.atom",
            "htmlUrl": BASE,
        },
    ]


def test_opml_is_deterministic() -> None:
    assert render_opml([FEED], CTX) == render_opml([FEED], replace(CTX, now=NOW + timedelta(1)))


@pytest.mark.parametrize(
    ("fmt", "renderer", "content_type"),
    [
        ("atom", render_atom, "application/atom+xml; charset=utf-8"),
        ("rss", render_rss, "application/rss+xml; charset=utf-8"),
        ("json", render_json, "application/feed+json; charset=utf-8"),
    ],
)
def test_renderers_table_pairs_each_format_with_its_media_type(
    fmt: str, renderer: Callable[..., bytes], content_type: str
) -> None:
    assert RENDERERS[fmt] == (renderer, content_type)
