"""Entry identity and story keys: how an entry is found again, and how copies meet.

An *entry* is one item of one source, found again on every poll by `entry_key`.
A *story* is the article several sources may carry; entries whose `story_keys`
overlap belong to the same story. Everything here is a pure function of parsed
values, so the store only has to look keys up in an index.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aggregator.model import ParsedEntry

# Query parameters that only say where a click came from; removing them never changes
# the article. Prefix match for the utm_ family, exact match for the rest.
_TRACKING_PREFIXES = ("utm_", "mtm_", "pk_")
_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "_hsenc",
        "_hsmi",
        "ref_src",
        "cmpid",
        "ocid",
        "ito",
        "xtor",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

# A stable namespace so that story uids are reproducible from the first copy's identity.
_STORY_NAMESPACE = uuid.UUID("5b0c3a64-3f7e-4f55-9a8d-6a4e0f2c9d11")


def canonical_url(url: str) -> str:
    """The form of an article URL under which republished copies compare equal.

    Scheme is folded to https (sites serve the same page on both), the host is
    lower-cased with `www.` and the default port removed, the fragment and a
    trailing slash are dropped, tracking parameters are removed and the rest sorted.
    Returns the input stripped when it is not an absolute http(s) URL.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return text
    host = parts.hostname.lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets, or the port would merge into it
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", parts.path) or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _TRACKING_PARAMS and not key.lower().startswith(_TRACKING_PREFIXES)
    ]
    return urlunsplit(("https", netloc, path, urlencode(sorted(query)), ""))


def entry_key(entry: ParsedEntry) -> str:
    """How this entry is recognised on the next poll of the same source.

    The feed's own id when it has one, else its link, else a hash of what it says.
    The prefix keeps the three spaces apart, so an id that looks like a link never
    collides with a link.
    """
    if entry.guid:
        return "id:" + entry.guid
    if entry.link:
        return "link:" + entry.link
    return "hash:" + _digest([entry.title, entry.summary, entry.content])


def entry_hash(entry: ParsedEntry) -> str:
    """A digest of everything the outputs show of an entry; equal hashes mean unchanged."""
    return _digest(
        [
            entry.guid,
            entry.link,
            entry.title,
            entry.summary,
            entry.content,
            entry.author,
            entry.published.isoformat() if entry.published else None,
            entry.updated.isoformat() if entry.updated else None,
            list(entry.tags),
            [[e.url, e.type, e.length] for e in entry.enclosures],
            [entry.image.url, entry.image.caption] if entry.image else None,
            entry.orig_link,
        ]
    )


def story_keys(entry: ParsedEntry) -> tuple[str, ...]:
    """Keys that, shared by two entries, make them one story.

    For now: the canonical form of the article link and of a feed proxy's original
    link. Deeper matching (titles, text fingerprints) adds key kinds here.
    """
    keys: dict[str, None] = {}
    for link in (entry.orig_link, entry.link):
        if link:
            canonical = canonical_url(link)
            if canonical.startswith("https://"):
                keys.setdefault("url:" + canonical, None)
    return tuple(keys)


def unique_entries(entries: Iterable[ParsedEntry]) -> tuple[ParsedEntry, ...]:
    """Drop later entries whose key repeats one earlier in the same document."""
    seen: set[str] = set()
    kept: list[ParsedEntry] = []
    for entry in entries:
        key = entry_key(entry)
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return tuple(kept)


def story_uid(source: str, key: str) -> str:
    """The output id of a story first seen as entry `key` of `source`; stable by construction."""
    return "urn:uuid:" + str(uuid.uuid5(_STORY_NAMESPACE, f"{source}\x00{key}"))


def _digest(parts: list[object]) -> str:
    encoded = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()
