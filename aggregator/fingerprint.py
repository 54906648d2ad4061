"""What fuzzy story matching compares of a copy: its title, its text, its time.

A `Fingerprint` is computed once per entry from parsed values and stored; two copies
that share a candidate key (`candidate_keys`: the specific title, the text's first
words, MinHash bands) are compared by `same_story`, which says why they are one
story or returns None. Pure functions only: `dedupe.place` and the store build on them.

Text similarity is MinHash over word 3-shingles (datasketch 2.0's `MinHash` with
its "affine32" scheme and a pinned seed, computed here for a whole document at once
with numpy, bit for bit the same, so stored signatures stay comparable across
releases). MinHash rather than SimHash because summaries are short: one edited word
in a 30-word summary moves about ten of SimHash's 64 bits — as far as unrelated
texts — while MinHash still estimates a Jaccard similarity near 0.8. datasketch's
LSH indexes live in memory, Redis or Cassandra, so the banding into candidate keys
that the store indexes in SQL is done here.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from aggregator.folding import fold, folded_words
from aggregator.model import ParsedEntry
from aggregator.sanitize import html_to_text

# Bump when what a fingerprint or its candidate keys hold changes: the store then
# recomputes them for every stored entry (Store.upgrade).
VERSION = "1"

# Copies of one story further apart in time than this are not compared by title or text:
# republishers copy within days, and a title that comes back later is another article.
WINDOW = timedelta(days=7)
# An equal title with nothing in the texts to confirm it must also be this close in time:
# daily posts ("Russia-Ukraine war: live updates") repeat their title for weeks.
TITLE_ONLY_WINDOW = timedelta(days=2)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A title is specific enough to find copies by when it keeps this many content words
# (neither stop words, nor generic words, nor numbers or dates) and this many characters.
TITLE_MIN_CONTENT_WORDS = 3
TITLE_MIN_CHARS = 20
# Texts shorter than this (in words) are not compared at all: too little to tell.
TEXT_MIN_WORDS = 15
# How many leading words are kept to test whether one text begins the other, and how
# many make the "lead" candidate key.
KEEP_WORDS = 64
LEAD_WORDS = 10
SHINGLE_WORDS = 3
# MinHash: 48 permutations in 12 bands of 4 rows. Two texts share a band with
# probability 1-(1-J⁴)¹²: 0.96 at Jaccard 0.7, 0.54 at 0.5, 0.1 at 0.3.
NUM_PERM = 48
BANDS = 12
ROWS = NUM_PERM // BANDS
_MINHASH_SEED = 20210604
_SIGNATURE = struct.Struct(f"<{NUM_PERM}I")
# Thresholds on the estimated similarity of two texts (see `_text_relation`).
SAME_JACCARD = 0.5
SAME_CONTAINMENT = 0.8
DIFFERENT_JACCARD = 0.2
DIFFERENT_CONTAINMENT = 0.4
# Two texts this long that are the same need no title agreement (a republisher's new headline).
TEXT_ALONE_WORDS = 30
# Title word sets this similar (Jaccard) say "the same headline, edited".
RELATED_TITLES = 0.5

_STOP_WORDS = _word_set(
    """a an the of to in on for and or but with by at from as into about over after before
    is are was were be been it its this that these those our your their his her we you
    they he she i s t not no vs via how why what who when where which new
    le la les l un une de des du d et en el los las lo y del al der die das und ein eine"""
)
_GENERIC_WORDS = _word_set(
    """editorial editorials update updates weekly daily monthly annual letter letters
    podcast podcasts episode ep news newsletter digest roundup round up review briefing
    bulletin announcement announcements statement press release video videos live blog
    open thread comment comments opinion column notes note issue edition part number vol
    volume today week weeks month year day morning evening night photo photos gallery
    help wanted untitled links link reading list quote quiz weekend summary highlights
    recap agenda events event calendar more read continue post page home"""
)
_MONTHS_AND_DAYS = _word_set(
    """january february march april may june july august september october november
    december jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday
    thursday friday saturday sunday"""
)
_GENERIC = _STOP_WORDS | _GENERIC_WORDS | _MONTHS_AND_DAYS
_ORDINAL = re.compile(r"^\d+(?:st|nd|rd|th)?$")

# Marks of a cut text or title: "[…]", "[...]", "(…)", "…", "...", "Read more »", "(more…)".
_CUT_MARK = re.compile(
    r"\s*(?:[\[(]\s*(?:…|\.{3}|&hellip;|more\s*…?)\s*[\])]|…|\.{3,}|"
    r"(?:read more|continue reading|more)\s*(?:»|›|→|\.\.\.|…)?)\s*$",
    re.IGNORECASE,
)
# WordPress's RSS footer: "The post <title> appeared first on <site>."
_WP_FOOTER = re.compile(r"\s*the post .{1,400}? appeared first on .{1,200}?\.?\s*$", re.IGNORECASE)
_FIGURE = re.compile(r"<figure\b.*?</figure\s*>|<figcaption\b.*?</figcaption\s*>", re.I | re.S)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What `same_story` compares of one copy. `at` is its effective published time."""

    title: str  # normalised: folded words joined by single spaces
    title_specific: bool
    lead: tuple[str, ...]  # the text's first KEEP_WORDS folded words (a cut mark removed)
    words: int  # words in the whole text
    shingles: int  # distinct word 3-shingles in it
    truncated: bool  # the text ended with a cut mark: its last word may be partial
    signature: tuple[int, ...] | None  # MinHash of the shingles; None below TEXT_MIN_WORDS
    at: datetime

    def signature_bytes(self) -> bytes | None:
        return _SIGNATURE.pack(*self.signature) if self.signature is not None else None


