"""Finding a site's feeds from its HTML page: `<link rel="alternate" type="…feed type…">`.

Pure: the page's bytes and URL in, absolute feed URLs out, in the page's order. lxml's
HTML parser reads broken pages the way browsers do, without fetching anything.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urljoin, urlsplit

from lxml import etree, html

FEED_TYPES: Final = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",
        "application/rdf+xml",
    }
)
# Only the head matters, and a page is rarely larger than this before its <body>.
_HEAD_BYTES: Final = 512 * 1024
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head)\b", re.I | re.S)


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml") or bool(_HTML_START.match(body[:4096]))


def feed_links(body: bytes, page_url: str) -> tuple[str, ...]:
    """The feeds a page offers, as absolute http(s) URLs, first offered first."""
    if not body.strip():
        return ()
    parser = html.HTMLParser(no_network=True, recover=True, remove_comments=True)
    try:
        document = html.document_fromstring(body[:_HEAD_BYTES], parser=parser)
    except (etree.ParserError, ValueError):
        return ()
    base = page_url
    for element in document.iter("base"):
        href = (element.get("href") or "").strip()
        if href:
            base = urljoin(page_url, href)
            break
    found: dict[str, None] = {}
    for link in document.iter("link"):
        rel = {part.lower() for part in (link.get("rel") or "").split()}
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" not in rel or kind not in FEED_TYPES or not href:
            continue
        absolute = urljoin(base, href)
        if urlsplit(absolute).scheme in ("http", "https"):
            found.setdefault(absolute, None)
    return tuple(found)
