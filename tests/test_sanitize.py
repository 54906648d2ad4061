"""HTML hygiene: what nh3 keeps and removes, URLs made absolute, text helpers."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import pytest
from feedparser.urls import _urljoin
from hypothesis import given
from hypothesis import strategies as st

from aggregator.sanitize import (
    html_to_text,
    joins_to_itself,
    sanitize_html,
    strip_xml_illegal,
    text_to_html,
    web_url,
)

BASE = "https://example.com/news/feed.xml"

# (case, input HTML, substrings the output must hold, substrings it must not)
SANITIZE_CASES = [
    (
        "script removed with its code",
        "<p>a<script>alert(1)</script>b</p>",
        ["<p>ab</p>"],
        ["alert"],
    ),
    (
        "style removed with its rules",
        "<style>p{color:red}</style><p>x</p>",
        ["<p>x</p>"],
        ["color"],
    ),
    ("event handler dropped", '<p onclick="steal()">x</p>', ["<p>x</p>"], ["onclick", "steal"]),
    ("javascript link dropped", '<a href="javascript:alert(1)">x</a>', [">x</a>"], ["javascript"]),
    ("data image dropped", '<img src="data:image/png;base64,AAAA">', [], ["data:"]),
    (
        "iframe removed",
        '<iframe src="https://evil.test/"></iframe><p>k</p>',
        ["<p>k</p>"],
        ["evil"],
    ),
    (
        "form controls removed",
        '<form action="/x"><input name="q"><p>t</p></form>',
        ["t"],
        ["<form", "<input"],
    ),
    (
        "noscript removed, no escaped markup",
        '<noscript><img src="a.jpg"></noscript>ok',
        ["ok"],
        ["&lt;"],
    ),
    (
        "object and embed removed",
        '<object data="x.swf"><embed src="x.swf"></object>z',
        ["z"],
        ["swf"],
    ),
    ("svg removed", '<svg onload="x()"><script>y()</script></svg>w', ["w"], ["onload", "y()"]),
    ("comments stripped", "<p>a<!-- secret -->b</p>", ["<p>ab</p>"], ["secret"]),
    (
        "relative link made absolute",
        '<a href="story.html">s</a>',
        ['href="https://example.com/news/story.html"'],
        [],
    ),
    (
        "root-relative image made absolute",
        '<img src="/i/a.jpg" alt="A">',
        ['src="https://example.com/i/a.jpg"', 'alt="A"'],
        [],
    ),
    (
        "protocol-relative image gets the base scheme",
        '<img src="//cdn.test/a.jpg">',
        ['src="https://cdn.test/a.jpg"'],
        [],
    ),
    (
        "links get rel noopener",
        '<a href="https://x.test/">x</a>',
        ['rel="noopener noreferrer"'],
        [],
    ),
    (
        "figure and caption kept",
        "<figure><img src='a.jpg'><figcaption>Cap</figcaption></figure>",
        ["<figure>", "<figcaption>Cap</figcaption>"],
        [],
    ),
    (
        "video kept with absolute poster",
        '<video src="v.mp4" poster="p.jpg" controls></video>',
        ['src="https://example.com/news/v.mp4"', 'poster="https://example.com/news/p.jpg"'],
        [],
    ),
    ("mailto kept", '<a href="mailto:ed@example.com">ed</a>', ['href="mailto:ed@example.com"'], []),
    ("XML-forbidden characters removed", "<p>a\x00b\x1fc</p>", ["<p>abc</p>"], ["\x00", "\x1f"]),
    ("plain text escaped", "Fish & chips < 5", ["Fish &amp; chips &lt; 5"], []),
]


@pytest.mark.parametrize(
    ("fragment", "present", "absent"),
    [case[1:] for case in SANITIZE_CASES],
    ids=[case[0] for case in SANITIZE_CASES],
)
def test_sanitize_html(fragment: str, present: list[str], absent: list[str]) -> None:
    cleaned = sanitize_html(fragment, BASE)
    for needle in present:
        assert needle in cleaned
    for needle in absent:
        assert needle not in cleaned


def test_sanitize_without_base_keeps_relative_urls() -> None:
    assert 'href="story.html"' in sanitize_html('<a href="story.html">s</a>', None)


def test_sanitize_of_nothing_is_nothing() -> None:
    assert sanitize_html("", BASE) == ""
    assert sanitize_html("   \n", BASE) == ""


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        ("<p>It&#8217;s <b>bold</b></p>", "It’s bold"),
        ("a &amp; b", "a & b"),
        ("  many\n\n spaces  ", "many spaces"),
        ("<p>one</p><p>two</p>", "one two"),
    ],
)
def test_html_to_text(fragment: str, text: str) -> None:
    assert html_to_text(fragment) == text


# Spaces of every kind Unicode has (no-break, ideographic, line separator…), among text.
_SPACED_TEXT = st.text(
    st.sampled_from([" ", "\t", "\n", "\xa0", "\u2028", "\u3000", "\x1c", "\x85", "a", "é", ";"])
    | st.characters(),
    max_size=40,
)


@given(_SPACED_TEXT)
def test_html_to_text_collapses_exactly_the_whitespace_that_re_calls_whitespace(text: str) -> None:
    fragment = html.escape(text, quote=False)  # markup-free, so only spacing and entities
    assert html_to_text(fragment) == re.sub(r"\s+", " ", text).strip()


def test_text_to_html_escapes_and_keeps_paragraphs() -> None:
    assert text_to_html("a < b\n\nc & d") == "<p>a &lt; b</p><p>c &amp; d</p>"


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("https://x.test/a", None, "https://x.test/a"),
        ("/a", "http://x.test/feed", "http://x.test/a"),
        ("javascript:alert(1)", None, None),
        ("mailto:a@b.test", None, None),
        ("relative/only", None, None),
        ("", "http://x.test/", None),
        ("http://[::1", None, None),
        ("https://x.test/a b", None, "https://x.test/a%20b"),
    ],
)
def test_web_url(url: str, base: str | None, expected: str | None) -> None:
    assert web_url(url, base) == expected


def test_no_printable_character_is_illegal_in_xml() -> None:
    # strip_xml_illegal returns printable text as it is.
    printable_and_illegal = [
        hex(code)
        for code in range(0x110000)
        if chr(code).isprintable() and strip_xml_illegal(f"a{chr(code)}\n") != f"a{chr(code)}\n"
    ]
    assert printable_and_illegal == []


def test_strip_xml_illegal_keeps_tab_newline_and_unicode() -> None:
    assert strip_xml_illegal("a\tb\nc\rd\x0be\ufffff–✓") == "a\tb\nc\rdef–✓"


# URL pieces urlsplit treats specially: delimiters, brackets, whitespace and controls it
# strips or drops, characters that change under NFKC, upper-case schemes.
_URL_PIECES = st.sampled_from(
    [
        *("http://", "https://", "HTTP://", "//", "/", "?", "#", ";", "[", "]", "::1", ":80"),
        *("@", "a", "Z", "0", "-", ".", "..", "%2F", "~", "&", "=", " ", "\t", "\n", "\r"),
        *("\x00", "\x1f", "\x7f", "\xa0", "\u2028", "é", "\u2100", "\ufffe"),
    ]
)
_URLS = st.lists(_URL_PIECES, max_size=12).map("".join)
_BASES = (
    st.sampled_from(
        [
            "",
            BASE,
            "http://x.test",
            "feed://x.test/a",
            "http://[bad/",
            "https://h\u2100x/",
            "mailto:a@b",
        ]
    )
    | _URLS
)


@given(st.sampled_from(["http://", "https://"]).flatmap(lambda s: _URLS.map(s.__add__)), _BASES)
def test_a_url_that_joins_to_itself_is_what_urljoin_gives(url: str, base: str) -> None:
    if not joins_to_itself(url, base):
        return
    assert (urljoin(base, url) if base else url) == url
    assert _urljoin(base, url) == url  # feedparser's, used by the fast path


@pytest.mark.parametrize(
    "url",
    [
        "HTTP://x.test/a",
        "http://x.test/a?",
        "http://x.test/a#",
        "http://x.test/a?#f",
        "http://x.test/a;",
        "http://x.test/a\tb",
        "http://[::1]/a",
        "http://x\u2100y.test/",
        "http:///a",
        "http://x.test/a b",
        "ftp://x.test/a",
        "/a",
    ],
)
def test_urls_that_urljoin_may_change_are_joined(url: str) -> None:
    assert not joins_to_itself(url, BASE)


def test_no_url_joins_to_itself_against_a_base_urljoin_rejects() -> None:
    assert not joins_to_itself("https://x.test/a", "http://[bad/")
    assert web_url("https://x.test/a", "http://[bad/") is None
