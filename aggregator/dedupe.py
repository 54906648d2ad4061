"""Entry identity and story matching: how an entry is found again, and how copies meet.

An *entry* is one item of one source, found again on every poll by `entry_key`.
A *story* is the article several sources may carry. Copies meet in two ways:

- **Strong keys** (`story_keys`): the article's URL in a canonical form — the link,
  a feed proxy's original link, a guid that is a permalink — with tracking
  parameters, AMP and mobile variants and redirect wrappers taken off. One shared
  strong key makes two entries one story.
- **Candidate keys** (`candidate_keys`): the normalised title (only when specific
  enough), the text's first words, and MinHash bands of its shingles. A shared
  candidate key only makes two copies worth comparing: `same_story` then decides
  from their fingerprints, within a time window, and a generic title ("Editorial")
  never suffices on its own.

`place` is the decider the store runs for a document's new entries, once it has
looked their keys up. Everything here is a pure function of parsed values, so the
store only looks keys up in indexed tables and writes what `place` decided.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aggregator.fingerprint import (
    WINDOW,
    Fingerprint,
    candidate_keys,
    candidate_keys_of,
    contradicts,
    fingerprint,
    fingerprints,
    same_story,
)
from aggregator.model import ParsedEntry, pickled_by_fields

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
    path = (re.sub(r"/{2,}", "/", parts.path) if "//" in parts.path else parts.path) or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    # Most article URLs have no query: parse_qsl and urlencode were half of the cost.
    query = [
        (key, value)
        for key, value in (parse_qsl(parts.query, keep_blank_values=True) if parts.query else ())
        if key.lower() not in _TRACKING_PARAMS and not key.lower().startswith(_TRACKING_PREFIXES)
    ]
    return urlunsplit(("https", netloc, path, urlencode(sorted(query)) if query else "", ""))


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


# Query parameters that only ask for the AMP rendering of the same article.
_AMP_PARAMS = {"amp": None, "outputtype": "amp", "output": "amp", "usqp": None}
# Host prefixes of a site's AMP and mobile editions (amp.theguardian.com, m.dw.com).
_EDITION_HOSTS = ("amp.", "m.", "mobile.")
_AMP_CACHE = re.compile(r"^/[a-z]/(?:s/)?(?P<host>[^/]+)(?P<path>/.*)?$")
# Redirect wrappers that carry the article's URL in a query parameter: known ones by
# host and path, and any path that says it redirects.
_REDIRECTORS: dict[tuple[str, str], tuple[str, ...]] = {
    ("google.com", "/url"): ("q", "url"),
    ("l.facebook.com", "/l.php"): ("u",),
    ("lm.facebook.com", "/l.php"): ("u",),
    ("out.reddit.com", ""): ("url",),
    ("t.umblr.com", "/redirect"): ("z",),
}
_REDIRECT_PATH = re.compile(
    r"(?:^|/)(?:redirect|redir|out|outbound|click|away|exit|r)(?:/|\.php|$)"
)
_REDIRECT_PARAMS = ("url", "u", "q", "to", "target", "dest", "destination", "redirect", "link")


# Pure, and asked twice of most entries (their link and their permalink guid are one URL).
@lru_cache(maxsize=4096)
def article_url(url: str) -> str | None:
    """The form under which every copy of one article's URL compares equal, or None.

    On top of `canonical_url`: a redirect wrapper gives way to the URL it carries,
    a Google AMP cache URL to the page it caches, and AMP and mobile editions
    (`amp.`/`m.`/`mobile.` hosts, an `/amp` path segment, `.amp` before the
    extension, `?amp=1`, `?outputType=amp`) to the plain article. None when the URL
    cannot name one article: not absolute http(s), or a site's home page (feeds that
    link every item to their home page would otherwise merge all their items).
    """
    text = _unwrap_redirect(url.strip())
    canonical = canonical_url(text)
    if not canonical.startswith("https://"):
        return None
    parts = urlsplit(canonical)
    host, path = parts.netloc, parts.path
    if host.endswith(".cdn.ampproject.org"):
        cached = _AMP_CACHE.match(path)
        if cached:
            return article_url(f"https://{cached.group('host')}{cached.group('path') or '/'}")
    for prefix in _EDITION_HOSTS:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
            break
    segments = path.split("/")
    if len(segments) > 2 and segments[-1] == "amp":
        segments.pop()
    if len(segments) > 2 and segments[1] == "amp":
        del segments[1]
    if segments[-1].endswith(".amp"):
        segments[-1] = segments[-1][: -len(".amp")]
    if ".amp" in segments[-1]:
        segments[-1] = re.sub(r"\.amp(\.[a-z0-9]+)$", r"\1", segments[-1])
    path = "/".join(segments) or "/"
    query = [
        (key, value)
        for key, value in (parse_qsl(parts.query, keep_blank_values=True) if parts.query else ())
        if not (key.lower() in _AMP_PARAMS and _AMP_PARAMS[key.lower()] in (None, value.lower()))
    ]
    if path == "/" and not query:
        return None
    return urlunsplit(("https", host, path, urlencode(query) if query else "", ""))


def _unwrap_redirect(url: str) -> str:
    """The URL a redirect wrapper carries, unwrapped as often as it is nested (thrice at most)."""
    for _ in range(3):
        if "?" not in url:
            return url  # no query, nothing carried: most links
        try:
            parts = urlsplit(url)
        except ValueError:
            return url
        host = (parts.hostname or "").lower().removeprefix("www.")
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        names = _REDIRECTORS.get((host, parts.path)) or _REDIRECTORS.get((host, ""))
        if names is None and _REDIRECT_PATH.search(parts.path.lower()):
            names = _REDIRECT_PARAMS
        # parse_qsl has already percent-decoded the values once, as the redirector does.
        target = next(
            (
                params[name]
                for name in names or ()
                if params.get(name, "").lower().startswith(("http://", "https://"))
            ),
            None,
        )
        if target is None:
            return url
        url = target
    return url


def story_keys(entry: ParsedEntry) -> tuple[str, ...]:
    """The strong keys of an entry: any one shared with another entry makes them one story.

    The article URL (`article_url`) of a feed proxy's original link, of the link,
    and of the guid when it is a permalink: WordPress gives `https://site/?p=123` as
    guid and the pretty URL as link, so the `?p=` links other sites copy meet the
    pretty ones through the copy that carries both. A guid with a fragment is left
    out: `https://site/feed#item-3` says nothing about the article's address.
    """
    keys: dict[str, None] = {}
    candidates = [entry.orig_link, entry.link]
    if entry.guid and "#" not in entry.guid:
        candidates.append(entry.guid)
    for link in candidates:
        if link:
            article = article_url(link)
            if article is not None:
                keys.setdefault("url:" + article, None)
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored copy that shares a candidate key with a new entry."""

    story_id: int
    fingerprint: Fingerprint


