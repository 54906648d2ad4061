"""What fuzzy story matching compares of a copy: its title, its text, its time.

A `Fingerprint` is computed once per entry from parsed values and stored; two copies
that share a candidate key (`candidate_keys`: the specific title, the text's first
words, MinHash bands) are compared by `same_story`, which says why they are one
story or returns None. Pure functions only: `dedupe.place` and the store build on them.

Text similarity is MinHash over word 3-shingles: each shingle hashed from its words'
hashes, 48 "affine32" permutations (datasketch's family, the same seed), computed for a
whole document at once with numpy (`_sketches`). MinHash rather than SimHash because
summaries are short: one edited word in a 30-word summary moves about ten of SimHash's
64 bits — as far as unrelated texts — while MinHash still estimates a Jaccard similarity
near 0.8. datasketch's LSH indexes live in memory, Redis or Cassandra, so the banding
into candidate keys that the store indexes in SQL is done here.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from aggregator.folding import fold, folded_words
from aggregator.model import ParsedEntry, pickled_by_fields
from aggregator.sanitize import html_to_text

# Bump when what a fingerprint or its candidate keys hold changes: the store then
# recomputes them for every stored entry (Store.upgrade).
VERSION = "2"

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


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What `same_story` compares of one copy. `at` is its effective published time."""

    title: str  # normalised: folded words joined by single spaces
    title_specific: bool
    # The text's first KEEP_WORDS folded words (a cut mark removed), joined by single
    # spaces; the signature is NUM_PERM little-endian uint32 minima, as stored. Packed
    # rather than as tuples: a prepared entry crosses from a parser worker to the writer
    # and may wait there, and 64 words and 48 integers as Python objects were 5 KB an
    # entry and a third of the time unpickling it took.
    lead: str
    words: int  # words in the whole text
    shingles: int  # distinct word 3-shingles in it
    truncated: bool  # the text ended with a cut mark: its last word may be partial
    signature: bytes | None  # MinHash of the shingles; None below TEXT_MIN_WORDS
    at: datetime

    @property
    def lead_words(self) -> int:
        # `words` counts the same words the lead was cut from.
        return min(self.words, KEEP_WORDS)


def signature_values(signature: bytes | None) -> tuple[int, ...] | None:
    """A packed signature's NUM_PERM minima."""
    return _SIGNATURE.unpack(signature) if signature else None


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
    if not html:
        return _strip_cut_marks("")
    # Each regex only where its literal can be: tried at every position, both cost more
    # than the rest of entry_text. Under IGNORECASE no non-ASCII letter matches an "f",
    # and none matches a letter of "appeared" (only ſ, K, İ and ı match ASCII ones).
    if "<f" in html or "<F" in html:
        html = _FIGURE.sub(" ", html)
    text = html_to_text(html)
    if "appeared" in text.lower():
        text = _WP_FOOTER.sub("", text)
    return _strip_cut_marks(text)


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
    """`fingerprint` of each (entry, effective time): the shingles and MinHash of a whole
    document's texts in one vectorised pass, which costs little more than one text's."""
    texts: list[tuple[str, bool, list[str]]] = []
    for entry, _ in entries:
        title = normalise_title(entry.title or "")
        text, truncated = entry_text(entry)
        words = folded_words(text)
        if truncated and words:
            words = words[:-1]  # a cut may fall inside the last word
        texts.append((title, truncated, words))
    counts, signatures = _sketches([words for _, _, words in texts])
    return [
        Fingerprint(
            title=title,
            title_specific=title_is_specific(title),
            lead=" ".join(words[:KEEP_WORDS]),
            words=len(words),
            shingles=shingles,
            truncated=truncated,
            signature=signature,
            at=at,
        )
        for (title, truncated, words), shingles, signature, (_, at) in zip(
            texts, counts, signatures, entries, strict=True
        )
    ]


def candidate_keys(fp: Fingerprint) -> tuple[int, ...]:
    """The indexed keys under which copies of the same story are likely to meet: the title
    (when specific), the first LEAD_WORDS words, and one key per MinHash band. Signed
    64-bit integers, so the index stays small; a collision only costs one comparison."""
    return candidate_keys_of([fp])[0]


