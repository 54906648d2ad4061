"""Stories → Atom 1.0, RSS 2.0 and JSON Feed 1.1 bytes; output feeds → OPML 2.0.

Pure: every input is a value, the clock comes in through `FeedContext.now`, and
the same input always gives the same bytes (web ETags and static files rely on it).

Each story is first reduced to one `_EntryView` — cleaned of XML-forbidden
characters, with its lead image and other copies folded into the HTML — so the
three formats say the same thing. feedgen writes Atom and RSS; what it cannot
express (Atom `<source>` with a feed URL, `media:description`) is added to its
lxml output afterwards.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator import __version__
from aggregator.model import Enclosure, Image, StoredEntry, Story
from aggregator.sanitize import html_to_text, strip_xml_illegal

if TYPE_CHECKING:
    from aggregator.outputs import OutputFeed

ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"
JSON_TYPE = "application/feed+json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"

_ATOM_NS = "http://www.w3.org/2005/Atom"
_MEDIA_NS = "http://search.yahoo.com/mrss/"
# RSS 2.0 requires type and length on <enclosure>; these say "unknown" without lying.
_UNKNOWN_TYPE = "application/octet-stream"
_UNKNOWN_LENGTH = "0"
_TITLE_FROM_TEXT_CHARS = 80
# A published date this far past its first sight is a wrong clock or a hostile feed
# (SPEC: treated as first-seen time; the store orders stories by the same rule); an
# updated date this far past now is shown as the published one.
_FUTURE_TOLERANCE = timedelta(days=1)
_IMG_TAG = re.compile(r"<img\b", re.IGNORECASE)
# Our own output, parsed back only to add what feedgen cannot write: no entities, no network.
_OWN_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What the renderer needs besides the stories."""

    base_url: str  # no trailing slash; self links are f"{base_url}/feeds/{name}.{ext}"
    now: datetime  # aware UTC; the feed's <updated> when there are no stories
    generator: str = "aggregator"  # the version is added from aggregator.__version__

    def feed_url(self, name: str, ext: str) -> str:
        return f"{self.base_url}/feeds/{name}.{ext}"


@dataclass(frozen=True, slots=True)
class _Attribution:
    """One source that carried the story: who, their feed, their site, their copy."""

    title: str
    feed_url: str | None
    site_url: str | None
    link: str | None


@dataclass(frozen=True, slots=True)
class _EntryView:
    """A story as every format shows it, every text already XML-safe."""

    uid: str
    title: str
    link: str | None
    published: datetime
    updated: datetime
    author: str | None
    content_html: str  # never empty: JSON Feed and Atom need some content
    summary_html: str | None  # set only when content is the fuller text
    tags: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    image: Image | None
    source: _Attribution
    also_published_by: tuple[_Attribution, ...]


def render_atom(feed: OutputFeed, stories: Sequence[Story], ctx: FeedContext) -> bytes:
    """The feed as an Atom 1.0 document (RFC 4287), UTF-8."""
    views = [_view(story, ctx.now) for story in stories]
    fg = _feed_generator(feed, views, ctx)
    fg.link(href=ctx.feed_url(feed.name, "atom"), rel="self", type=ATOM_TYPE)
    fg.link(href=ctx.base_url, rel="alternate", type="text/html")
    # Atom requires an author on every entry or on the feed: the feed's own name is the fallback.
    fg.author(name=_clean(feed.title) or feed.name)
    fg.generator(_clean(ctx.generator), version=__version__)
    for view in views:
        fe = _add_entry(fg, view)
        if view.author:
            fe.author(name=view.author)
        if view.summary_html:
            fe.summary(view.summary_html, type="html")
    root = etree.fromstring(fg.atom_str(pretty=False), _OWN_XML_PARSER)
    entries = root.findall(f"{{{_ATOM_NS}}}entry")
    for element, view in zip(entries, views, strict=True):
        _add_atom_links(element, view)
        _add_atom_source(element, view.source)
        _add_media_description(element, view.image)
    return _xml_bytes(root)