def signature_from_bytes(data: bytes | None) -> tuple[int, ...] | None:
    return _SIGNATURE.unpack(data) if data else None


def normalise_title(title: str) -> str:
    """A title as copies are compared: Unicode-folded (case, accents, compatibility
    forms), quotes and punctuation dropped, a trailing cut mark ("…", "[…]", "...") removed."""
    text, _ = _strip_cut_marks(fold(title).strip())
    return " ".join(folded_words(text))


def title_is_specific(normalised: str) -> bool:
    """Whether a normalised title names one article rather than a kind of post.

    "Editorial", "Weekly update", "Letters", "Podcast #45", "News — 4 June 2021" are not:
    without their stop words, generic words, numbers and dates they keep fewer than
    TITLE_MIN_CONTENT_WORDS words.
    """
    if len(normalised) < TITLE_MIN_CHARS:
        return False
    content = [
        word
        for word in normalised.split()
        if word not in _GENERIC and not _ORDINAL.match(word) and len(word) > 1
    ]
    return len(content) >= TITLE_MIN_CONTENT_WORDS


def entry_text(entry: ParsedEntry) -> tuple[str, bool]:
    """The plain text copies are compared by, and whether it was cut.

    The content when there is one, else the summary; figures and their captions are
    left out (a republisher adds or drops the lead image), and so are WordPress's
    "The post … appeared first on …" footer and a trailing cut mark or "Read more".
    """
    html = entry.content or entry.summary
    text = html_to_text(_FIGURE.sub(" ", html)) if html else ""
    return _strip_cut_marks(_WP_FOOTER.sub("", text))


def _strip_cut_marks(text: str) -> tuple[str, bool]:
    """`text` without the cut marks it ends with (one after another: "… [more]"), and
    whether it had any."""
    cut = False
    while _may_end_with_cut_mark(text):
        trimmed = _CUT_MARK.sub("", text)
        if trimmed == text:
            break
        text, cut = trimmed, True
    return text, cut


def _may_end_with_cut_mark(text: str) -> bool:
    r"""False when `_CUT_MARK` cannot match: its last character (before trailing space,
    as `\s*$`) is none a cut mark ends with. The regex is anchored at the end but
    tried from every position, which over a whole text cost more than the rest of
    `entry_text`; most texts end with a letter or a single full stop."""
    tail = text.rstrip()[-7:]  # "reading", the longest word a mark ends with
    if not tail:
        return False
    last = tail[-1]
    if last in "…)]»›→":
        return True
    if last == ".":
        return tail.endswith("...")
    if not tail.isascii():
        return True  # IGNORECASE matches letters such as "ſ" and "K" (Kelvin) as ASCII ones
    return tail.lower().endswith(("more", "reading"))


