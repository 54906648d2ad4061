"""Bytes → `ParsedFeed`: every format feedparser reads, plus JSON Feed 1.0/1.1.

Pure: no network, no clock. Whatever the format, the entries come out normalised
the same way: plain-text titles, sanitised HTML with absolute URLs, aware UTC
datetimes, authors, tags, enclosures and a lead image with its caption.

feedparser's own sanitiser and URI resolver are switched off: nh3 does both in one
pass (`sanitize.sanitize_html`), faster and with a stricter allow-list. feedparser
does not read JSON Feed (FACTS.md), so `_parse_json_feed` does; JSON Feed is plain
JSON with a short spec, and no maintained Python library reads it better.
"""

from __future__ import annotations

import calendar
import codecs
import json
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import feedparser
from feedparser.datetimes import _parse_date as feedparser_parse_date
from feedparser.namespaces import mediarss

from aggregator.fastparse import parse_fast
from aggregator.model import Enclosure, Image, ParsedEntry, ParsedFeed
from aggregator.sanitize import (
    html_to_text,
    sanitize_html,
    strip_xml_illegal,
    text_to_html,
    web_url,
)

# Caps on what one hostile or broken entry can cost every later stage. Real titles
# are far shorter; real articles far smaller.
MAX_TITLE_CHARS: Final = 1_000
MAX_TEXT_CHARS: Final = 200_000  # each of summary and content
MAX_ID_CHARS: Final = 2_000
MAX_TAGS: Final = 50
MAX_ENCLOSURES: Final = 20

_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_UPDATE_PERIOD_MINUTES: Final = {
    "hourly": 60,
    "daily": 24 * 60,
    "weekly": 7 * 24 * 60,
    "monthly": 30 * 24 * 60,
    "yearly": 365 * 24 * 60,
}
_IMG = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*(?:\"([^\"]*)\"|'([^']*)')[^>]*>", re.IGNORECASE)
_ALT = re.compile(r"\balt\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.IGNORECASE)
_FIGCAPTION = re.compile(r"<figcaption\b[^>]*>(.*?)</figcaption>", re.IGNORECASE | re.DOTALL)
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S)
_JSON_TYPES: Final = ("application/feed+json", "application/json", "text/json")
_JSON_VERSION = re.compile(r"(?:https?://jsonfeed\.org/version/)?(1(?:\.\d+)?)/?")
# Where entries start and end, in any namespace prefix: enough to cut a document with
# far more entries than are kept before the (slow) full parse. `<items>` of RSS 1.0
# and `<entryfoo>` do not match.
# CDATA sections and comments are matched too, only to be skipped: markup inside them
# is text, not entries.
_ENTRY_START = re.compile(
    rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->|<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s>/]", re.S
)
_ENTRY_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")
# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_DECLARED_ENCODING = re.compile(r"""^(\s*<\?xml\b[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")


class ParseError(Exception):
    """A document could not be read as a feed; `str()` is "SOURCE: URL: cause"."""

    def __init__(self, source: str, url: str, cause: str) -> None:
        super().__init__(f"{source}: {url}: {cause}")
        self.source = source
        self.url = url
        self.cause = cause

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, str, str]]:
        # Raised in parser worker processes: it must survive pickling back to the poller.
        return (type(self), (self.source, self.url, self.cause))


def parse_document(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    source: str = "",
    max_entries: int = 1000,
    fast_path: bool = True,
) -> ParsedFeed:
    """Read `body`, fetched from `url`, as a feed; raise ParseError when it is none.

    At most `max_entries` entries are kept, the document's first ones (feeds list
    their newest first). Without `fast_path` every XML document goes to feedparser:
    what the differential test compares the fast path with.
    """
    body = _prepared(body, source=source, url=url)
    if _looks_like_json(body, content_type):
        return _parse_json_feed(body, url=url, source=source, max_entries=max_entries)
    if fast_path:
        fast = parse_fast(body, url=url, content_type=content_type, max_entries=max_entries)
        if fast is not None:
            version, feed, entries = fast
            return _normalised_feed(version, feed, entries, url=url, max_entries=max_entries)
    return _parse_xml_feed(
        body, url=url, content_type=content_type, source=source, max_entries=max_entries
    )


