"""Fingerprints and `same_story`: title normalisation, generic titles, text likeness, time."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.dedupe import Candidate, Newcomer, place
from aggregator.fingerprint import (
    NUM_PERM,
    TEXT_MIN_WORDS,
    candidate_keys,
    entry_text,
    estimated_jaccard,
    fingerprint,
    normalise_title,
    same_story,
    signature_values,
    title_is_specific,
)
from aggregator.model import ParsedEntry

T0 = datetime(2021, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

FLOYD = (
    "One year ago, George Floyd was brutally murdered by racist police. His tragic death "
    "would ignite the largest mass movement in the history of the US. Millions took to the "
    "streets in every state, defying curfews, tear gas and the National Guard."
)
FLOYD_OTHER = (
    "A judge set June 25 as the date for sentencing the former police officer convicted of "
    "murdering George Floyd, as thousands gathered at the intersection where he was killed "
    "to mark the anniversary of his death."
)
WEEKLY_A = (
    "This week on marxist.com: our coverage of the ceasefire in Gaza, a new pamphlet on the "
    "revolutionary party, and reports from the sections in Brazil and Pakistan."
)
WEEKLY_B = (
    "This week on marxist.com: the anniversary of Tiananmen Square, the strikes in Iran, and "
    "a new analysis of inflation and the world economy."
)


def entry(title: str = "", summary: str = "", content: str = "", **fields: Any) -> ParsedEntry:
    return ParsedEntry(
        guid=None, link=None, title=title, summary=summary, content=content, **fields
    )


def fp(title: str = "", text: str = "", at: datetime = T0) -> Any:
    return fingerprint(entry(title, f"<p>{text}</p>" if text else ""), at)


TITLE_CASES: list[tuple[str, str]] = [
    ("Iran: For an Independent Labor Movement!", "iran for an independent labor movement"),
    ("IRAN: FOR AN INDEPENDENT LABOR MOVEMENT!", "iran for an independent labor movement"),
    ("After Netanyahu’s War", "after netanyahu s war"),
    ("After Netanyahu's War", "after netanyahu s war"),
    ("The “Labor Shortage”: Workers", "the labor shortage workers"),
    ('The "Labor Shortage": Workers', "the labor shortage workers"),
    ("Canada: 2021 Congress—Revolutionary Optimism", "canada 2021 congress revolutionary optimism"),
    (
        "Canada: 2021 Congress - Revolutionary Optimism",
        "canada 2021 congress revolutionary optimism",
    ),
    ("Streik in Zürich", "streik in zurich"),
    ("Ｆｕｌｌ ｗｉｄｔｈ", "full width"),
    ("A long headline that was cut…", "a long headline that was cut"),
    ("A long headline that was cut [...]", "a long headline that was cut"),
    ("A long headline that was cut […]", "a long headline that was cut"),
    ("A long headline that was cut...", "a long headline that was cut"),
    ("Ellipsis twice… […]", "ellipsis twice"),
    ("", ""),
]


@pytest.mark.parametrize(("title", "normalised"), TITLE_CASES)
def test_normalise_title(title: str, normalised: str) -> None:
    assert normalise_title(title) == normalised


SPECIFIC_CASES: list[tuple[str, bool]] = [
    ("Editorial", False),
    ("Weekly update", False),
    ("Weekly Update — 4 June 2021", False),
    ("Letters", False),
    ("Letters to the editor", False),
    ("Podcast", False),
    ("Podcast #45", False),
    ("Podcast episode 12", False),
    ("Help Wanted", False),
    ("News", False),
    ("Open thread: Sunday", False),
    ("Photo of the day", False),
    ("Iran", False),  # too short to name one article
    ("Gaza ceasefire", False),
    ("The Racist Terror of Tulsa 1921", True),
    ("Tiananmen: a Marxist Reading Guide", True),
    ("Iran: For an Independent Labor Movement!", True),
    ("Editorial: the Tories in crisis after the local elections", True),
    ("Podcast: the history of the Paris Commune", True),
]


@pytest.mark.parametrize(("title", "specific"), SPECIFIC_CASES)
def test_title_is_specific(title: str, specific: bool) -> None:
    assert title_is_specific(normalise_title(title)) is specific


TEXT_CASES: list[tuple[dict[str, str], str, bool]] = [
    ({"summary": "<p>Plain words.</p>"}, "Plain words.", False),
    ({"summary": "<p>Cut here […]</p>"}, "Cut here", True),
    ({"summary": "<p>Cut here [&hellip;]</p>"}, "Cut here", True),
    ({"summary": "<p>Cut here...</p>"}, "Cut here", True),
    ({"summary": "<p>Cut here… Read more »</p>"}, "Cut here", True),
    ({"summary": "<p>Body.</p><p>Continue reading →</p>"}, "Body.", True),
    ({"summary": "<p>S</p>", "content": "<p>Full text</p>"}, "Full text", False),
    (
        {"content": '<figure><img src="x.jpg"><figcaption>Caption</figcaption></figure><p>B</p>'},
        "B",
        False,
    ),
    (
        {"summary": '<p>Body.</p><p>The post <a href="/">T</a> appeared first on <a>S</a>.</p>'},
        "Body.",
        False,
    ),
    ({}, "", False),
]


@pytest.mark.parametrize(("fields", "text", "truncated"), TEXT_CASES)
def test_entry_text_drops_figures_footers_and_cut_marks(
    fields: dict[str, str], text: str, truncated: bool
) -> None:
    assert entry_text(entry("T", **fields)) == (text, truncated)


SAME_STORY_CASES: list[tuple[str, Any, Any, str | None]] = [
    # the same specific title, nothing to compare in the texts: close in time only
    (
        "title, no texts",
        fp("The Racist Terror of Tulsa 1921"),
        fp("THE RACIST TERROR OF TULSA 1921…", at=T0 + DAY),
        "title",
    ),
    (
        "title, no texts, 3 days apart",
        fp("The Racist Terror of Tulsa 1921"),
        fp("The Racist Terror of Tulsa 1921", at=T0 + 3 * DAY),
        None,
    ),
    (
        "title and text",
        fp("One Year Ago the Murder of George Floyd", FLOYD),
        fp("One year ago the murder of George Floyd", FLOYD, T0 + 5 * DAY),
        "title+text",
    ),
    (
        "title, text 8 days later",
        fp("One Year Ago the Murder of George Floyd", FLOYD),
        fp("One Year Ago the Murder of George Floyd", FLOYD, T0 + 8 * DAY),
        None,
    ),
    (
        "same title, different texts",
        fp("Solidarity with the Colombian National Strike", FLOYD),
        fp("Solidarity with the Colombian National Strike", FLOYD_OTHER),
        None,
    ),
    # generic titles never match on the title
    ("generic title, no texts", fp("Editorial"), fp("Editorial"), None),
    (
        "generic title, different texts",
        fp("Weekly update", WEEKLY_A),
        fp("Weekly update", WEEKLY_B),
        None,
    ),
    ("generic title, same long text", fp("Editorial", FLOYD), fp("Editorial", FLOYD), "text"),
    (
        "generic title, same short text",
        fp("Weekly update", WEEKLY_A),
        fp("Weekly update", WEEKLY_A),
        None,
    ),
    # the text alone: a long one whatever the titles, a short one with a related specific title
    (
        "new headline, same long text",
        fp("Floyd: a year on", FLOYD),
        fp("The uprising that shook America", FLOYD),
        "text",
    ),
    (
        "summary cut from the text",
        fp("George Floyd: one year on", " ".join(FLOYD.split()[:20]) + " […]"),
        fp("One year on: George Floyd", FLOYD),
        "text",
    ),
    (
        "lightly edited text",
        fp("A", FLOYD),
        fp("B", FLOYD.replace("brutally ", "").replace("largest", "biggest")),
        "text",
    ),
    ("different texts, same topic", fp("Floyd", FLOYD), fp("Floyd", FLOYD_OTHER), None),
    (
        "texts too short",
        fp("A cut headline about Floyd", "One year ago"),
        fp("Another", "One year ago"),
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "a", "b", "reason"), SAME_STORY_CASES, ids=[c[0] for c in SAME_STORY_CASES]
)
def test_same_story(case: str, a: Any, b: Any, reason: str | None) -> None:
    assert same_story(a, b) == reason
    assert same_story(b, a) == reason


def test_fingerprint_of_a_cut_summary_drops_the_possibly_partial_last_word() -> None:
    cut = fp("T", "In Iran, protests and strikes are now spreading across every sector, after […]")
    assert cut.truncated and cut.lead.split()[-1] == "sector"


def test_signature_only_for_texts_long_enough_and_round_trips_through_bytes() -> None:
    short, long = fp("T", "a b c"), fp("T", FLOYD)
    assert short.signature is None and signature_values(short.signature) is None
    assert long.words >= TEXT_MIN_WORDS and long.signature is not None
    values = signature_values(long.signature)
    assert values is not None and len(values) == NUM_PERM
    assert long.signature == struct.pack(f"<{NUM_PERM}I", *values)
    assert estimated_jaccard(long.signature, long.signature) == 1.0


def test_candidate_keys_are_stable_signed_64_bit_integers() -> None:
    keys = candidate_keys(fp("The Racist Terror of Tulsa 1921", FLOYD))
    assert len(keys) == 1 + 1 + 12  # title, lead, twelve MinHash bands
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert keys == candidate_keys(fp("THE RACIST TERROR OF TULSA 1921", FLOYD))
    assert candidate_keys(fp("Editorial")) == ()


@given(st.text(max_size=200), st.text(max_size=60))
def test_fingerprint_never_raises(text: str, title: str) -> None:
    print_ = fingerprint(entry(title, text), T0)
    assert print_.words >= print_.lead_words == len(print_.lead.split())


# --- the decider ------------------------------------------------------------------------


def newcomer(strong: tuple[str, ...] = (), title: str = "", text: str = "") -> Newcomer:
    print_ = fp(title, text)
    return Newcomer(strong, candidate_keys(print_), print_)


def candidates_for(item: Newcomer, *stories: tuple[int, Any]) -> dict[int, list[Candidate]]:
    return {
        key: [Candidate(story, print_) for story, print_ in stories] for key in item.candidate_keys
    }


def test_place_strong_key_wins_and_the_document_shares_new_stories() -> None:
    first = newcomer(("url:a",))
    second = newcomer(("url:a", "url:b"))
    third = newcomer(("url:c",))
    decision = place([first, second, third], {"url:c": 7}, {}, ())
    assert [(p.how, p.story_id, p.founder) for p in decision.placements] == [
        ("new", None, 0),
        ("key", None, 0),
        ("key", 7, None),
    ]
    assert decision.keys_to_founder == {"url:a": 0, "url:b": 0}
    assert decision.keys_to_story == {}


def test_place_joins_by_text_and_registers_the_links() -> None:
    item = newcomer(("url:x",), "Floyd: a year on", FLOYD)
    decision = place([item], {}, candidates_for(item, (5, fp("Other headline", FLOYD))), ())
    assert decision.placements[0].how == "text" and decision.placements[0].story_id == 5
    assert decision.keys_to_story == {"url:x": 5}


def test_place_never_joins_a_story_of_its_own_source_by_likeness() -> None:
    item = newcomer(("url:x",), "Floyd: a year on", FLOYD)
    decision = place([item], {}, candidates_for(item, (5, fp("Other", FLOYD))), own_stories={5})
    assert decision.placements[0].how == "new"


def test_place_title_alone_is_ambiguous_when_two_stories_share_it() -> None:
    title = "Solidarity with the Colombian National Strike"
    item = newcomer(("url:x",), title)
    one = candidates_for(item, (1, fp(title, FLOYD)))
    two = candidates_for(item, (1, fp(title, FLOYD)), (2, fp(title, FLOYD_OTHER)))
    joined = place([item], {}, one, ())
    assert (joined.placements[0].how, joined.placements[0].story_id) == ("title", 1)
    # and a title-only join does not make the copy's links ways in to the story
    assert joined.keys_to_story == {}
    assert place([item], {}, two, ()).placements[0].how == "new"


def test_place_title_alone_refused_by_a_story_whose_copies_contradict_it() -> None:
    title = "Solidarity with the Colombian National Strike"
    item = newcomer(("url:x",), title, FLOYD_OTHER)
    found = candidates_for(item, (1, fp(title, FLOYD)), (1, fp(title)))
    assert place([item], {}, found, ()).placements[0].how == "new"


# --- the vectorised MinHash and the folding fast paths ------------------------------------


def _reference_fold(text: str) -> str:
    """`fold` as first written: one character at a time."""
    import unicodedata

    from aggregator.folding import _FOLD_TABLE

    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.translate(_FOLD_TABLE)


@pytest.mark.parametrize(
    "text",
    ["Iran’s War!", "`Quoted` «Ærø» — Łódź", "ÉCOLE ﬁne Ｆｕｌｌ", "A\u00adB\u200bC", "Straße", ""],
)
def test_fold_is_the_reference_fold(text: str) -> None:
    from aggregator.folding import fold

    assert fold(text) == _reference_fold(text)


@given(st.text(max_size=80))
def test_fold_is_the_reference_fold_for_any_text(text: str) -> None:
    from aggregator.folding import fold

    assert fold(text) == _reference_fold(text)


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_fold_is_the_reference_fold_for_any_ascii_text(text: str) -> None:
    """ASCII takes a path of its own in `fold` (the table's one ASCII entry by hand)."""
    from aggregator.folding import fold

    assert fold(text) == _reference_fold(text)


def _reference_strip_cut_marks(text: str) -> tuple[str, bool]:
    """Cut marks stripped by the regex alone, tried on every text."""
    from aggregator.fingerprint import _CUT_MARK

    cut = False
    while (trimmed := _CUT_MARK.sub("", text)) != text:
        text, cut = trimmed, True
    return text, cut


_CUT_PIECES = st.sampled_from(
    [
        "…",
        "...",
        ".",
        "..",
        " ",
        "\n",
        "\u00a0",
        "more",
        "MORE",
        "Read more",
        "continue reading",
        "READING",
        "[",
        "]",
        "(",
        ")",
        "»",
        "›",
        "→",
        "&hellip;",
        "ſ",
        "\u212a",
        "word",
        "é",
        "x",
    ]
)


@given(st.one_of(st.lists(_CUT_PIECES, max_size=12).map("".join), st.text(max_size=40)))
def test_cut_marks_are_stripped_as_by_the_regex_alone(text: str) -> None:
    """The shortcut that skips the regex for texts no cut mark can end changes nothing."""
    from aggregator.fingerprint import _strip_cut_marks

    assert _strip_cut_marks(text) == _reference_strip_cut_marks(text)


_M64 = 1 << 64


def _reference_fmix64(value: int) -> int:
    value ^= value >> 33
    value = value * 0xFF51AFD7ED558CCD % _M64
    value ^= value >> 33
    value = value * 0xC4CEB9FE1A85EC53 % _M64
    return value ^ (value >> 33)


def _reference_shingle_hashes(words: list[str]) -> set[int]:
    """The scheme of `_sketches` spelled out one shingle at a time, in plain integers."""
    from hashlib import blake2b

    from aggregator.fingerprint import _SHINGLE_MULTIPLIERS

    first, second = _SHINGLE_MULTIPLIERS
    hashes = [int.from_bytes(blake2b(w.encode(), digest_size=8).digest(), "little") for w in words]
    return {
        _reference_fmix64((a * first + b * second + c) % _M64)
        for a, b, c in zip(hashes, hashes[1:], hashes[2:], strict=False)
    }


def _reference_signature(text: str) -> tuple[int, ...] | None:
    from aggregator.fingerprint import _permutations
    from aggregator.folding import folded_words

    words = folded_words(entry_text(entry("T", text))[0])
    if len(words) < TEXT_MIN_WORDS:
        return None
    values = {h >> 32 for h in _reference_shingle_hashes(words)}
    a, b = _permutations()
    return tuple(
        min((int(x) * v + int(y)) % (1 << 32) for v in values)
        for x, y in zip(a.tolist(), b.tolist(), strict=True)
    )


def _reference_band_keys(signature: tuple[int, ...]) -> list[int]:
    from aggregator.fingerprint import _BAND_MULTIPLIER, BANDS, ROWS

    keys = []
    for band in range(BANDS):
        key = _reference_fmix64(band + 1)
        for value in signature[band * ROWS : (band + 1) * ROWS]:
            key = _reference_fmix64((key ^ value) * _BAND_MULTIPLIER % _M64)
        keys.append(key - _M64 if key >= 1 << 63 else key)
    return keys


def test_signatures_are_the_scheme_computed_one_shingle_at_a_time() -> None:
    """The numpy pass over a document gives each text the signature the plain definition
    gives it, for many texts at once as for each alone."""
    from aggregator.fingerprint import fingerprints

    texts = [FLOYD, FLOYD_OTHER, WEEKLY_A, WEEKLY_B, "too short", FLOYD + " " + WEEKLY_A]
    together = fingerprints([(entry("T", text), T0) for text in texts])
    for text, print_ in zip(texts, together, strict=True):
        assert signature_values(print_.signature) == _reference_signature(text)
        assert print_ == fingerprint(entry("T", text), T0)


@given(st.lists(st.text(alphabet="abcdefgh éü ", min_size=0, max_size=300), max_size=5))
def test_signatures_and_shingle_counts_match_the_definition_for_any_texts(
    texts: list[str],
) -> None:
    from aggregator.fingerprint import fingerprints
    from aggregator.folding import folded_words

    together = fingerprints([(entry("T", text), T0) for text in texts])
    for text, print_ in zip(texts, together, strict=True):
        assert signature_values(print_.signature) == _reference_signature(text)
        words = folded_words(entry_text(entry("T", text))[0])
        distinct = {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
        assert print_.shingles == (len(distinct) if len(words) >= 3 else min(len(words), 1))


def test_a_document_too_large_for_one_round_gets_the_same_signatures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Shingles are permuted in rounds of whole texts, so memory stays bounded; the rounds'
    boundaries change nothing (a round holds at least one text, however long)."""
    from aggregator import fingerprint as module

    texts = [FLOYD, FLOYD_OTHER, WEEKLY_A, "too short", WEEKLY_B, FLOYD + " " + WEEKLY_A]
    items = [(entry("T", text), T0) for text in texts]
    whole = module.fingerprints(items)
    monkeypatch.setattr(module, "_SHINGLES_PER_ROUND", 40)
    assert module.fingerprints(items) == whole


def test_band_keys_are_the_definition_computed_in_plain_integers() -> None:
    from aggregator.fingerprint import candidate_keys_of

    prints = [fp("The Racist Terror of Tulsa 1921", FLOYD), fp("Editorial"), fp("W", WEEKLY_A)]
    for print_, keys in zip(prints, candidate_keys_of(prints), strict=True):
        assert keys == candidate_keys(print_)
        values = signature_values(print_.signature)
        if values is not None:
            assert list(keys[-len(_reference_band_keys(values)) :]) == (
                _reference_band_keys(values)
            )


def test_estimated_jaccard_tracks_the_true_one() -> None:
    """What the thresholds rest on: over texts of known overlap, the MinHash estimate is
    unbiased and within the error that 48 permutations allow (standard error about 0.07)."""
    import random

    from aggregator.fingerprint import fingerprints
    from aggregator.folding import folded_words

    rng = random.Random(7)
    vocabulary = [f"w{n}" for n in range(5000)]
    errors = []
    for _ in range(120):
        base = rng.choices(vocabulary, k=120)
        edited = list(base)
        for position in rng.sample(range(120), rng.randrange(0, 60)):
            edited[position] = rng.choice(vocabulary)
        a, b = (fingerprints([(entry("T", " ".join(t)), T0)])[0] for t in (base, edited))
        assert a.signature is not None and b.signature is not None
        shingles = [
            {tuple(ws[i : i + 3]) for i in range(len(ws) - 2)}
            for ws in (folded_words(" ".join(base)), folded_words(" ".join(edited)))
        ]
        true = len(shingles[0] & shingles[1]) / len(shingles[0] | shingles[1])
        errors.append(estimated_jaccard(a.signature, b.signature) - true)
    mean = sum(errors) / len(errors)
    spread = (sum(e * e for e in errors) / len(errors)) ** 0.5
    assert abs(mean) < 0.03
    assert spread < 0.1


def test_word_hashes_are_the_same_after_the_cache_starts_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aggregator import fingerprint as module

    first = module.fingerprints([(entry("T", FLOYD), T0), (entry("T", WEEKLY_A), T0)])
    monkeypatch.setattr(module, "_WORD_CACHE_LIMIT", 10)
    monkeypatch.setattr(module, "_word_cache", {})
    again = module.fingerprints([(entry("T", FLOYD), T0), (entry("T", WEEKLY_A), T0)])
    assert again == first
    assert len(module._word_cache) <= 10 + len(set(FLOYD.split()) | set(WEEKLY_A.split()))