@dataclass(frozen=True, slots=True)
class Newcomer:
    """A new entry of one document, with what matching knows about it."""

    strong: tuple[str, ...]
    candidate_keys: tuple[int, ...]
    fingerprint: Fingerprint


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one new entry goes: an existing story, or the new story of an entry of its
    own document (`founder`, its index; its own index when it starts the story).

    `how` says why: "key" (a shared strong key), "title+text", "title" or "text"
    (`same_story`'s reason), "new" (it starts a story).
    """

    how: str
    story_id: int | None = None
    founder: int | None = None


@dataclass(frozen=True, slots=True)
class Placements:
    """`place`'s decision for a document: one placement per new entry, and the strong keys
    the index gains — each naming an existing story or a founder's new one."""

    placements: tuple[Placement, ...]
    keys_to_story: Mapping[str, int]
    keys_to_founder: Mapping[str, int]


def place(
    newcomers: Sequence[Newcomer],
    key_owner: Mapping[str, int],
    candidates: Mapping[int, Sequence[Candidate]],
    own_stories: Iterable[int],
) -> Placements:
    """Decide the story of each new entry of one document, in document order.

    `key_owner` maps the strong keys the index already holds to their story;
    `candidates` maps candidate keys to stored copies of *other* sources within the
    time window; `own_stories` are stories already holding a copy of this source.

    A shared strong key decides, in key order. Otherwise the candidates sharing the
    most candidate keys are compared with `same_story`, nearest in time first; the
    first whose text confirms it wins, and a title alone decides only when it leads
    to a single story. A story that already holds a copy of this source is never
    joined this way, since a source does not republish itself and its own template
    texts and series titles are where lookalikes live. Otherwise the entry starts a
    story, and later entries of the document may join it by a strong key.
    """
    owner = dict(key_owner)
    founded_by: dict[str, int] = {}
    to_story: dict[str, int] = {}
    taken = set(own_stories)
    placements: list[Placement] = []
    for index, item in enumerate(newcomers):
        story = next((owner[key] for key in item.strong if key in owner), None)
        founder = next((founded_by[key] for key in item.strong if key in founded_by), None)
        if story is not None:
            placement = Placement("key", story_id=story)
        elif founder is not None:
            placement = Placement("key", founder=founder)
        else:
            placement = _fuzzy_placement(item, candidates, taken) or Placement("new", founder=index)
        placements.append(placement)
        if placement.story_id is not None:
            taken.add(placement.story_id)
            if placement.how == "title":
                # A join on the title alone is the least certain: the entry's links must not
                # become ways in to the story, or one wrong guess would pull in every copy
                # of the other article.
                continue
            for key in item.strong:
                if key not in owner and key not in founded_by:
                    owner[key] = placement.story_id
                    to_story[key] = placement.story_id
        else:
            assert placement.founder is not None
            for key in item.strong:
                if key not in owner:
                    founded_by.setdefault(key, placement.founder)
    return Placements(tuple(placements), to_story, founded_by)


def _fuzzy_placement(
    item: Newcomer, candidates: Mapping[int, Sequence[Candidate]], taken: set[int]
) -> Placement | None:
    shared: dict[int, int] = {}
    copies: dict[int, list[Candidate]] = {}
    for key in item.candidate_keys:
        for candidate in candidates.get(key, ()):
            if candidate.story_id in taken:
                continue
            shared[candidate.story_id] = shared.get(candidate.story_id, 0) + 1
            copies.setdefault(candidate.story_id, []).append(candidate)
    at = item.fingerprint.at
    ranked = sorted(
        shared,
        key=lambda story: (
            -shared[story],
            min(abs(c.fingerprint.at - at) for c in copies[story]),
            story,
        ),
    )
    title_only: list[int] = []
    for story in ranked:
        reasons = {same_story(item.fingerprint, c.fingerprint) for c in copies[story]}
        for reason in ("title+text", "text"):
            if reason in reasons:
                return Placement(reason, story_id=story)
        if "title" in reasons and not any(
            contradicts(item.fingerprint, c.fingerprint) for c in copies[story]
        ):
            title_only.append(story)
    # A title that nothing in the texts confirms names one story only if it names just one,
    # and none of that story's copies has the same title over a clearly different text:
    # two sites' different articles under one headline make it ambiguous.
    if len(title_only) == 1:
        return Placement("title", story_id=title_only[0])
    return None


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


# The time a prepared fingerprint carries until the store knows when the entry was first
# seen (`at` is the effective published time, which a date far ahead cannot be).
UNPLACED = datetime(1970, 1, 1, tzinfo=UTC)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PreparedEntry:
    """An entry with everything that follows from it alone: its key and content hash,
    its strong keys, its fingerprint (whose `at` is UNPLACED: the store gives it the
    effective time) and candidate keys. Computed in the parser worker that parsed the
    entry, so the writer only looks keys up and writes."""

    entry: ParsedEntry
    key: str
    content_hash: str
    story_keys: tuple[str, ...]
    fingerprint: Fingerprint
    candidate_keys: tuple[int, ...]


def prepare(entries: Iterable[ParsedEntry]) -> tuple[PreparedEntry, ...]:
    """A document's entries, later repeats of a key dropped, each with what `PreparedEntry`
    holds. Pure: the same entries give the same values whichever parser made them."""
    unique = unique_entries(entries)
    prints = fingerprints([(entry, UNPLACED) for entry in unique])
    keys = candidate_keys_of(prints)
    return tuple(
        PreparedEntry(
            entry=entry,
            key=entry_key(entry),
            content_hash=entry_hash(entry),
            story_keys=story_keys(entry),
            fingerprint=print_,
            candidate_keys=candidate,
        )
        for entry, print_, candidate in zip(unique, prints, keys, strict=True)
    )


def story_uid(source: str, key: str) -> str:
    """The output id of a story first seen as entry `key` of `source`; stable by construction."""
    return "urn:uuid:" + str(uuid.uuid5(_STORY_NAMESPACE, f"{source}\x00{key}"))


def _digest(parts: list[object]) -> str:
    encoded = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


__all__ = [
    "WINDOW",
    "Candidate",
    "Fingerprint",
    "Newcomer",
    "Placement",
    "Placements",
    "PreparedEntry",
    "article_url",
    "candidate_keys",
    "canonical_url",
    "entry_hash",
    "entry_key",
    "fingerprint",
    "place",
    "prepare",
    "same_story",
    "story_keys",
    "story_uid",
    "unique_entries",
]
