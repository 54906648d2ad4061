"""The fast path for XML feeds: strictly well-formed RSS 2.0, RSS 1.0 and Atom 1.0.

`parse_fast` reads a document with lxml's strict parser (no recovery, no DTD, no
entities, no network) and walks the tree the way feedparser's handlers would,
building the same entry and feed mappings that `parse` normalises. Whatever it is
not sure to read exactly as feedparser does, it refuses (returns None), and
`parse.parse_document` hands the document to feedparser: documents that are not
well-formed, other encodings, DTDs, `xml:base`, XHTML or base64 text constructs,
duplicated single-valued elements, and any element of a namespace feedparser gives
meaning to that this walker does not handle (iTunes, Dublin Core titles, media
titles…). The differential test in tests/test_fastparse.py holds the two paths to
the same normalised entries over the shared and benchmark corpora.

Why not fastfeedparser, the obvious library for this: on well-formed documents of
the shared corpus its ids differ from feedparser's for about one entry in ten (it
makes the link the id where there is none, and does not resolve permalink guids),
it copies `updated` into `published`, reads `dc:date` as the published date and
keeps RSS `<author>` e-mail addresses in the name. Those are entry identity and
dates: correcting them needs this same tree walk, after which fastfeedparser would
add a second parse of every document and nothing else.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any, Final

from feedparser.datetimes import _parse_date as feedparser_parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin
from lxml import etree

from aggregator.sanitize import joins_to_itself

ATOM_NS: Final = "http://www.w3.org/2005/Atom"
RSS10_NS: Final = "http://purl.org/rss/1.0/"
RDF_NS: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDF_ABOUT: Final = f"{{{RDF_NS}}}about"

# feedparser reads elements of these namespaces as if they had no prefix (it
# compares namespaces lower-cased).
_PLAIN_NAMESPACES: Final = frozenset(
    {
        "",
        "http://backend.userland.com/rss",
        "http://blogs.law.harvard.edu/tech/rss",
        RSS10_NS,
        ATOM_NS.lower(),
    }
)
# Namespaces, by feedparser's prefix, whose elements this walker reads.
_KNOWN_NAMESPACES: Final = {
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://search.yahoo.com/mrss/": "media",
    "http://search.yahoo.com/mrss": "media",
    "http://rssnamespace.org/feedburner/ext/1.0": "feedburner",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://purl.org/rss/1.0/modules/slash/": "slash",
    "http://wellformedweb.org/commentapi/": "wfw",
    "http://purl.org/syndication/thread/1.0": "thr",
    "http://www.georss.org/georss": "georss",
    "http://www.w3.org/2003/01/geo/wgs84_pos#": "geo",
}
# Prefixes feedparser gives meaning to: an element of a namespace it does not know
# but written with one of these prefixes would reach one of its handlers.
_FEEDPARSER_PREFIXES: Final = frozenset(
    {
        "admin",
        "cc",
        "content",
        "creativecommons",
        "dc",
        "dcterms",
        "feedburner",
        "georss",
        "gml",
        "itunes",
        "media",
        "psc",
        "rdf",
        "sy",
        "xhtml",
        "atom",
    }
)

# Entry elements that only feed keys `parse` never reads: skipped with their content.
_HARMLESS_ENTRY: Final = frozenset(
    {
        ("", "comments"),
        ("", "rights"),
        ("", "copyright"),
        ("", "contributor"),
        ("", "source"),
        ("slash", "comments"),
        ("slash", "department"),
        ("slash", "section"),
        ("slash", "hit_parade"),
        ("wfw", "comment"),
        ("wfw", "commentrss"),
        ("thr", "total"),
        ("thr", "in-reply-to"),
        ("georss", "point"),
        ("geo", "lat"),
        ("geo", "long"),
    }
)
# Of those, the ones whose children feedparser reads into contexts of their own.
_HARMLESS_CONTAINERS: Final = frozenset(
    {("", "source"), ("", "contributor"), ("", "rights"), ("", "copyright")}
)
# Media RSS elements feedparser stores under keys of their own.
_HARMLESS_MEDIA: Final = frozenset(
    {
        "credit",
        "rating",
        "restriction",
        "license",
        "player",
        "copyright",
        "hash",
        "text",
        "embed",
        "status",
        "community",
        "statistics",
        "starrating",
        "tags",
        "price",
        "scenes",
        "peerlink",
        "location",
        "subtitle",
        "backlinks",
    }
)
# Elements that may appear once per entry: feedparser's rules for repeats differ by
# element (first non-empty title, last summary, deepest media description…).
_SINGLE: Final = frozenset(
    {
        "title",
        "link-text",
        "summary",
        "id",
        "author",
        "published",
        "updated",
        "media_description",
        "feedburner_origlink",
    }
)
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES: Final = frozenset({"text/plain", "text/html"})
# feedparser's own fix of `?a=1&b=2` links that an HTML-minded publisher escaped twice.
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
# feedparser's e-mail pattern for "jo@example.com (Jo Smith)" authors (mixin.py).
_EMAIL = re.compile(
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)
_XML_MEDIA_TYPES: Final = frozenset(
    {"application/xml", "text/xml", "application/rss+xml", "application/atom+xml"}
)
_C1 = re.compile("[\x80-\x9f]")
_looks_like_html: Callable[[str], bool] = _FeedParserMixin.looks_like_html


class Refused(Exception):
    """The fast path cannot vouch for reading this document as feedparser would."""


_parsers = threading.local()


def _strict_parser() -> etree.XMLParser:
    # One parser per thread: lxml parser objects must not be shared between threads.
    parser = getattr(_parsers, "strict", None)
    if parser is None:
        parser = etree.XMLParser(
            recover=False,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        _parsers.strict = parser
    return parser


def parse_fast(
    body: bytes, *, url: str, content_type: str | None, max_entries: int
) -> tuple[str, dict[str, Any], list[dict[str, Any]]] | None:
    """(version, feed mapping, entry mappings) as feedparser would give them, or None.

    None means "refused": the caller must parse the document with feedparser.
    """
    if not _eligible_content_type(content_type):
        return None
    try:
        root = etree.fromstring(body, _strict_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    tree = root.getroottree()
    if tree.docinfo.doctype or (tree.docinfo.encoding or "").upper() != "UTF-8":
        return None
    if b"xml:base" in body:
        return None
    try:
        return _read(root, url, max_entries)
    except Refused:
        return None


def _eligible_content_type(content_type: str | None) -> bool:
    if content_type is None:
        return True
    kind, _, params = content_type.partition(";")
    kind = kind.strip().lower()
    if kind not in _XML_MEDIA_TYPES and not (kind.startswith("application/") and "+xml" in kind):
        return False
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower()
    if kind == "text/xml" and not charset:
        return False  # RFC 3023 says us-ascii; feedparser then guesses: not ours to copy
    return charset in ("", "utf-8", "utf8")


def _read(
    root: Any, url: str, max_entries: int
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    tag = root.tag
    if tag == "rss":
        if root.get("version") != "2.0":
            raise Refused("only RSS 2.0")
        channels = [child for child in root if child.tag == "channel"]
        if len(channels) != 1 or len(root) != 1:
            raise Refused("rss must hold exactly one channel")
        channel = channels[0]
        items = [child for child in channel if child.tag == "item"]
        if sum(1 for _ in root.iter("item")) != len(items):
            raise Refused("items outside the channel")
        version, atom = "rss20", False
    elif tag == f"{{{ATOM_NS}}}feed":
        channel = root
        items = [child for child in root if child.tag == f"{{{ATOM_NS}}}entry"]
        if sum(1 for _ in root.iter(f"{{{ATOM_NS}}}entry")) != len(items):
            raise Refused("nested entries")
        version, atom = "atom10", True
    elif tag == f"{{{RDF_NS}}}RDF":
        channels = [child for child in root if child.tag == f"{{{RSS10_NS}}}channel"]
        if len(channels) != 1:
            raise Refused("RSS 1.0 needs one channel")
        channel = channels[0]
        items = [child for child in root if child.tag == f"{{{RSS10_NS}}}item"]
        if sum(1 for _ in root.iter(f"{{{RSS10_NS}}}item")) != len(items):
            raise Refused("items inside other elements")
        version, atom = "rss10", False
    else:
        raise Refused(f"root element {tag}")
    feed = _feed(channel, url, atom)
    entries = [_entry(item, url, atom) for item in items[:max_entries]]
    return version, feed, entries


# -- element names as feedparser sees them ------------------------------------------


def _name(element: Any) -> tuple[str, str]:
    """(feedparser prefix, lower-cased local name); prefix "?" for unknown namespaces."""
    tag = element.tag
    if not isinstance(tag, str):
        raise Refused("entity reference")
    name = _known_name(tag)
    if name is not None:
        return name
    if element.prefix is None or element.prefix.lower() in _FEEDPARSER_PREFIXES:
        raise Refused(f"element {tag} of an unknown namespace")
    return "?", tag.partition("}")[2].lower()


@functools.lru_cache(maxsize=1024)
def _known_name(tag: str) -> tuple[str, str] | None:
    # A feed repeats a few dozen tags in every entry: split each one once.
    if tag[0] != "{":
        return "", tag.lower()
    namespace, _, local = tag[1:].partition("}")
    lowered = namespace.lower()
    if lowered in _PLAIN_NAMESPACES:
        return "", local.lower()
    prefix = _KNOWN_NAMESPACES.get(lowered)
    return None if prefix is None else (prefix, local.lower())


def _attrs(element: Any) -> dict[str, str]:
    """Attributes as feedparser normalises them: names lower-cased, rel and type values too."""
    found: dict[str, str] = {}
    for key, value in element.attrib.items():
        if key[0] == "{":
            continue  # thr:count, xml:lang…: feedparser keeps them under keys never read
        name = key.lower()
        found[name] = value.lower() if name in ("rel", "type") else value
    return found


def _text(element: Any, base: str | None = None) -> str:
    """An element's text as feedparser's pop() returns it, for a text-only element;
    with `base`, resolved against it first, as feedparser does for URL elements."""
    text = _raw(element)
    if text and base is not None:
        text = _join(base, text)
    return _repair(text)


def _join(base: str, uri: str) -> str:
    """feedparser's _urljoin; most feeds' URLs are absolute already, and then it cannot
    change them (its slash fix-up included: that needs "://" followed by "/")."""
    if joins_to_itself(uri, base):
        return uri
    result: str = _urljoin(base, uri)
    return result


def _raw(element: Any) -> str:
    if len(element):
        raise Refused("markup inside a text element")
    return (element.text or "").strip()


def _repair(text: str) -> str:
    """feedparser's last two steps on every text: undo UTF-8 read as Latin-1, then map
    C1 controls to the Windows-1252 characters they stand for."""
    if text.isascii():
        return text  # both steps leave ASCII alone; the check is far cheaper than they are
    try:  # not contextlib.suppress: its Python-level enter and exit cost a third of this
        repaired = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        repaired = text
    # str.translate with a dict walks every character in Python-level lookups.
    return repaired.translate(_cp1252) if _C1.search(repaired) else repaired


def _content_type(attrs: dict[str, str], default: str) -> str:
    if "mode" in attrs or "src" in attrs:
        raise Refused("Atom 0.3 mode or out-of-line content")
    kind: str = _FeedParserMixin.map_content_type(attrs.get("type", default))
    if kind not in _TEXT_TYPES:
        raise Refused(f"text construct of type {kind}")
    return kind


def _text_construct(
    element: Any, default: str, atom: bool, base: str
) -> tuple[str, dict[str, Any]]:
    kind = _content_type(_attrs(element), default)
    raw = _raw(element)
    # Without "<" or "&" feedparser's test cannot find markup: its regexes need one.
    if not atom and kind == "text/plain" and ("<" in raw or "&" in raw) and _looks_like_html(raw):
        kind = "text/html"
    value = _repair(raw)
    return value, {"type": kind, "language": None, "base": base, "value": value}


# -- feed level ----------------------------------------------------------------------

_FEED_TITLE: Final = frozenset({("", "title"), ("dc", "title")})
_FEED_SUBTITLE: Final = frozenset(
    {("", "description"), ("", "subtitle"), ("", "tagline"), ("dc", "description")}
)
# Channel elements whose content feedparser stores where `parse` looks for the title,
# home page or description, under rules this walker does not copy.
_FEED_REFUSED: Final = frozenset(
    {
        ("", "info"),
        ("", "abstract"),
        ("", "summary"),
        ("", "content"),
        ("media", "title"),
        ("media", "description"),
    }
)
# Channel elements feedparser reads into contexts of their own (image, text input,
# the feed's authors), never into the feed's title, home page or description.
_FEED_CONTEXTS: Final = frozenset(
    {"image", "textinput", "author", "contributor", "managingeditor", "webmaster"}
)
# iTunes subtitles and summaries: feedparser makes them the feed's subtitle or
# summary, which changes where a later <description> goes.
_ITUNES_SUMMARIES: Final = frozenset(
    f"{{{namespace}}}{local}"
    for namespace in (
        "http://www.itunes.com/dtds/podcast-1.0.dtd",
        "http://example.com/dtds/podcast-1.0.dtd",
    )
    for local in ("subtitle", "summary")
)


def _feed(channel: Any, url: str, atom: bool) -> dict[str, Any]:
    feed: dict[str, Any] = {}
    seen: set[str] = set()
    feed_id: str | None = None
    for child in channel:
        if not isinstance(child.tag, str):
            continue
        try:
            name = _name(child)
        except Refused:
            # Other namespaces at channel level only matter where they name the feed.
            if child.tag.lower() in _ITUNES_SUMMARIES:
                raise
            continue
        if name in _FEED_REFUSED:
            raise Refused(f"channel element {name}")
        if name in (("", "item"), ("", "entry"), ("", "items")):
            continue
        if name[0] == "" and name[1] in _FEED_CONTEXTS:
            continue  # feedparser reads what these hold into contexts of their own
        if len(child) > 0 and next(_plain_descendant(child), None) is not None:
            raise Refused(f"feed-level element {child.tag} holds feed elements")
        if name == ("", "id"):
            _once(seen, "id")
            feed_id = _text(child, url)
        elif name in _FEED_TITLE:
            _once(seen, "title")
            value, detail = _text_construct(child, "text/plain", atom, url)
            feed["title"], feed["title_detail"] = value, detail
        elif name in _FEED_SUBTITLE:
            _once(seen, "subtitle")
            default = "text/html" if name[1] == "description" else "text/plain"
            value, detail = _text_construct(child, default, atom, url)
            feed["subtitle"], feed["subtitle_detail"] = value, detail
        elif name == ("", "link"):
            _link(child, feed, url, seen, entry=False)
        elif name == ("", "ttl"):
            feed["ttl"] = _text(child)
        elif name == ("sy", "updateperiod"):
            feed["sy_updateperiod"] = _text(child)
        elif name == ("sy", "updatefrequency"):
            feed["sy_updatefrequency"] = _text(child)
    if feed_id is not None:
        feed.setdefault("link", feed_id)  # feedparser's guid-is-link rule, feed level too
    return feed


def _plain_descendant(element: Any) -> Any:
    for descendant in element.iterdescendants():
        tag = descendant.tag
        if isinstance(tag, str) and (
            tag[0] != "{" or tag[1:].partition("}")[0].lower() in _PLAIN_NAMESPACES
        ):
            yield descendant


def _once(seen: set[str], key: str) -> None:
    if key in seen:
        raise Refused(f"repeated {key}")
    seen.add(key)


def _link(element: Any, context: dict[str, Any], base: str, seen: set[str], *, entry: bool) -> None:
    """feedparser's _start_link: Atom links by attribute, RSS links by text."""
    attrs = _attrs(element)
    rel = attrs.setdefault("rel", "alternate")
    attrs.setdefault("type", "application/atom+xml" if rel == "self" else "text/html")
    href = attrs.pop("url", None) or attrs.pop("uri", None) or attrs.get("href")
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = _join(base, href)
        context.setdefault("links", []).append(attrs)
        kind = _FeedParserMixin.map_content_type(attrs.get("type") or "")
        if rel == "alternate" and kind in _HTML_TYPES:
            context["link"] = attrs["href"]
        return
    _once(seen, "link-text")
    value = _text(element, base)
    if entry:  # feedparser undoes an escaped `&amp;` in entry links only
        value = value.replace("&amp;", "&")
    context["link"] = _LINK_ENTITY.sub(r"&\g<1>", value)