def render_rss(feed: OutputFeed, stories: Sequence[Story], ctx: FeedContext) -> bytes:
    """The feed as an RSS 2.0 document, UTF-8."""
    views = [_view(story, ctx.now) for story in stories]
    fg = _feed_generator(feed, views, ctx)
    fg.load_extension("dc", atom=False, rss=True)  # RSS <author> must be an e-mail address
    fg.link(href=ctx.feed_url(feed.name, "rss"), rel="self", type=RSS_TYPE)
    fg.link(href=ctx.base_url, rel="alternate")  # feedgen makes the last link the channel's
    fg.generator(f"{_clean(ctx.generator)} {__version__}")
    for view in views:
        fe = _add_entry(fg, view)
        if view.link:
            fe.link(href=view.link, rel="alternate")
        if view.author:
            fe.dc.dc_creator(view.author)
        if view.summary_html:
            fe.summary(view.summary_html)  # <description>; the full text goes to content:encoded
        if view.enclosures:  # RSS 2.0 carries one enclosure per item
            first = view.enclosures[0]
            length = str(first.length) if first.length is not None else _UNKNOWN_LENGTH
            fe.enclosure(url=first.url, length=length, type=first.type or _UNKNOWN_TYPE)
        if view.source.feed_url:
            fe.source(url=view.source.feed_url, title=view.source.title)
    root = etree.fromstring(fg.rss_str(pretty=False), _OWN_XML_PARSER)
    items = root.findall("channel/item")
    for element, view in zip(items, views, strict=True):
        _add_media_description(element, view.image)
        # RSS <source> names one feed; the other copies go where Atom puts them, as
        # atom:link rel="related" (the atom namespace is already on the channel).
        for other in view.also_published_by:
            if other.link and _is_web_url(other.link):
                related = etree.SubElement(element, f"{{{_ATOM_NS}}}link", rel="related")
                related.set("href", other.link)
                related.set("title", other.title)
    return _xml_bytes(root)


def render_json(feed: OutputFeed, stories: Sequence[Story], ctx: FeedContext) -> bytes:
    """The feed as JSON Feed 1.1, UTF-8.

    JSON Feed is a plain JSON object, so json.dumps writes it; no library needed.
    """
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": _clean(feed.title) or feed.name,
        "home_page_url": ctx.base_url,
        "feed_url": ctx.feed_url(feed.name, "json"),
    }
    description = _clean(feed.description)
    if description:
        document["description"] = description
    document["items"] = [_json_item(_view(story, ctx.now)) for story in stories]
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def render_opml(feeds: Sequence[OutputFeed], ctx: FeedContext) -> bytes:
    """Every output feed as an OPML 2.0 subscription list, Atom URLs, UTF-8."""
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = f"{_clean(ctx.generator)} output feeds"
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(opml, "body")
    for feed in feeds:
        title = _clean(feed.title) or feed.name
        outline = etree.SubElement(
            body,
            "outline",
            type="rss",
            text=title,
            title=title,
            xmlUrl=ctx.feed_url(feed.name, "atom"),
            htmlUrl=ctx.base_url,
        )
        description = _clean(feed.description)
        if description:
            outline.set("description", description)
    return _xml_bytes(opml)


RENDERERS: dict[str, tuple[Callable[..., bytes], str]] = {
    "atom": (render_atom, f"{ATOM_TYPE}; charset=utf-8"),
    "rss": (render_rss, f"{RSS_TYPE}; charset=utf-8"),
    "json": (render_json, f"{JSON_TYPE}; charset=utf-8"),
}


# --- the common view of a story ------------------------------------------------------