def candidate_keys_of(prints: Sequence[Fingerprint]) -> list[tuple[int, ...]]:
    """`candidate_keys` of each fingerprint: the band keys of all of them in one numpy pass."""
    bands = iter(_band_keys([fp.signature for fp in prints if fp.signature is not None]))
    result: list[tuple[int, ...]] = []
    for fp in prints:
        keys: list[int] = []
        if fp.title_specific:
            keys.append(_key(b"title", fp.title.encode()))
        if fp.lead_words >= LEAD_WORDS:
            first = fp.lead.split(" ", LEAD_WORDS)[:LEAD_WORDS]
            keys.append(_key(b"lead", " ".join(first).encode()))
        if fp.signature is not None:
            keys.extend(next(bands))
        result.append(tuple(keys))
    return result


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


def estimated_jaccard(a: bytes, b: bytes) -> float:
    """The share of equal minima of two packed signatures."""
    return sum(map(int.__eq__, _SIGNATURE.unpack(a), _SIGNATURE.unpack(b))) / NUM_PERM


def _text_relation(a: Fingerprint, b: Fingerprint) -> str:
    """One of "same", "different" or "unknown" (too short to tell, or partly the same:
    an edit, a cut, a quotation)."""
    if min(a.words, b.words) < TEXT_MIN_WORDS:
        return "unknown"
    # Of two leads where one begins the other word for word, that one is the shorter
    # string too.
    short, long = (a.lead, b.lead) if len(a.lead) <= len(b.lead) else (b.lead, a.lead)
    if long == short or long.startswith(short + " "):
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


# The hashing behind shingles, signatures and band keys (VERSION 2). A shingle's hash is
# made from its three words' hashes in numpy rather than by hashing each shingle's bytes:
# SHA-1 of every shingle (datasketch's way, VERSION 1) was a Python call per shingle, some
# 100 per entry and half of what preparing an entry cost. Word hashes are BLAKE2b, so
# they do not depend on the process (str hashes do) or on the Python release.
_SHINGLE_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F)
_BAND_MULTIPLIER = 0x165667B19E3779F9
# Word hashes are kept between documents (the same few thousand words make most texts);
# past this many the cache starts again, so a worker's memory stays bounded.
_WORD_CACHE_LIMIT = 200_000
_word_cache: dict[str, int] = {}
# Shingles permuted at once: 65,536 x NUM_PERM uint32 is 12 MB, whatever a document holds.
_SHINGLES_PER_ROUND = 1 << 16


def _word_hashes(words: list[str]) -> list[int]:
    cache = _word_cache
    missing = set(words).difference(cache)
    if missing:
        if len(cache) + len(missing) > _WORD_CACHE_LIMIT:
            cache.clear()
        blake2b = hashlib.blake2b
        for word in missing:
            cache[word] = int.from_bytes(blake2b(word.encode(), digest_size=8).digest(), "little")
    return list(map(cache.__getitem__, words))


def _fmix64(values: Any) -> Any:
    """MurmurHash3's 64-bit finalizer over a uint64 array (in place): every input bit
    moves every output bit, so the plain sums and products before it hash well."""
    import numpy as np

    values ^= values >> np.uint64(33)
    values *= np.uint64(0xFF51AFD7ED558CCD)
    values ^= values >> np.uint64(33)
    values *= np.uint64(0xC4CEB9FE1A85EC53)
    values ^= values >> np.uint64(33)
    return values