# -- entries ---------------------------------------------------------------------------


def _entry(item: Any, url: str, atom: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    about = item.get(_RDF_ABOUT)
    if about:
        entry["id"] = about
    guid_is_link = False
    for child in item:
        if not isinstance(child.tag, str):
            continue
        name = _name(child)
        prefix, local = name
        if prefix == "?":
            if len(child):
                raise Refused(f"element {child.tag} of an unknown namespace holds elements")
            continue
        if name in _HARMLESS_ENTRY:
            if len(child) and name not in _HARMLESS_CONTAINERS:
                raise Refused(f"entry element {child.tag} holds elements")
            continue
        if prefix == "":
            guid_is_link = _plain_element(child, local, entry, seen, url, atom) or guid_is_link
        elif prefix == "content" and local == "encoded":
            _content(child, entry, "text/html", url, atom)
        elif prefix == "dc":
            _dc_element(child, local, entry, seen, url)
        elif prefix == "media":
            _media_element(child, local, entry, seen, url)
        elif prefix == "feedburner" and local == "origlink":
            _once(seen, "feedburner_origlink")
            entry["feedburner_origlink"] = _text(child)
        else:
            raise Refused(f"entry element {name}")
    if guid_is_link:
        entry.setdefault("link", entry["id"])
    return entry


def _plain_element(
    child: Any, local: str, entry: dict[str, Any], seen: set[str], url: str, atom: bool
) -> bool:
    """One element without prefix; True when it is a guid that doubles as the link."""
    if local == "title":
        _once(seen, "title")
        entry["title"], entry["title_detail"] = _text_construct(child, "text/plain", atom, url)
    elif local in ("description", "summary"):
        _once(seen, "summary")
        default = "text/html" if local == "description" else "text/plain"
        entry["summary"], entry["summary_detail"] = _text_construct(child, default, atom, url)
    elif local == "content":
        _content(child, entry, "text/plain", url, atom)
    elif local == "link":
        _link(child, entry, url, seen, entry=True)
    elif local in ("guid", "id"):
        _once(seen, "id")
        is_link = _attrs(child).get("ispermalink", "true") == "true"
        entry["id"] = _text(child, url if is_link else None)
        return is_link
    elif local in ("pubdate", "published", "issued"):
        _once(seen, "published")
        entry["published_parsed"] = feedparser_parse_date(_text(child))
    elif local in ("updated", "modified"):
        _once(seen, "updated")
        entry["updated_parsed"] = feedparser_parse_date(_text(child))
    elif local == "author":
        _author(child, entry, seen, atom)
    elif local == "category":
        _category(child, entry)
    elif local == "enclosure":
        _enclosure(child, entry)
    else:
        raise Refused(f"entry element {local}")
    return False


def _dc_element(child: Any, local: str, entry: dict[str, Any], seen: set[str], url: str) -> None:
    if local == "creator":
        _author(child, entry, seen, atom=False)
    elif local == "date":
        _once(seen, "updated")
        entry["updated_parsed"] = feedparser_parse_date(_text(child))
    elif local == "subject":
        _category(child, entry)
    else:
        raise Refused(f"dc:{local}")


def _content(child: Any, entry: dict[str, Any], default: str, url: str, atom: bool) -> None:
    kind = _content_type(_attrs(child), default)
    value = _text(child)
    entry.setdefault("content", []).append(
        {"type": kind, "language": None, "base": url, "value": value}
    )
    # feedparser's _end_content: text or HTML content stands in for a missing summary.
    entry.setdefault("summary", value)


def _author(child: Any, entry: dict[str, Any], seen: set[str], atom: bool) -> None:
    _once(seen, "author")
    if len(child):
        # Atom's <author><name/><email/><uri/></author>.
        detail: dict[str, str] = {}
        for part in child:
            if not isinstance(part.tag, str):
                continue
            prefix, local = _name(part)
            if prefix != "" or local not in ("name", "email", "uri"):
                raise Refused(f"author element {part.tag}")
            if local in detail:
                raise Refused("repeated author detail")
            detail[local] = _text(part)
        if (child.text or "").strip():
            raise Refused("text beside author elements")
        entry["author_detail"] = detail
        return
    # feedparser's _sync_author_detail: "jo@example.com (Jo Smith)" is an e-mail and a name.
    author = _text(child)
    entry["author"] = author
    if not author:
        return
    email = None
    match = _EMAIL.search(author)
    if match:
        email = match.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "")
        author = author.replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    detail = {}
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email
    if detail:
        entry["author_detail"] = detail


