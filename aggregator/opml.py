"""OPML subscription lists: read (for `sources import`) and write (for `sources export`).

Pure: bytes in, candidates out; sources in, bytes out. lxml reads with a hardened
parser: no DTD loaded, no entity expanded, nothing fetched, no huge trees, so a
hostile list costs no more than its size. Reading is lenient where real exports are
sloppy (outlines without `text`, `xmlurl` in the wrong case, OPML 1.0 and the older
`outlineDocument` root) and strict where guessing would subscribe to the wrong thing:
a document that is not XML, or not OPML, is refused with the reason.

Folders (outlines that hold outlines but name no feed) become the categories of the
feeds inside them, every enclosing folder included; OPML 2.0's `category` attribute
("/Tech/Linux,/News") adds its path components too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Final

from lxml import etree

from aggregator.sanitize import strip_xml_illegal
from aggregator.sources import Candidate

# A subscription list is small; anything larger is a mistake or an attack.
MAX_BYTES: Final = 5_000_000
MAX_DEPTH: Final = 50
_ROOTS: Final = frozenset({"opml", "outlinedocument"})
_ENTITY_MARKERS: Final = tuple(
    "<!ENTITY".encode(codec) for codec in ("ascii", "utf-16-le", "utf-16-be")
)


class OpmlError(ValueError):
    """The document cannot be read as a subscription list; the message says why."""


@dataclass(frozen=True, slots=True)
class OpmlDocument:
    title: str | None
    feeds: tuple[Candidate, ...]
    not_feeds: int  # outlines that name no feed and hold none (notes, links, scripts)


@dataclass(frozen=True, slots=True)
class ExportedSource:
    name: str
    url: str
    title: str
    categories: tuple[str, ...] = ()


def _parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=False,
    )


def read_opml(data: bytes) -> OpmlDocument:
    """The feeds an OPML document lists, with their folders; OpmlError when it is none."""
    if len(data) > MAX_BYTES:
        raise OpmlError(f"larger than {MAX_BYTES // 1_000_000} MB: not a subscription list")
    if not data.strip():
        raise OpmlError("the file is empty")
    if any(marker in data.upper() for marker in _ENTITY_MARKERS):
        # Expanding entities is how a small file becomes gigabytes (billion laughs) or
        # reads local files; a subscription list has no use for them.
        raise OpmlError("declares XML entities (<!ENTITY …>): refused, an OPML list needs none")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        raise OpmlError(f"not well-formed XML: {_syntax_message(error)}") from None
    if root is None:
        raise OpmlError("not well-formed XML: no root element")
    tag = _local(root.tag)
    if tag.lower() not in _ROOTS:
        raise OpmlError(f"not an OPML document: the root element is <{tag}>, not <opml>")
    body = next((child for child in root if _local(child.tag).lower() == "body"), None)
    if body is None:
        raise OpmlError("no <body> element: an OPML subscription list keeps its feeds there")
    head = next((child for child in root if _local(child.tag).lower() == "head"), None)
    title = None
    if head is not None:
        found = next((c for c in head if _local(c.tag).lower() == "title"), None)
        title = _text(found.text) if found is not None else None
    feeds: list[Candidate] = []
    counts = {"not_feeds": 0}
    for outline in _outlines(body):
        _walk(outline, (), feeds, counts, depth=0)
    return OpmlDocument(title, tuple(feeds), counts["not_feeds"])


def _walk(
    outline: Any,
    folders: tuple[str, ...],
    feeds: list[Candidate],
    counts: dict[str, int],
    depth: int,
) -> None:
    if depth > MAX_DEPTH:
        raise OpmlError(f"outlines nested deeper than {MAX_DEPTH} levels")
    attributes = {key.lower(): value for key, value in outline.attrib.items()}
    label = _text(attributes.get("title")) or _text(attributes.get("text"))
    children = list(_outlines(outline))
    url = _text(attributes.get("xmlurl"))
    if url:
        categories = [*folders, *_category_attribute(attributes.get("category"))]
        feeds.append(Candidate(url, label, tuple(dict.fromkeys(categories))))
    elif not children:
        counts["not_feeds"] += 1
    if children:
        inner = (*folders, label) if label and not url else folders
        for child in children:
            _walk(child, inner, feeds, counts, depth + 1)


def _outlines(parent: Any) -> Iterator[Any]:
    return (child for child in parent if _local(child.tag).lower() == "outline")


def _category_attribute(value: str | None) -> list[str]:
    """OPML 2.0: "/Boston/Weather,/Harvard" → Boston, Weather, Harvard. Values that are
    tags of a service rather than folders ("/tag/x" from Inoreader) give their last part."""
    parts: list[str] = []
    for path in (value or "").split(","):
        pieces = [piece.strip() for piece in path.split("/") if piece.strip()]
        parts.extend(pieces)
    return parts


def _local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = " ".join(value.split())
    return cleaned or None


def _syntax_message(error: etree.XMLSyntaxError) -> str:
    message = str(error.msg or error).strip()
    line = error.lineno
    return f"{message} (line {line})" if line and f"line {line}" not in message else message


def write_opml(
    title: str, sources: Sequence[ExportedSource], *, now: datetime, generator: str
) -> bytes:
    """OPML 2.0: one folder per category (a source under its first), `category` listing
    all of a source's categories so that an import gives them all back."""
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = strip_xml_illegal(title)
    etree.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    etree.SubElement(head, "generator").text = strip_xml_illegal(generator)
    body = etree.SubElement(opml, "body")
    folders: dict[str, Any] = {}
    for source in sources:
        parent = body
        if source.categories:
            first = source.categories[0]
            parent = folders.get(first)
            if parent is None:
                parent = folders[first] = etree.SubElement(body, "outline", text=first, title=first)
        label = strip_xml_illegal(source.title) or source.name
        outline = etree.SubElement(
            parent, "outline", type="rss", text=label, title=label, xmlUrl=source.url
        )
        if source.categories:
            outline.set("category", ",".join(f"/{c}" for c in source.categories))
    data: bytes = etree.tostring(opml, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data