def fingerprint(entry: ParsedEntry, at: datetime) -> Fingerprint:
    """The fingerprint of `entry`, whose effective published time is `at`."""
    return fingerprints([(entry, at)])[0]


def fingerprints(entries: Sequence[tuple[ParsedEntry, datetime]]) -> list[Fingerprint]:
    """`fingerprint` of each (entry, effective time): the MinHash of a whole document's
    texts in one vectorised pass, which costs little more than one text's."""
    texts: list[tuple[str, bool, list[str], set[bytes]]] = []
    for entry, _ in entries:
        title = normalise_title(entry.title or "")
        text, truncated = entry_text(entry)
        words = folded_words(text)
        if truncated and words:
            words = words[:-1]  # a cut may fall inside the last word
        texts.append((title, truncated, words, _shingles(words)))
    signatures = _minhashes(
        [shingles for _, _, words, shingles in texts if len(words) >= TEXT_MIN_WORDS]
    )
    result: list[Fingerprint] = []
    for (title, truncated, words, shingles), (_, at) in zip(texts, entries, strict=True):
        result.append(
            Fingerprint(
                title=title,
                title_specific=title_is_specific(title),
                lead=tuple(words[:KEEP_WORDS]),
                words=len(words),
                shingles=len(shingles),
                truncated=truncated,
                signature=next(signatures) if len(words) >= TEXT_MIN_WORDS else None,
                at=at,
            )
        )
    return result


def candidate_keys(fp: Fingerprint) -> tuple[int, ...]:
    """The indexed keys under which copies of the same story are likely to meet: the title
    (when specific), the first LEAD_WORDS words, and one key per MinHash band. Signed
    64-bit integers, so the index stays small; a collision only costs one comparison."""
    keys: list[int] = []
    if fp.title_specific:
        keys.append(_key(b"title", fp.title.encode()))
    if len(fp.lead) >= LEAD_WORDS:
        keys.append(_key(b"lead", " ".join(fp.lead[:LEAD_WORDS]).encode()))
    if fp.signature is not None:
        for band in range(BANDS):
            rows = fp.signature[band * ROWS : (band + 1) * ROWS]
            keys.append(_key(b"band", bytes([band]) + struct.pack(f"<{ROWS}I", *rows)))
    return tuple(keys)


def same_story(a: Fingerprint, b: Fingerprint, window: timedelta = WINDOW) -> str | None:
    """Why two copies are one story — "title+text", "title" or "text" — or None.

    Never when published further apart than `window`. "title": equal specific
    titles, unless both texts are long enough to compare and clearly differ (two
    sites' different articles under one headline); when the texts neither confirm
    nor refute it ("title" alone), only within TITLE_ONLY_WINDOW. "text": the same text (one begins
    the other, or MinHash says they are near-identical) of TEXT_ALONE_WORDS words or
    more, whatever the titles (a republisher's own headline); a shorter same text
    only with related titles (equal, mostly the same words, or one cut from the other)
    of which one is specific, since teasers and boilerplate intros repeat.
    """
    if abs(a.at - b.at) > window:
        return None
    relation = _text_relation(a, b)
    same_title = a.title_specific and b.title_specific and a.title == b.title
    close = abs(a.at - b.at) <= min(window, TITLE_ONLY_WINDOW)
    if same_title and relation == "same":
        return "title+text"
    if same_title and relation == "unknown" and close:
        return "title"
    if relation != "same":
        return None
    if min(a.words, b.words) >= TEXT_ALONE_WORDS:
        return "text"
    # A short text (a teaser, a boilerplate intro) needs a related title that names one article.
    if (a.title_specific or b.title_specific) and _titles_related(a.title, b.title):
        return "text"
    return None