def _view(story: Story, now: datetime) -> _EntryView:
    face = story.face
    published = _utc(face.published or story.sort_time)
    if published > _utc(face.first_seen) + _FUTURE_TOLERANCE:
        published = _utc(story.sort_time)
    updated = _utc(face.updated) if face.updated else published
    if updated > _utc(now) + _FUTURE_TOLERANCE:
        # Readers sort by it, and the feed's own <updated> is the latest of them.
        updated = published
    image = _clean_image(face.image)
    also = _other_sources(story)
    body = face.content or face.summary
    title = _clean(face.title) or _fallback_title(face.summary or face.content, face.link)
    content_html = (
        _clean(_figure(image, body) + body + _also_published_html(also))
        or f"<p>{html.escape(title)}</p>"
    )
    tags: dict[str, None] = {}
    for tag in story.tags:
        cleaned = _clean(tag)
        if cleaned:
            tags.setdefault(cleaned, None)
    return _EntryView(
        uid=_clean(story.uid),
        title=title,
        link=_clean(face.link) or None,
        published=published,
        updated=updated,
        author=_clean(face.author) or None,
        content_html=content_html,
        summary_html=(_clean(face.summary) or None) if face.content else None,
        tags=tuple(tags),
        enclosures=tuple(
            Enclosure(url=_clean(e.url), type=_clean(e.type) or None, length=e.length)
            for e in face.enclosures
            if _clean(e.url)
        ),
        image=image,
        source=_attribution(story.face),
        also_published_by=also,
    )


def _attribution(entry: StoredEntry) -> _Attribution:
    return _Attribution(
        title=_clean(entry.source_title) or _clean(entry.source),
        feed_url=_clean(entry.source_url) or None,
        site_url=_clean(entry.source_link) or None,
        link=_clean(entry.link) or None,
    )


def _other_sources(story: Story) -> tuple[_Attribution, ...]:
    """One attribution per other source that carried the story, in the store's order."""
    seen = {story.face.source}
    others: list[_Attribution] = []
    for copy in story.copies:
        if copy.source in seen:
            continue
        seen.add(copy.source)
        others.append(_attribution(copy))
    return tuple(others)


def _figure(image: Image | None, body: str) -> str:
    """The lead image as HTML, for readers that ignore media:content — unless the body shows one."""
    if image is None or not _is_web_url(image.url) or _IMG_TAG.search(body):
        return ""
    caption = image.caption or ""
    figcaption = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img src="{html.escape(image.url)}" alt="{html.escape(caption)}">'
        f"{figcaption}</figure>"
    )


def _also_published_html(others: Sequence[_Attribution]) -> str:
    names = [
        f'<a href="{html.escape(other.link)}">{html.escape(other.title)}</a>'
        if other.link and _is_web_url(other.link)
        else html.escape(other.title)
        for other in others
    ]
    return f"<p>Also published by: {', '.join(names)}</p>" if names else ""


def _fallback_title(html_text: str, link: str | None) -> str:
    """A title for an untitled entry (every format needs one): its first words, else its link."""
    text = _clean(html_to_text(html_text))
    if len(text) > _TITLE_FROM_TEXT_CHARS:
        text = text[:_TITLE_FROM_TEXT_CHARS].rsplit(" ", 1)[0] + "…"
    return text or _clean(link) or "Untitled"


def _clean_image(image: Image | None) -> Image | None:
    if image is None or not _clean(image.url):
        return None
    return Image(url=_clean(image.url), caption=_clean(image.caption) or None)


def _clean(text: str | None) -> str:
    """XML-safe text: lxml (so feedgen) raises on characters XML 1.0 forbids."""
    return strip_xml_illegal(text).strip() if text else ""


def _is_web_url(url: str) -> bool:
    """Whether a URL may go into HTML we write ourselves (no javascript:, data: …)."""
    try:
        return urlsplit(url).scheme.lower() in ("http", "https")
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # the model promises aware datetimes; never emit a naive one
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _feed_updated(views: Sequence[_EntryView], ctx: FeedContext) -> datetime:
    return max((view.updated for view in views), default=_utc(ctx.now))


# --- Atom and RSS through feedgen -----------------------------------------------------


def _feed_generator(feed: OutputFeed, views: Sequence[_EntryView], ctx: FeedContext) -> Any:
    fg = FeedGenerator()
    fg.load_extension("media")
    fg.id(ctx.feed_url(feed.name, "atom"))  # one stable id whichever format is read
    fg.title(_clean(feed.title) or feed.name)
    # RSS requires a channel description; Atom's subtitle shares feedgen's field.
    fg.description(_clean(feed.description) or _clean(feed.title) or feed.name)
    # feedgen defaults these to the wall clock, which would change the bytes on every render.
    fg.updated(_feed_updated(views, ctx))
    return fg