def _sketches(texts: Sequence[list[str]]) -> tuple[list[int], list[bytes | None]]:
    """For each text (its folded words): how many distinct word 3-shingles it has, and its
    MinHash signature (None below TEXT_MIN_WORDS words).

    A shingle's hash is fmix64(h1 * M1 + h2 * M2 + h3) of its words' hashes, modulo
    2**64; its top 32 bits go through NUM_PERM permutations `a * h + b mod 2**32` (the
    "affine32" family, `a` odd), and a signature is the minimum per permutation. A text of
    one or two words is one shingle. Imported here: numpy costs a tenth of a second to
    load, which most commands need not pay.
    """
    import numpy as np

    lengths = np.array([len(words) for words in texts], dtype=np.int64)
    counts = [1 if 0 < n < SHINGLE_WORDS else 0 for n in lengths.tolist()]
    signatures: list[bytes | None] = [None] * len(texts)
    if not texts or int(lengths.max()) < SHINGLE_WORDS:
        return counts, signatures
    flat = np.array(_word_hashes([word for words in texts for word in words]), dtype=np.uint64)
    ends = np.cumsum(lengths)
    owner = np.repeat(np.arange(len(texts)), lengths)[:-2]
    # Position p starts a shingle of its text when its third word is still in that text.
    starts_shingle = np.arange(2, len(flat)) < ends[owner]
    first, second = _SHINGLE_MULTIPLIERS
    hashes = _fmix64(
        (flat[:-2] * np.uint64(first) + flat[1:-1] * np.uint64(second) + flat[2:])[starts_shingle]
    )
    owner = owner[starts_shingle]
    # Distinct shingles per text: sorted by (text, hash), a run's first element counts.
    order = np.lexsort((hashes, owner))
    sorted_owner, sorted_hashes = owner[order], hashes[order]
    distinct = np.ones(len(order), dtype=bool)
    distinct[1:] = sorted_owner[1:] != sorted_owner[:-1]
    distinct[1:] |= sorted_hashes[1:] != sorted_hashes[:-1]
    per_text = np.bincount(sorted_owner[distinct], minlength=len(texts))
    for text, count in enumerate(per_text.tolist()):
        if lengths[text] >= SHINGLE_WORDS:
            counts[text] = count
    signed = np.flatnonzero(lengths >= TEXT_MIN_WORDS)
    if not len(signed):
        return counts, signatures
    keep = lengths[owner] >= TEXT_MIN_WORDS
    values = (hashes[keep] >> np.uint64(32)).astype(np.uint32)
    # Each signed text's run of shingles (owner is in text order; no run is empty).
    run_starts = np.searchsorted(owner[keep], signed)
    run_ends = np.append(run_starts[1:], len(values))
    a, b = _permutations()
    first_text = 0
    while first_text < len(signed):
        # As many whole texts as fit in one round (at least one, however long).
        low = run_starts[first_text]
        last_text = max(
            first_text + 1, int(np.searchsorted(run_ends, low + _SHINGLES_PER_ROUND, "right"))
        )
        high = run_ends[last_text - 1]
        permuted = values[low:high, None] * a + b  # wraps around: the modulo 2**32
        minima = np.minimum.reduceat(permuted, run_starts[first_text:last_text] - low, axis=0)
        packed = np.ascontiguousarray(minima, dtype="<u4")
        for text, row in zip(signed[first_text:last_text].tolist(), packed, strict=True):
            signatures[text] = row.tobytes()
        first_text = last_text
    return counts, signatures


def _band_keys(signatures: Sequence[bytes]) -> list[list[int]]:
    """For each signature, one signed 64-bit key per band of ROWS values: fmix64 over the
    band's number and rows, so equal rows in two bands make two keys."""
    if not signatures:
        return []
    import numpy as np

    packed = np.frombuffer(b"".join(signatures), dtype="<u4")
    rows = packed.astype(np.uint64).reshape(len(signatures), BANDS, ROWS)
    keys = np.broadcast_to(np.arange(1, BANDS + 1, dtype=np.uint64), (len(signatures), BANDS))
    keys = _fmix64(keys.copy())
    for row in range(ROWS):
        keys = _fmix64((keys ^ rows[:, :, row]) * np.uint64(_BAND_MULTIPLIER))
    return keys.view(np.int64).tolist()  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def _permutations() -> tuple[Any, Any]:
    # `a` odd and `b` any, drawn in this order from numpy's legacy generator seeded
    # with _MINHASH_SEED (datasketch 2.0's way of drawing its "affine32" permutations).
    import numpy as np

    generator = np.random.RandomState(_MINHASH_SEED)
    a = generator.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


def _key(kind: bytes, payload: bytes) -> int:
    digest = hashlib.blake2b(kind + b"\x00" + payload, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