def _category(child: Any, entry: dict[str, Any]) -> None:
    """feedparser's _start_category and _end_category, tags deduplicated as it does."""
    attrs = _attrs(child)
    tags: list[dict[str, str | None]] = entry.setdefault("tags", [])
    _add_tag(tags, attrs.get("term"), attrs.get("scheme", attrs.get("domain")), attrs.get("label"))
    value = _text(child)
    if not value:
        return
    if tags and not tags[-1]["term"]:
        tags[-1]["term"] = value
    else:
        _add_tag(tags, value, None, None)


def _add_tag(
    tags: list[dict[str, str | None]], term: str | None, scheme: str | None, label: str | None
) -> None:
    if not (term or scheme or label):
        return
    value = {"term": term, "scheme": scheme, "label": label}
    if value not in tags:
        tags.append(value)


def _enclosure(child: Any, entry: dict[str, Any]) -> None:
    if len(child):
        raise Refused("enclosure with children")
    attrs = _attrs(child)
    href = attrs.pop("url", None) or attrs.pop("uri", None) or attrs.get("href")
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    attrs["rel"] = "enclosure"
    entry.setdefault("links", []).append(attrs)


def _media_element(child: Any, local: str, entry: dict[str, Any], seen: set[str], url: str) -> None:
    if local == "content":
        entry.setdefault("media_content", []).append(_attrs(child))
        _media_children(child, entry, seen, url)
    elif local == "thumbnail":
        attrs = _attrs(child)
        text = _text(child, url)
        if text and "url" not in attrs:
            attrs["url"] = text
        entry.setdefault("media_thumbnail", []).append(attrs)
    elif local == "description":
        _once(seen, "media_description")
        entry["media_description"] = _text(child)
    elif local == "group":
        _media_children(child, entry, seen, url)
    elif local in _HARMLESS_MEDIA:
        return
    else:
        raise Refused(f"media:{local}")


def _media_children(parent: Any, entry: dict[str, Any], seen: set[str], url: str) -> None:
    if (parent.text or "").strip():
        raise Refused("text inside a media container")
    for child in parent:
        if not isinstance(child.tag, str):
            continue
        prefix, local = _name(child)
        if prefix != "media":
            raise Refused(f"{child.tag} inside a media container")
        _media_element(child, local, entry, seen, url)