def _add_entry(fg: Any, view: _EntryView) -> Any:
    fe = fg.add_entry(order="append")
    fe.id(view.uid)  # also the RSS guid, isPermaLink="false"
    fe.title(view.title)
    fe.published(view.published)
    fe.updated(view.updated)
    fe.content(view.content_html, type="html")
    for tag in view.tags:
        fe.category(term=tag)
    if view.image:
        fe.media.content(url=view.image.url, medium="image", group=None)
        fe.media.thumbnail(url=view.image.url, group=None)
    return fe


def _add_atom_links(entry: Any, view: _EntryView) -> None:
    """The entry's links: feedgen 1.0 drops rel, type, title and length from entry links."""

    def link(rel: str, href: str, **attributes: str | None) -> None:
        element = etree.SubElement(entry, f"{{{_ATOM_NS}}}link", rel=rel, href=href)
        for name, value in attributes.items():
            if value:
                element.set(name, value)

    if view.link:
        link("alternate", view.link)
    for enclosure in view.enclosures:
        length = str(enclosure.length) if enclosure.length is not None else None
        link("enclosure", enclosure.url, type=enclosure.type, length=length)
    for other in view.also_published_by:
        if other.link and _is_web_url(other.link):
            link("related", other.link, title=other.title)


def _add_atom_source(entry: Any, source: _Attribution) -> None:
    """Atom <source>: feedgen writes only a title and an unlabelled link, so we write our own."""
    element = etree.SubElement(entry, f"{{{_ATOM_NS}}}source")
    if source.feed_url:
        etree.SubElement(element, f"{{{_ATOM_NS}}}id").text = source.feed_url
    etree.SubElement(element, f"{{{_ATOM_NS}}}title").text = source.title
    if source.site_url:
        etree.SubElement(element, f"{{{_ATOM_NS}}}link", rel="alternate", href=source.site_url)
    if source.feed_url:
        etree.SubElement(element, f"{{{_ATOM_NS}}}link", rel="self", href=source.feed_url)


def _add_media_description(entry: Any, image: Image | None) -> None:
    """The image caption as media:description (feedgen's media extension has no field for it)."""
    if image is None or not image.caption:
        return
    content = entry.find(f"{{{_MEDIA_NS}}}content")
    if content is not None:
        description = etree.SubElement(content, f"{{{_MEDIA_NS}}}description", type="plain")
        description.text = image.caption


def _xml_bytes(root: Any) -> bytes:
    data: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return data


# --- JSON Feed --------------------------------------------------------------------------


def _json_item(view: _EntryView) -> dict[str, Any]:
    item: dict[str, Any] = {"id": view.uid}
    if view.link:
        item["url"] = view.link
    item["title"] = view.title
    item["content_html"] = view.content_html
    if view.summary_html:
        summary = html_to_text(view.summary_html)  # JSON Feed's summary is plain text
        if summary:
            item["summary"] = summary
    if view.image:
        item["image"] = view.image.url
    item["date_published"] = _rfc3339(view.published)
    item["date_modified"] = _rfc3339(view.updated)
    if view.author:
        item["authors"] = [{"name": view.author}]
    if view.tags:
        item["tags"] = list(view.tags)
    if view.enclosures:
        item["attachments"] = [_json_attachment(e) for e in view.enclosures]
    # Extensions: JSON Feed reserves keys starting with "_" for them.
    item["_source"] = _json_source(view.source)
    if view.also_published_by:
        item["_also_published_by"] = [
            {key: value for key, value in (("title", o.title), ("url", o.link)) if value}
            for o in view.also_published_by
        ]
    return item


def _json_attachment(enclosure: Enclosure) -> dict[str, Any]:
    attachment: dict[str, Any] = {
        "url": enclosure.url,
        "mime_type": enclosure.type or _UNKNOWN_TYPE,  # required by JSON Feed
    }
    if enclosure.length is not None:
        attachment["size_in_bytes"] = enclosure.length
    return attachment


def _json_source(source: _Attribution) -> dict[str, str]:
    fields = (
        ("title", source.title),
        ("feed_url", source.feed_url),
        ("home_page_url", source.site_url),
    )
    return {key: value for key, value in fields if value}


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