def parse_with_feedparser(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    source: str = "",
    max_entries: int = 1000,
) -> ParsedFeed:
    """`parse_document` without the fast path."""
    return parse_document(
        body,
        url=url,
        content_type=content_type,
        source=source,
        max_entries=max_entries,
        fast_path=False,
    )


# --- RSS, Atom, CDF through feedparser ------------------------------------------------


def _start_media_description(self: Any, attrs: Mapping[str, str]) -> None:
    self.push("media_description", 1)


def _end_media_description(self: Any) -> None:
    self.pop("media_description")


# feedparser 6 treats <media:description> as the entry's <description>: it replaces
# the summary's metadata, or becomes the summary when it comes first. An image
# caption is not a summary; it is kept apart as `media_description` instead.
mediarss.Namespace._start_media_description = _start_media_description
mediarss.Namespace._end_media_description = _end_media_description


def _prepared(body: bytes, *, source: str, url: str) -> bytes:
    if not body.strip():
        raise ParseError(source, url, "empty document: the server sent no feed")
    return _utf8_from_bom(body)


def _parse_xml_feed(
    body: bytes, *, url: str, content_type: str | None, source: str, max_entries: int
) -> ParsedFeed:
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    result = feedparser.parse(
        _cut_entries(body, max_entries),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    problem = result.get("bozo_exception")
    if not result.get("version") and not result.entries:
        raise ParseError(source, url, _not_a_feed(body, problem))
    return _normalised_feed(
        result.get("version") or "unknown",
        result.feed,
        result.entries,
        url=url,
        max_entries=max_entries,
        warning=_warning(problem) if result.get("bozo") and not _harmless(problem) else None,
    )


def _normalised_feed(
    version: str,
    feed: Mapping[str, Any],
    raw_entries: Sequence[dict[str, Any]],
    *,
    url: str,
    max_entries: int,
    warning: str | None = None,
) -> ParsedFeed:
    """A feed as feedparser's mappings give it (or the fast path's, which copy them), normalised."""
    base = _base(feed.get("title_detail"), url)
    entries = tuple(
        parsed
        for parsed in (_xml_entry(entry, url) for entry in raw_entries[:max_entries])
        if not _is_empty(parsed)
    )
    return ParsedFeed(
        format=version,
        title=_plain(feed.get("title"), feed.get("title_detail")) or None,
        link=web_url(feed.get("link"), base),
        description=_plain(feed.get("subtitle"), feed.get("subtitle_detail")) or None,
        entries=entries,
        ttl_minutes=_positive_int(feed.get("ttl")),
        update_period_minutes=_update_period(
            feed.get("sy_updateperiod"), feed.get("sy_updatefrequency")
        ),
        warning=warning,
    )


def _utf8_from_bom(body: bytes) -> bytes:
    """A UTF-16/32 document with a byte order mark, as UTF-8 declaring UTF-8.

    The mark is unambiguous (XML 1.0 appendix F) while the declaration often lies,
    and feedparser believes the declaration."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            try:
                text = body.decode(codec)
            except UnicodeDecodeError:
                return body
            return _DECLARED_ENCODING.sub(r'\1"utf-8"', text, count=1).encode("utf-8")
    return body


def _cut_entries(body: bytes, max_entries: int) -> bytes:
    """`body` without the entries past the first `max_entries`, when it has more.

    feedparser builds every entry before `max_entries` could drop any: 150,000 tiny
    entries (9 MB) cost 15 s and 250 MB. Cutting the bytes between the start of the
    first surplus entry and the end of the last entry keeps the document's head and
    tail, so it stays well-formed whenever the entries are siblings, as feeds have
    them. A document that only looks as if it had too many entries (markup in
    CDATA) at worst loses its surplus or parses leniently.
    """
    starts = (match for match in _ENTRY_START.finditer(body) if match[0][1] not in b"!")
    cut_at = next(
        (match.start() for index, match in enumerate(starts) if index == max_entries), None
    )
    if cut_at is None:
        return body
    last = deque(_ENTRY_END.finditer(body, cut_at), maxlen=1)
    if not last:
        return body[:cut_at]
    return body[:cut_at] + body[last[0].end() :]


def _not_a_feed(body: bytes, problem: object) -> str:
    if _HTML_START.match(body[:4096]):
        return "not a feed: the server sent an HTML page (has the feed moved?)"
    if problem is not None:
        return f"not a feed: {_warning(problem)}"
    return "not a feed: no RSS, Atom or JSON Feed document found"


def _harmless(problem: object) -> bool:
    # Local files and servers that send no Content-Type: the XML declaration decides.
    return (
        isinstance(problem, feedparser.NonXMLContentType)
        and "no content-type" in str(problem).lower()
    )


def _warning(problem: object) -> str:
    text = str(problem) or type(problem).__name__
    return strip_xml_illegal(text)[:500]


def _xml_entry(entry: dict[str, Any], url: str) -> ParsedEntry:
    base = _base(entry.get("title_detail") or entry.get("summary_detail"), url)
    content, content_kind, content_base = "", None, base
    for part in entry.get("content") or ():
        value = part.get("value") or ""
        if value.strip():
            content, content_kind, content_base = value, part.get("type"), _base(part, base)
            break
    content_html = _html(content, content_kind, content_base)
    summary_detail = entry.get("summary_detail") or {}
    summary, summary_kind = entry.get("summary") or "", summary_detail.get("type")
    summary_base = _base(summary_detail, base)
    same_text = summary == content and summary_base == content_base
    if same_text and _is_html(summary_kind) == _is_html(content_kind):
        # Both parsers copy a lone content into the summary: a whole article's HTML,
        # not to be sanitised twice.
        summary_html = content_html
    else:
        summary_html = _html(summary, summary_kind, summary_base)
    caption = _plain(entry.get("media_description"), None)
    if not summary_html and not content_html and caption:
        # YouTube and other media feeds describe an entry only in media:description.
        summary_html = text_to_html(caption)
    summary_html, content_html = _cap(summary_html), _cap(content_html)
    if summary_html and content_html and _same_text(summary_html, content_html):
        summary_html = ""
    link = web_url(entry.get("link"), base)
    enclosures = _xml_enclosures(entry, base)
    return ParsedEntry(
        guid=_identifier(entry.get("id")),
        link=link,
        title=_title(entry.get("title"), entry.get("title_detail")),
        summary=summary_html,
        content=content_html,
        author=_author(entry),
        # dict.get: feedparser's own get() answers updated_parsed with the published date.
        published=_datetime(dict.get(entry, "published_parsed")),
        updated=_datetime(dict.get(entry, "updated_parsed")),
        tags=_tags(tag.get("term") or tag.get("label") for tag in entry.get("tags") or ()),
        enclosures=enclosures,
        image=_xml_image(entry, base, enclosures, content_html or summary_html, caption),
        orig_link=web_url(entry.get("feedburner_origlink"), base),
    )


def _same_text(summary_html: str, content_html: str) -> bool:
    """Whether the summary only repeats the content. Texts alone decide, except that
    two texts that are both empty (an image, say) are not "the same"."""
    summary_text = html_to_text(summary_html)
    return bool(summary_text) and (
        summary_html == content_html or summary_text == html_to_text(content_html)
    )


def _is_empty(entry: ParsedEntry) -> bool:
    """An item with nothing in it (seen in broken feeds): nothing to publish or find again."""
    return not (
        entry.guid
        or entry.link
        or entry.title
        or entry.summary
        or entry.content
        or entry.enclosures
    )


def _base(detail: Mapping[str, Any] | None, default: str) -> str:
    """The URL relative references in an element resolve against (its xml:base)."""
    base = (detail or {}).get("base") or ""
    return base if base.startswith(("http://", "https://")) else default


def _html(value: str, kind: str | None, base: str) -> str:
    if _is_html(kind):
        return sanitize_html(value, base)
    return text_to_html(value)


def _is_html(kind: str | None) -> bool:
    return (kind or "text/html").lower() in _HTML_TYPES


def _cap(fragment: str) -> str:
    if len(fragment) <= MAX_TEXT_CHARS:
        return fragment
    # Cut, then sanitise again so no tag is left open.
    return sanitize_html(fragment[:MAX_TEXT_CHARS], None)


def _plain(value: str | None, detail: Mapping[str, Any] | None) -> str:
    """Plain text of a text construct, whatever type it declares."""
    if not value:
        return ""
    kind = ((detail or {}).get("type") or "text/plain").lower()
    text = html_to_text(value) if kind in _HTML_TYPES else " ".join(value.split())
    return strip_xml_illegal(text)


def _title(value: str | None, detail: Mapping[str, Any] | None) -> str:
    title = _plain(value, detail)
    if len(title) > MAX_TITLE_CHARS:
        title = title[:MAX_TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return title


def _identifier(value: object) -> str | None:
    if value is None:
        return None
    text = strip_xml_illegal(str(value)).strip()
    return text[:MAX_ID_CHARS] or None


def _author(entry: Mapping[str, Any]) -> str | None:
    detail = entry.get("author_detail") or {}
    name = detail.get("name") or entry.get("author") or ""
    if not name and detail.get("email"):
        name = detail["email"]
    text = _plain(name, None)
    return text[:MAX_TITLE_CHARS] or None


def _tags(terms: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for term in terms:
        text = _plain(term, None) if term else ""
        if text:
            seen.setdefault(text.casefold(), text)
    return tuple(seen.values())[:MAX_TAGS]


def _datetime(parsed: time.struct_time | None) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime; None when out of range."""
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _xml_enclosures(entry: Mapping[str, Any], base: str) -> tuple[Enclosure, ...]:
    found: dict[str, Enclosure] = {}
    for link in entry.get("links") or ():
        if link.get("rel") == "enclosure":
            _add_enclosure(found, link.get("href"), link.get("type"), link.get("length"), base)
    for media in entry.get("media_content") or ():
        kind = media.get("type") or ""
        medium = media.get("medium") or ""
        if medium in ("audio", "video") or kind.startswith(("audio/", "video/")):
            _add_enclosure(found, media.get("url"), kind, media.get("filesize"), base)
    return tuple(found.values())[:MAX_ENCLOSURES]


def _add_enclosure(
    found: dict[str, Enclosure], href: object, kind: object, length: object, base: str
) -> None:
    url = web_url(str(href), base) if href else None
    if url is None or url in found:
        return
    mime = str(kind).strip().lower() if kind else None
    found[url] = Enclosure(url=url, type=mime or None, length=_positive_int(length))


def _xml_image(
    entry: Mapping[str, Any],
    base: str,
    enclosures: tuple[Enclosure, ...],
    body_html: str,
    caption: str,
) -> Image | None:
    """The lead image: media:content, media:thumbnail, an image enclosure, else the first <img>."""
    for media in entry.get("media_content") or ():
        kind = media.get("type") or ""
        if media.get("medium") == "image" or kind.startswith("image/"):
            url = web_url(media.get("url"), base)
            if url:
                return Image(url, caption or _html_caption(body_html, url))
    for thumbnail in entry.get("media_thumbnail") or ():
        url = web_url(thumbnail.get("url"), base)
        if url:
            return Image(url, caption or _html_caption(body_html, url))
    for enclosure in enclosures:
        if (enclosure.type or "").startswith("image/"):
            return Image(enclosure.url, caption or _html_caption(body_html, enclosure.url))
    return _first_img(body_html)


def _first_img(body_html: str) -> Image | None:
    match = _IMG.search(body_html)
    if match is None:
        return None
    url = web_url(_unescape(match.group(1) or match.group(2) or ""))
    if url is None:
        return None
    return Image(url, _html_caption(body_html, url))


def _html_caption(body_html: str, url: str) -> str | None:
    """A caption for the image at `url` from the HTML: its <figcaption>, else its alt text."""
    for match in _IMG.finditer(body_html):
        if _unescape(match.group(1) or match.group(2) or "") != url:
            continue
        figure_caption = _FIGCAPTION.search(body_html, match.end())
        if figure_caption and "<img" not in body_html[match.end() : figure_caption.start()]:
            text = html_to_text(figure_caption.group(1))
            if text:
                return text
        alt = _ALT.search(match.group(0))
        text = html_to_text(alt.group(1) or alt.group(2) or "") if alt else ""
        return text or None
    return None


def _unescape(value: str) -> str:
    return html_to_text(value) if "&" in value else value.strip()


def _positive_int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _update_period(period: object, frequency: object) -> int | None:
    """sy:updatePeriod / sy:updateFrequency as minutes between updates."""
    if not period:
        return None
    minutes = _UPDATE_PERIOD_MINUTES.get(str(period).strip().lower())
    if minutes is None:
        return None
    times = _positive_int(frequency) or 1
    return max(1, minutes // times)


# --- JSON Feed 1.0 / 1.1 ----------------------------------------------------------------


def _looks_like_json(body: bytes, content_type: str | None) -> bool:
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"{":
        return True
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in _JSON_TYPES and start not in (b"<", b"")


def _parse_json_feed(body: bytes, *, url: str, source: str, max_entries: int) -> ParsedFeed:
    try:
        # strict=False: raw control characters in strings are common and harmless.
        document = json.loads(body.decode("utf-8-sig"), strict=False)
    except UnicodeDecodeError as error:
        raise ParseError(source, url, f"JSON Feed is not UTF-8 (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise ParseError(source, url, f"invalid JSON at line {error.lineno}: {error.msg}") from None
    except RecursionError:
        raise ParseError(source, url, "invalid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise ParseError(source, url, "not a JSON Feed: the document is not a JSON object")
    version = document.get("version")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(source, url, "not a JSON Feed: the object has no list of items")
    # Publishers write "1.1", "http://jsonfeed.org/version/1" and worse: read the items
    # anyway, and say so on the status page.
    known = isinstance(version, str) and _JSON_VERSION.fullmatch(version.strip()) is not None
    warning = None if known else f"unexpected JSON Feed version {version!r}"
    base = _string(document.get("feed_url")) or url
    base = base if base.startswith(("http://", "https://")) else url
    feed_authors = _json_authors(document)
    entries = []
    for item in items[:max_entries]:
        if isinstance(item, dict):
            entry = _json_entry(item, base, feed_authors)
            if not _is_empty(entry):
                entries.append(entry)
    return ParsedFeed(
        format=_json_format(version),
        title=_plain(_string(document.get("title")), None) or None,
        link=web_url(_string(document.get("home_page_url")), base),
        description=_plain(_string(document.get("description")), None) or None,
        entries=tuple(entries),
        warning=warning,
    )


def _json_format(version: object) -> str:
    match = _JSON_VERSION.fullmatch(version.strip()) if isinstance(version, str) else None
    return "json" + (match.group(1).replace(".", "") if match else "")


def _json_entry(item: Mapping[str, Any], base: str, feed_authors: str | None) -> ParsedEntry:
    content_html = _cap(sanitize_html(_string(item.get("content_html")), base))
    if not content_html:
        content_html = _cap(text_to_html(_string(item.get("content_text"))))
    summary_html = _cap(text_to_html(_string(item.get("summary"))))
    if summary_html and content_html and _same_text(summary_html, content_html):
        summary_html = ""
    link = web_url(_string(item.get("url")), base) or web_url(
        _string(item.get("external_url")), base
    )
    identifier = item.get("id")
    enclosures: dict[str, Enclosure] = {}
    for attachment in item.get("attachments") or ():
        if isinstance(attachment, dict):
            _add_enclosure(
                enclosures,
                _string(attachment.get("url")),
                _string(attachment.get("mime_type")),
                attachment.get("size_in_bytes"),
                base,
            )
    image_url = web_url(_string(item.get("image")), base) or web_url(
        _string(item.get("banner_image")), base
    )
    body = content_html or summary_html
    image = Image(image_url, _html_caption(body, image_url)) if image_url else _first_img(body)
    return ParsedEntry(
        guid=_identifier(identifier) if isinstance(identifier, str | int) else None,
        link=link,
        title=_title(_string(item.get("title")), None),
        summary=summary_html,
        content=content_html,
        author=_json_authors(item) or feed_authors,
        published=_json_date(item.get("date_published")),
        updated=_json_date(item.get("date_modified")),
        tags=_tags(tag for tag in item.get("tags") or () if isinstance(tag, str)),
        enclosures=tuple(enclosures.values())[:MAX_ENCLOSURES],
        image=image,
    )


def _json_authors(holder: Mapping[str, Any]) -> str | None:
    """1.1's `authors` list, else 1.0's single `author`, as one display string."""
    people = holder.get("authors")
    if not isinstance(people, list):
        single = holder.get("author")
        people = [single] if isinstance(single, dict) else []
    names = [_plain(_string(p.get("name")), None) for p in people if isinstance(p, dict)]
    text = ", ".join(name for name in names if name)
    return text[:MAX_TITLE_CHARS] or None


def _json_date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return _datetime(feedparser_parse_date(value.strip()))


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""
