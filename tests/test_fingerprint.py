"""Fingerprints and `same_story`: title normalisation, generic titles, text likeness, time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.dedupe import Candidate, Newcomer, place
from aggregator.fingerprint import (
    TEXT_MIN_WORDS,
    candidate_keys,
    entry_text,
    estimated_jaccard,
    fingerprint,
    normalise_title,
    same_story,
    signature_from_bytes,
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
    assert cut.truncated and cut.lead[-1] == "sector"


def test_signature_only_for_texts_long_enough_and_round_trips_through_bytes() -> None:
    short, long = fp("T", "a b c"), fp("T", FLOYD)
    assert short.signature is None and short.signature_bytes() is None
    assert long.words >= TEXT_MIN_WORDS and long.signature is not None
    assert signature_from_bytes(long.signature_bytes()) == long.signature
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
    assert print_.words >= len(print_.lead)


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


def _datasketch_signature(text: str) -> tuple[int, ...] | None:
    """The signature as datasketch 2.0 computes it (the dev dependency this test needs)."""
    from datasketch import MinHash

    from aggregator.fingerprint import _MINHASH_SEED, NUM_PERM, _shingles, entry_text
    from aggregator.folding import folded_words

    words = folded_words(entry_text(entry("T", text))[0])
    if len(words) < TEXT_MIN_WORDS:
        return None
    sketch = MinHash(num_perm=NUM_PERM, seed=_MINHASH_SEED, scheme="affine32")
    sketch.update_batch(sorted(_shingles(words)))
    return tuple(int(value) for value in sketch.hashvalues)


def test_signatures_are_datasketchs_bit_for_bit() -> None:
    """Stored signatures were made by datasketch: the numpy pass must give the same ones,
    for a document of many texts at once as for each alone."""
    from aggregator.fingerprint import fingerprints

    texts = [FLOYD, FLOYD_OTHER, WEEKLY_A, WEEKLY_B, "too short", FLOYD + " " + WEEKLY_A]
    together = fingerprints([(entry("T", text), T0) for text in texts])
    for text, print_ in zip(texts, together, strict=True):
        assert print_.signature == _datasketch_signature(text)
        assert print_ == fingerprint(entry("T", text), T0)


@given(st.lists(st.text(alphabet="abcdefgh éü ", min_size=40, max_size=300), max_size=5))
def test_signatures_match_datasketch_for_any_texts(texts: list[str]) -> None:
    from aggregator.fingerprint import fingerprints

    together = fingerprints([(entry("T", text), T0) for text in texts])
    for text, print_ in zip(texts, together, strict=True):
        assert print_.signature == _datasketch_signature(text)
