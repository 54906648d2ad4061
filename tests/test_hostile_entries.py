"""Hostile entries: whatever a source's items contain, outputs stay safe and valid.

Three layers, each a table: the sanitiser alone (what must go, what must stay),
the parser on documents built to hurt (huge titles, 50,000 entries, duplicate
ids, missing ids and dates, dates out of range, relative links), and the whole
pipeline — a real server, a real poll into SQLite, every output rendered and
parsed back strictly (Atom against RFC 4287's required elements).
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedserver import FeedServer
from outputcheck import assert_outputs_valid

from aggregator.config import load_config
from aggregator.parse import MAX_TITLE_CHARS, parse_document
from aggregator.poll import run_pass
from aggregator.sanitize import sanitize_html
from aggregator.store import Store

BASE = "http://feed.example/news/"

# (case, hostile HTML, substrings that must be gone, substrings that must stay)
SANITIZE_CASES = [
    ("script", "<p>a</p><script>alert(1)</script>", ["<script", "alert(1)"], ["<p>a</p>"]),
    ("script_in_caps", "<SCRIPT SRC=//evil/x.js></SCRIPT>b", ["script", "evil"], ["b"]),
    ("style_element", "<style>body{display:none}</style>c", ["<style", "display"], ["c"]),
    (
        "style_attribute",
        '<p style="background:url(javascript:x)">d</p>',
        ["style", "javascript"],
        ["<p>d</p>"],
    ),
    (
        "event_handler",
        '<img src="i.jpg" onerror="alert(1)">',
        ["onerror", "alert"],
        [f'src="{BASE}i.jpg"'],
    ),
    (
        "onclick",
        '<a href="/x" onclick="steal()">e</a>',
        ["onclick", "steal"],
        ['href="http://feed.example/x"'],
    ),
    ("javascript_link", '<a href="javascript:alert(1)">f</a>', ["javascript", "alert"], [">f</a>"]),
    (
        "javascript_mixed_case",
        '<a href="JaVaScRiPt:alert(1)">g</a>',
        ["script", "alert"],
        [">g</a>"],
    ),
    (
        "javascript_with_tab",
        '<a href="java&#x09;script:alert(1)">h</a>',
        ["script", "alert"],
        [">h</a>"],
    ),
    (
        "javascript_leading_space",
        '<a href=" javascript:alert(1)">i</a>',
        ["javascript"],
        [">i</a>"],
    ),
    ("vbscript_link", '<a href="vbscript:msgbox(1)">j</a>', ["vbscript"], [">j</a>"]),
    ("data_link", '<a href="data:text/html;base64,PHNjcmlwdD4=">k</a>', ["data:"], [">k</a>"]),
    ("data_image", '<img src="data:image/svg+xml;base64,PHN2Zz4=">', ["data:"], []),
    (
        "javascript_cite",
        '<blockquote cite="javascript:x">l</blockquote>',
        ["javascript"],
        ["l</blockquote>"],
    ),
    (
        "form",
        '<form action="http://evil/"><input name="p"><button>go</button></form>m',
        ["<form", "<input", "<button", "evil"],
        ["m"],
    ),
    (
        "textarea_select",
        "<textarea>t</textarea><select><option>o</option></select>n",
        ["<textarea", "<select", "<option"],
        ["n"],
    ),
    ("iframe", '<iframe src="http://evil/">inner</iframe>o', ["iframe", "evil", "inner"], ["o"]),
    ("frameset", '<frameset><frame src="http://evil/"></frameset>p', ["frame", "evil"], []),
    (
        "object_embed",
        '<object data="x.swf"></object><embed src="y.swf">q',
        ["object", "embed", "swf"],
        ["q"],
    ),
    (
        "svg_onload",
        '<svg onload="alert(1)"><circle r="1"/></svg>r',
        ["svg", "onload", "alert"],
        ["r"],
    ),
    ("mutation_xss", "<svg><p><style><img src=x onerror=alert(1)>", ["onerror", "alert"], []),
    (
        "math_mxss",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        ["onerror"],
        [],
    ),
    (
        "meta_refresh",
        '<meta http-equiv="refresh" content="0;url=http://evil/">s',
        ["meta", "evil"],
        ["s"],
    ),
    (
        "base_href",
        '<base href="http://evil/"><a href="x">t</a>',
        ["evil", "<base"],
        [f'href="{BASE}x"'],
    ),
    (
        "link_stylesheet",
        '<link rel="stylesheet" href="http://evil/x.css">u',
        ["<link", "evil"],
        ["u"],
    ),
    (
        "noscript",
        '<noscript><img src=x onerror="alert(1)"></noscript>v',
        ["noscript", "onerror"],
        ["v"],
    ),
    (
        "comment_and_cdata",
        "<!-- <script>x</script> -->w<![CDATA[<script>y</script>]]>",
        ["<!--", "<script"],
        ["w"],
    ),
    (
        "target_blank",
        '<a href="http://x.example/" target="_blank">x</a>',
        ["target"],
        ['rel="noopener noreferrer"'],
    ),
    (
        "srcset_with_javascript",
        '<img src="a.jpg" srcset="b.jpg 1x, javascript:x 2x">',
        ["javascript", "srcset"],
        [f'src="{BASE}a.jpg"'],
    ),
    ("relative_link", '<a href="../other">y</a>', [], ['href="http://feed.example/other"']),
    (
        "scheme_relative_link",
        '<a href="//cdn.example/z">z</a>',
        [],
        ['href="http://cdn.example/z"'],
    ),
    (
        "media_kept",
        '<video src="v.mp4" poster="p.jpg" onplay="x()"></video>',
        ["onplay"],
        [f'src="{BASE}v.mp4"', f'poster="{BASE}p.jpg"'],
    ),
]


@pytest.mark.parametrize(
    "hostile, gone, kept", [case[1:] for case in SANITIZE_CASES], ids=[c[0] for c in SANITIZE_CASES]
)
def test_sanitizer_strips_what_a_reader_could_execute(
    hostile: str, gone: list[str], kept: list[str]
) -> None:
    clean = sanitize_html(hostile, BASE)
    for fragment in gone:
        assert fragment.lower() not in clean.lower(), clean
    for fragment in kept:
        assert fragment in clean, clean


# -- documents built to hurt --------------------------------------------------------------

FEED_URL = "http://feed.example/news/feed.xml"


def rss_items(items: str, channel: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>http://feed.example/</link><description>D</description>{channel}{items}"
        "</channel></rss>"
    ).encode()


def many_rss(count: int) -> bytes:
    return rss_items(
        "".join(f"<item><guid>g{n}</guid><title>t{n}</title></item>" for n in range(count))
    )


def many_atom(count: int) -> bytes:
    entries = "".join(
        f"<entry><id>urn:e:{n}</id><title>t{n}</title><updated>2024-01-01T00:00:00Z</updated>"
        "</entry>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        f"<id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>{entries}</feed>"
    ).encode()


def many_json(count: int) -> bytes:
    items = [{"id": f"j{n}", "title": f"t{n}", "content_text": "x"} for n in range(count)]
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": items}
    return json.dumps(document).encode()


@pytest.mark.parametrize("build", [many_rss, many_atom, many_json], ids=["rss", "atom", "json"])
def test_feed_of_50000_entries_is_capped_to_its_first_max_entries(build: object) -> None:
    assert callable(build)
    feed = parse_document(build(50_000), url=FEED_URL, max_entries=1000)
    assert len(feed.entries) == 1000
    assert [entry.title for entry in feed.entries[:3]] == ["t0", "t1", "t2"]
    assert feed.entries[-1].title == "t999"


def test_feed_with_exactly_max_entries_is_not_cut() -> None:
    feed = parse_document(many_rss(10), url=FEED_URL, max_entries=10)
    assert [entry.title for entry in feed.entries] == [f"t{n}" for n in range(10)]


def test_entry_markup_inside_cdata_does_not_lose_entries_below_the_cap() -> None:
    body = "<![CDATA[<item><entry>not entries</entry></item>]]>"
    items = "".join(
        f"<item><guid>g{n}</guid><title>t{n}</title><description>{body}</description></item>"
        for n in range(5)
    )
    feed = parse_document(rss_items(items), url=FEED_URL, max_entries=5)
    assert len(feed.entries) == 5


def test_title_of_100_kb_is_cut_to_max_title_chars() -> None:
    title = "word " * 20_000
    feed = parse_document(rss_items(f"<item><title>{title}</title></item>"), url=FEED_URL)
    (entry,) = feed.entries
    assert len(entry.title) <= MAX_TITLE_CHARS + 1
    assert entry.title.endswith("…")


def test_title_of_100_kb_without_spaces_is_cut_too() -> None:
    feed = parse_document(rss_items(f"<item><title>{'x' * 100_000}</title></item>"), url=FEED_URL)
    assert len(feed.entries[0].title) <= MAX_TITLE_CHARS + 1


DATE_CASES = [
    ("year_9999", "Fri, 31 Dec 9999 23:59:59 GMT", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("year_3000", "Wed, 01 Jan 3000 00:00:00 GMT", datetime(3000, 1, 1, tzinfo=UTC)),
    ("before_1970", "Mon, 01 Jan 1900 00:00:00 GMT", datetime(1900, 1, 1, tzinfo=UTC)),
    (
        "just_before_1970",
        "Wed, 31 Dec 1969 23:59:59 GMT",
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
    ),
    ("year_zero", "Sat, 01 Jan 0000 00:00:00 GMT", None),
    ("nonsense", "the day after tomorrow", None),
    ("huge_year", "Mon, 01 Jan 99999999 00:00:00 GMT", None),
]


@pytest.mark.parametrize(
    "text, expected", [c[1:] for c in DATE_CASES], ids=[c[0] for c in DATE_CASES]
)
def test_dates_out_of_range_parse_or_are_dropped_never_raise(
    text: str, expected: datetime | None
) -> None:
    feed = parse_document(
        rss_items(f"<item><guid>g</guid><title>t</title><pubDate>{text}</pubDate></item>"),
        url=FEED_URL,
    )
    assert feed.entries[0].published == expected


LINK_CASES = [
    (
        "rss_relative_to_feed_url",
        rss_items("<item><title>a</title><link>../a.html</link></item>"),
        "http://feed.example/a.html",
    ),
    (
        "rss_root_relative",
        rss_items("<item><title>a</title><link>/b.html</link></item>"),
        "http://feed.example/b.html",
    ),
    (
        "rss_scheme_relative",
        rss_items("<item><title>a</title><link>//cdn.example/c</link></item>"),
        "http://cdn.example/c",
    ),
    (
        "rss_javascript_link",
        rss_items("<item><title>a</title><link>javascript:alert(1)</link></item>"),
        None,
    ),
    (
        "atom_xml_base_on_feed",
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example/sub/"><title>T</title>'
        b'<entry><id>e</id><title>a</title><link href="post/1"/></entry></feed>',
        "https://blog.example/sub/post/1",
    ),
    (
        "atom_xml_base_on_entry",
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example/sub/"><title>T</title>'
        b'<entry xml:base="/other/"><id>e</id><title>a</title><link href="2"/></entry></feed>',
        "https://blog.example/other/2",
    ),
]


@pytest.mark.parametrize("body, link", [c[1:] for c in LINK_CASES], ids=[c[0] for c in LINK_CASES])
def test_relative_links_resolve_against_xml_base_and_the_feed_url(
    body: bytes, link: str | None
) -> None:
    (entry,) = parse_document(body, url=FEED_URL).entries
    assert entry.link == link


def test_relative_urls_in_content_resolve_against_the_content_xml_base() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example/"><title>T</title>'
        b'<entry><id>e</id><title>a</title><content type="html" xml:base="https://img.example/x/">'
        b"&lt;img src=&quot;p.jpg&quot;&gt;&lt;a href=&quot;/q&quot;&gt;q&lt;/a&gt;</content>"
        b"</entry></feed>"
    )
    (entry,) = parse_document(body, url=FEED_URL).entries
    assert 'src="https://img.example/x/p.jpg"' in entry.content
    assert 'href="https://img.example/q"' in entry.content


# -- through the whole pipeline --------------------------------------------------------------

HOSTILE_ITEMS = "".join(
    [
        # the sanitiser table, one item per case, all in one document
        *(
            f"<item><guid>san-{name}</guid><title>Sanitize {name}</title>"
            f"<link>http://feed.example/{name}</link>"
            f"<description><![CDATA[{html}]]></description></item>"
            for name, html, _gone, _kept in SANITIZE_CASES
        ),
        f"<item><guid>long</guid><title>{'long title ' * 10_000}</title></item>",
        "<item><guid>dup</guid><title>first copy</title><link>http://feed.example/d1</link></item>",
        "<item><guid>dup</guid><title>second copy</title><link>http://feed.example/d2</link></item>",
        "<item><description>no id, no link, no date, no title</description></item>",
        "<item><title>only a title</title></item>",
        "<item><guid>future</guid><title>future</title><pubDate>Fri, 31 Dec 9999 23:59:59 GMT"
        "</pubDate><atom:updated xmlns:atom='http://www.w3.org/2005/Atom'>9999-12-31T00:00:00Z"
        "</atom:updated></item>",
        "<item><guid>past</guid><title>past</title>"
        "<pubDate>Mon, 01 Jan 1900 00:00:00 GMT</pubDate></item>",
        "<item><guid>ctl</guid><title>bell\x07 and \x1b escape</title>"
        "<description>nul\x00</description></item>",
        "<item><guid>rel</guid><title>relative</title><link>../relative.html</link>"
        '<description>&lt;img src="/img/a.jpg"&gt;</description></item>',
        "<item><guid>js</guid><title>&lt;script&gt;alert(1)&lt;/script&gt; title</title>"
        "<link>javascript:alert(1)</link></item>",
    ]
)
FORBIDDEN_IN_OUTPUT = re.compile(
    r"<script|javascript:|vbscript:|onerror=|onload=|onclick=|<iframe|<form|<frame|"
    r"<object|<embed|data:text|evil",
    re.IGNORECASE,
)


def test_hostile_entries_come_out_of_every_output_safe_and_valid(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.add("/feed.xml", rss_items(HOSTILE_ITEMS))
    feed_server.add("/many.xml", many_rss(5_000))
    config_path = tmp_path / "aggregator.toml"
    config_path.write_text(
        f'[aggregator]\ndatabase = "sqlite:///{tmp_path / "h.db"}"\nmax_entries = 200\n'
        f'[sources.hostile]\nurl = "{feed_server.url("/feed.xml")}"\ncategories = ["news"]\n'
        f'[sources.many]\nurl = "{feed_server.url("/many.xml")}"\n'
        '[feeds.hostile-only]\nsources = ["hostile"]\nlimit = 500\n',
        encoding="utf-8",
    )
    config = load_config(config_path)
    store = Store(config.settings.database)
    store.upgrade()
    store.sync_sources(config.sources.values())
    try:
        first = asyncio.run(run_pass(config, store, force=True))
        assert not first.failed, [r.error for r in first.failed]
        counts = {state.name: state.entry_count for state in store.source_states()}
        # Ten more items than the sanitiser table; the two sharing an id are one entry.
        assert counts["hostile"] == len(SANITIZE_CASES) + 9
        assert counts["many"] == 200
        # Polling the same documents again stores nothing twice.
        feed_server.add("/feed.xml", rss_items(HOSTILE_ITEMS + "<!-- changed -->"))
        second = asyncio.run(run_pass(config, store, force=True))
        assert second.counts.new == 0
        assert {state.name: state.entry_count for state in store.source_states()} == counts

        files = assert_outputs_valid(store, config, tmp_path / "out")
        for name, body in files.items():
            if name.endswith(".json"):
                # Titles and summaries are plain text there, "<script>" in them is words;
                # the HTML and the links are what a reader renders or follows.
                items = json.loads(body)["items"]
                text = json.dumps(
                    [[item.get(k) for k in ("content_html", "url", "image")] for item in items]
                )
            else:
                text = body.decode("utf-8")
            found = FORBIDDEN_IN_OUTPUT.search(text)
            assert found is None, (name, text[max(0, found.start() - 80) : found.end() + 80])
        document = json.loads(files["hostile-only.json"])
        titles = {item.get("title", "") for item in document["items"]}
        assert max(len(title) for title in titles) <= MAX_TITLE_CHARS + 1
        assert "<script>alert(1)</script> title" in titles  # text, escaped by the format
        relative = next(item for item in document["items"] if item.get("title") == "relative")
        assert relative["url"] == feed_server.url("/relative.html")
        assert relative["image"] == feed_server.url("/img/a.jpg"), relative
        future = next(item for item in document["items"] if item.get("title") == "future")
        assert not future.get("date_published", "").startswith("9999")
        for fmt in ("atom", "rss", "json"):
            assert b"9999" not in files[f"hostile-only.{fmt}"], fmt  # not even the feed's date
    finally:
        store.close()