def contradicts(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether two copies carry the same specific title over clearly different texts:
    proof that the title names more than one article."""
    return (
        a.title_specific
        and b.title_specific
        and a.title == b.title
        and _text_relation(a, b) == "different"
    )


def estimated_jaccard(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def _text_relation(a: Fingerprint, b: Fingerprint) -> str:
    """One of "same", "different" or "unknown" (too short to tell, or partly the same:
    an edit, a cut, a quotation)."""
    if min(a.words, b.words) < TEXT_MIN_WORDS:
        return "unknown"
    short, long = (a, b) if len(a.lead) <= len(b.lead) else (b, a)
    if long.lead[: len(short.lead)] == short.lead:
        return "same"  # one text begins the other: a summary cut from the article
    if a.signature is None or b.signature is None:
        return "unknown"
    jaccard = estimated_jaccard(a.signature, b.signature)
    # |A∩B| = J(|A|+|B|)/(1+J): how much of the shorter text the longer one holds.
    smaller = min(a.shingles, b.shingles)
    common = jaccard * (a.shingles + b.shingles) / (1 + jaccard)
    containment = min(1.0, common / smaller) if smaller else 0.0
    if jaccard >= SAME_JACCARD or (containment >= SAME_CONTAINMENT and smaller >= 25):
        return "same"
    if jaccard < DIFFERENT_JACCARD and containment < DIFFERENT_CONTAINMENT:
        return "different"
    return "unknown"


def _titles_related(a: str, b: str) -> bool:
    if a == b:
        return True
    words_a, words_b = a.split(), b.split()
    set_a, set_b = set(words_a), set(words_b)
    if not set_a or not set_b:
        return False
    if len(set_a & set_b) / len(set_a | set_b) >= RELATED_TITLES:
        return True
    shorter, longer = sorted((words_a, words_b), key=len)
    # A title cut short by a republisher ("Dockworkers in South Africa Protest…").
    return len(shorter) >= 4 and longer[: len(shorter)] == shorter


def _shingles(words: list[str]) -> set[bytes]:
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words).encode()} if words else set()
    return {f"{a} {b} {c}".encode() for a, b, c in zip(words, words[1:], words[2:], strict=False)}


@lru_cache(maxsize=1)
def _permutations() -> tuple[Any, Any]:
    # datasketch 2.0's "affine32" scheme, which the stored signatures were made with
    # (tests/test_fingerprint.py compares the two bit for bit): `a` odd, `b` any, drawn
    # in this order from numpy's legacy generator seeded with _MINHASH_SEED. Imported
    # here: numpy costs a tenth of a second to load, which most commands need not pay.
    import numpy as np

    generator = np.random.RandomState(_MINHASH_SEED)
    a = generator.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


def _minhashes(texts: Sequence[set[bytes]]) -> Iterator[tuple[int, ...]]:
    """The MinHash signature of each non-empty set of shingles, in order.

    As datasketch's `MinHash(num_perm=NUM_PERM, seed=_MINHASH_SEED, scheme="affine32")`
    updated with the shingles: the first 4 bytes of each shingle's SHA-1 (little
    endian), mixed by the MurmurHash3 finalizer, then `a * h + b mod 2**32` per
    permutation, the minimum per permutation. Here every text of a document goes
    through numpy at once (`minimum.reduceat` over the texts' runs of hashes) instead
    of one MinHash object and a handful of small arrays per text.
    """
    if not texts:
        return iter(())
    import numpy as np

    sha1 = hashlib.sha1
    digests = b"".join(sha1(shingle).digest()[:4] for shingles in texts for shingle in shingles)
    starts = np.cumsum([0, *(len(shingles) for shingles in texts[:-1])])
    hv = np.frombuffer(digests, dtype="<u4").astype(np.uint32)
    hv ^= hv >> np.uint32(16)
    hv *= np.uint32(0x85EBCA6B)
    hv ^= hv >> np.uint32(13)
    hv *= np.uint32(0xC2B2AE35)
    hv ^= hv >> np.uint32(16)
    a, b = _permutations()
    permuted = hv[:, None] * a + b  # wraps around: the modulo 2**32 of the scheme
    minima = np.minimum.reduceat(permuted, starts, axis=0)
    return iter([tuple(row) for row in minima.tolist()])


def _key(kind: bytes, payload: bytes) -> int:
    digest = hashlib.blake2b(kind + b"\x00" + payload, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
