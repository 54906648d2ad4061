"""The filter query language: what each kind of term matches, what is refused, and why."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from aggregator.filters import (
    FIELDS,
    Query,
    QueryError,
    fold,
    matches,
    matches_any_copy,
    parse_query,
)
from aggregator.model import StoredEntry, Story

SEEN = datetime(2024, 5, 1, tzinfo=UTC)


def make_entry(**fields: Any) -> StoredEntry:
    values: dict[str, Any] = {
        "source": "marxist",
        "source_title": "In Defence of Marxism",
        "source_url": "https://www.marxist.com/index.rss",
        "source_link": "https://www.marxist.com/",
        "guid": None,
        "link": "https://www.marxist.com/article.htm",
        "title": "",
        "summary": "",
        "content": "",
        "author": None,
        "published": None,
        "updated": None,
        "first_seen": SEEN,
    }
    values.update(fields)
    return StoredEntry(**values)


def make_story(*copies: StoredEntry) -> Story:
    return Story(uid="urn:uuid:x", sort_time=SEEN, face=copies[0], copies=copies)


MATCH_CASES: list[tuple[str, dict[str, Any], bool]] = [
    # bare words search title, summary and content, case-insensitively
    ("Iran", {"title": "Talks with Iran resume"}, True),
    ("iran", {"title": "IRAN TALKS"}, True),
    ("Iran", {"summary": "<p>Envoys flew to <b>Iran</b>.</p>"}, True),
    ("Iran", {"content": "<div>News from Iran</div>"}, True),
    ("Iran", {"title": "Talks resume", "author": "Iran Desk"}, False),
    # word boundaries
    ("Iran", {"title": "Iran's nuclear programme"}, True),
    ("Iran", {"title": "Iran’s nuclear programme"}, True),
    ("Iran", {"title": "Sanctions on Iran."}, True),
    ("Iran", {"title": "Iranian elections"}, False),
    ("Iran", {"title": "Tehran, capital"}, False),
    ("Iran", {"title": "Israel–Iran war"}, True),
    # trailing * matches any word ending, still from a word start
    ("Iran*", {"title": "Iranian elections"}, True),
    ("Palestin*", {"title": "Palestine solidarity"}, True),
    ("Palestin*", {"title": "Palestinian workers strike"}, True),
    ("Palestin*", {"title": "Palestin"}, True),
    ("Palestin*", {"title": "Anti-palestinian bias"}, True),
    ("Palestin*", {"title": "Prepalestinian era"}, False),
    # phrases: words in sequence, any non-word characters between them
    ('"Help Wanted"', {"title": "Help Wanted: editors"}, True),
    ('"Help Wanted"', {"title": "help-wanted board"}, True),
    ('"Help Wanted"', {"title": "Wanted: help"}, False),
    ('"Help Wanted"', {"title": "Helpers wanted"}, False),
    ("“Help Wanted”", {"title": "Help wanted"}, True),
    ("„Help Wanted“", {"title": "Help wanted"}, True),
    ("“Iran’s nuclear”", {"title": "Iran's nuclear deal"}, True),
    ('"Iran\'s nuclear"', {"title": "Iran’s nuclear deal"}, True),
    ('"general strike"', {"summary": "<p>A general</p><p>strike</p>"}, True),
    ('"Palestin* state*"', {"title": "Palestinian statehood"}, True),
    # apostrophes and quotes fold to one form, in the query and the text
    ("Iran's", {"title": "Iran’s leaders"}, True),
    ("Iran’s", {"title": "Iran's leaders"}, True),
    ("Iran's", {"title": "Iran leaders"}, False),
    ('"don\'t"', {"title": "We don’t agree"}, True),
    # Unicode folding: accents, ligatures, letters without a decomposition, ß
    ("Zürich", {"title": "Strike in zurich"}, True),
    ("zurich", {"title": "Streik in Zürich"}, True),
    ("ZÜRICH", {"title": "Zürich"}, True),
    ("Ærø", {"title": "Ferry to ærø"}, True),
    ("aero", {"title": "Ferry to Ærø"}, True),
    ("Łódź", {"title": "Protest in Lodz"}, True),
    ("strasse", {"title": "Straße closed"}, True),
    ("office", {"title": "The oﬃce"}, True),
    ("Istanbul", {"title": "İstanbul"}, True),
    ("Palestine", {"title": "Pales\u00adtine"}, True),
    # punctuation at a value's edges is literal
    ("C++", {"title": "Why C++ won"}, True),
    ("C++", {"title": "Vitamin C"}, False),
    ("#strike", {"title": "Join the #strike"}, True),
    # fields
    ("title:Gaza", {"title": "Gaza ceasefire"}, True),
    ("title:Gaza", {"title": "Ceasefire", "summary": "in Gaza"}, False),
    ("summary:Gaza", {"title": "Gaza", "summary": "ceasefire"}, False),
    ("summary:Gaza", {"content": "<p>Gaza</p>"}, True),
    ("summary:strong", {"summary": "<strong>Ceasefire</strong>"}, False),
    ("author:Woods", {"author": "Alan Woods"}, True),
    ("author:Woods", {"author": None, "title": "Woods"}, False),
    ("tag:sport", {"tags": ("World", "Sport")}, True),
    ("tag:sport", {"tags": ("Sports",)}, False),
    ("tag:sport", {"title": "sport"}, False),
    ('tag:"Middle East"', {"tags": ("Middle East",)}, True),
    ("source:marxist", {}, True),
    ("source:marxist", {"source": "socialist"}, False),
    ("source:Marxism", {}, False),
    ("link:marxist.com", {}, True),
    ("link:marxist.com", {"link": None}, False),
    ("link:article", {"link": "https://example.org/news/article-123"}, True),
    ("TITLE:gaza", {"title": "Gaza"}, True),
    # negation
    ("-Iran", {"title": "Iran talks"}, False),
    ("-Iran", {"title": "Iraq talks"}, True),
    ("-tag:sport", {"tags": ("sport",)}, False),
    ("-tag:sport", {"tags": ()}, True),
    ("-author:Woods", {"author": None}, True),
    ('-"Help Wanted"', {"title": "Help Wanted"}, False),
    # every term must match
    ("title:Iran -tag:sport", {"title": "Iran", "tags": ("world",)}, True),
    ("title:Iran -tag:sport", {"title": "Iran", "tags": ("sport",)}, False),
    ("Iran Iraq", {"title": "Iran and Iraq"}, True),
    ("Iran Iraq", {"title": "Iran"}, False),
    ("Iran   source:marxist", {"title": "Iran"}, True),
    # regular expressions: re.search, case-insensitive, on the text or its folded form
    ("/ir(an|aq)/", {"title": "IRAQ war"}, True),
    ("/^Iran/", {"title": "News: Iran"}, False),
    ("title:/\\d{4}/", {"title": "Budget 2025"}, True),
    ("/zurich/", {"title": "Zürich"}, True),
    ("/Zürich/", {"title": "Zürich"}, True),
    ("/ran/", {"title": "Iranian"}, True),
    ("link:/\\.pdf$/", {"link": "https://x.org/a.PDF"}, True),
    ("/a/b/", {"title": "a/b testing"}, True),
    ("/a b/", {"title": "a b"}, True),
    ("-/iran/", {"title": "Iranian"}, False),
]


@pytest.mark.parametrize(("query", "fields", "expected"), MATCH_CASES)
def test_query_matches_entry_as_the_spec_says(
    query: str, fields: dict[str, Any], expected: bool
) -> None:
    assert matches(parse_query(query), make_entry(**fields)) is expected


INVALID_QUERIES: list[tuple[str, str]] = [
    ("", "empty query"),
    ("   ", "empty query"),
    ("titel:Iran", "unknown field 'titel' (known: title, summary, author, tag, source, link"),
    ("https://example.org", "unknown field 'https'"),
    ('"Help Wanted', "unterminated quote at column 1"),
    ('title:"Help', "unterminated quote at column 7"),
    ("“Help", "unterminated quote"),
    ("title:", "empty value for field 'title' at column 7"),
    ("title: Iran", "empty value for field 'title'"),
    ('""', "empty phrase"),
    ('title:"  "', "empty phrase at column 7"),
    ('"Help"Wanted', "a space must follow the closing quote at column 7"),
    ("-", "'-' must be followed by a term at column 1"),
    ("Iran - Iraq", "'-' must be followed by a term at column 6"),
    ("Pal*stine", "'*' may only end a word at column 4"),
    ("*stine", "'*' may only end a word at column 1"),
    ("Iran**", "'*' may only end a word at column 5"),
    ('"a *b"', "'*' may only end a word at column 4"),
    ("/ir(an/", "invalid regular expression: missing ), unterminated subpattern at column 4"),
    ("/[a/", "invalid regular expression: unterminated character set"),
    ("/a{99999999999}/", "invalid regular expression: the repetition number is too large"),
    ("/iran", "unterminated regular expression"),
    ("//", "empty regular expression"),
    ("link:/news/world", "unterminated regular expression"),
]


@pytest.mark.parametrize(("query", "message"), INVALID_QUERIES)
def test_invalid_query_raises_query_error_naming_problem_and_place(
    query: str, message: str
) -> None:
    with pytest.raises(QueryError, match=re.escape(message)) as raised:
        parse_query(query)
    assert repr(query) in str(raised.value)


def test_query_error_is_a_value_error() -> None:
    assert issubclass(QueryError, ValueError)


def test_parsed_query_keeps_its_text_and_terms() -> None:
    query = parse_query('-title:"Help Wanted" Palestin* tag:/sport/')
    assert query.text == '-title:"Help Wanted" Palestin* tag:/sport/'
    assert [(t.field, t.value, t.kind, t.negated) for t in query.terms] == [
        ("title", "Help Wanted", "phrase", True),
        (None, "Palestin*", "word", False),
        ("tag", "sport", "regex", False),
    ]
    assert query == parse_query(query.text)
    assert hash(query) == hash(parse_query(query.text))


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Zürich", "zurich"),
        ("ÆRØ", "aero"),
        ("Łódź", "lodz"),
        ("Straße", "strasse"),
        ("“quoted” ‘single’", "\"quoted\" 'single'"),
        ("a–b—c−d", "a-b-c-d"),
        ("ﬁne", "fine"),
        ("Ｗｉｄｅ", "wide"),
        ("soft\u00adhyphen", "softhyphen"),
    ],
)
def test_fold_makes_variants_equal(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_story_matches_when_one_copy_matches_the_whole_query() -> None:
    query = parse_query("Iran tag:world")
    iran_untagged = make_entry(title="Iran talks", tags=())
    other_tagged = make_entry(title="Budget", tags=("world",), source="socialist")
    iran_tagged = make_entry(title="Iran talks", tags=("world",), source="socialist")
    assert not matches_any_copy(query, make_story(iran_untagged, other_tagged))
    assert matches_any_copy(query, make_story(iran_untagged, iran_tagged))


def test_negated_term_rejects_story_only_when_every_copy_has_it() -> None:
    query = parse_query("-tag:sport")
    sport = make_entry(tags=("sport",))
    plain = make_entry(tags=(), source="socialist")
    assert not matches_any_copy(query, make_story(sport))
    assert matches_any_copy(query, make_story(sport, plain))


# --- properties ---------------------------------------------------------------

QUERY_PIECES = [*"ab Zü-*:\"“”/\\()[]{}?+.^$|'’", *FIELDS, "titel", "Iran", "Ærø"]
QUERYISH = st.lists(st.sampled_from(QUERY_PIECES), max_size=12).map("".join)


@given(st.one_of(st.text(max_size=40), QUERYISH))
def test_parse_query_raises_only_query_error(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as error:
        assert str(error)
    else:
        assert query.text == text
        assert query.terms


ENTRY_TEXT = st.text(max_size=30)


@given(
    query_text=QUERYISH,
    title=ENTRY_TEXT,
    summary=ENTRY_TEXT,
    author=st.none() | ENTRY_TEXT,
    tags=st.lists(ENTRY_TEXT, max_size=3),
)
def test_matching_a_parsed_query_never_raises(
    query_text: str, title: str, summary: str, author: str | None, tags: list[str]
) -> None:
    try:
        query = parse_query(query_text)
    except QueryError:
        return
    entry = make_entry(title=title, summary=summary, author=author, tags=tuple(tags))
    assert matches(query, entry) in (True, False)


LETTER_WORDS = st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=12)
SEPARATORS = st.sampled_from([" ", ", ", " – ", ": ", "’s ", ". ", " (", ") "])


def _searchable(word: str) -> bool:
    # A few letters fold to nothing or to non-word characters (halfwidth sound marks,
    # modifier letters): such a word has no searchable form of its own.
    return re.fullmatch(r"\w+", fold(word)) is not None


@given(
    words=st.lists(LETTER_WORDS, min_size=1, max_size=6),
    separators=st.lists(SEPARATORS, min_size=6, max_size=6),
    pick=st.integers(min_value=0),
)
def test_word_taken_from_title_matches_its_title(
    words: list[str], separators: list[str], pick: int
) -> None:
    word = words[pick % len(words)]
    assume(_searchable(word))
    title = "".join(w + s for w, s in zip(words, separators, strict=False))
    assert matches(parse_query(word), make_entry(title=title))


@given(query_text=QUERYISH, title=ENTRY_TEXT, tags=st.lists(ENTRY_TEXT, max_size=2))
def test_negation_inverts_a_single_term_query(query_text: str, title: str, tags: list[str]) -> None:
    try:
        query = parse_query(query_text)
    except QueryError:
        return
    assume(len(query.terms) == 1 and not query.terms[0].negated)
    negated = parse_query("-" + query_text.lstrip())
    entry = make_entry(title=title, tags=tuple(tags))
    assert matches(negated, entry) is not matches(query, entry)


def test_query_str_is_its_text() -> None:
    assert str(parse_query("title:Iran")) == "title:Iran"
    assert isinstance(parse_query("x"), Query)


# --- properties of the parser and of word matching ------------------------------------

LATIN_WORD = st.text(
    alphabet=st.characters(min_codepoint=0x41, max_codepoint=0x24F, categories=["Lu", "Ll"]),
    min_size=1,
    max_size=10,
).filter(_searchable)
TERM = st.tuples(
    st.booleans(),  # negated
    st.sampled_from([None, *FIELDS]),
    st.sampled_from(["word", "prefix", "phrase"]),
    st.lists(LATIN_WORD, min_size=1, max_size=3),
)


def _render(negated: bool, field: str | None, kind: str, words: list[str]) -> tuple[str, str]:
    """A term's text, and the value the parser should report for it."""
    if kind == "phrase":
        value = " ".join(words)
        body = f'"{value}"'
    else:
        value = words[0] + ("*" if kind == "prefix" else "")
        body = value
    return ("-" if negated else "") + (f"{field}:" if field else "") + body, value


@given(st.lists(TERM, min_size=1, max_size=5))
def test_rendered_terms_parse_back_to_the_same_terms(terms: list[Any]) -> None:
    rendered = [_render(*term) for term in terms]
    query = parse_query(" ".join(text for text, _ in rendered))
    assert [(t.negated, t.field, t.value) for t in query.terms] == [
        (negated, field, value)
        for (negated, field, _, _), (_, value) in zip(terms, rendered, strict=True)
    ]
    assert [t.kind for t in query.terms] == [
        "phrase" if kind == "phrase" else "word" for _, _, kind, _ in terms
    ]


@given(word=LATIN_WORD, suffix=LATIN_WORD)
def test_a_word_never_matches_a_longer_word_but_its_wildcard_does(word: str, suffix: str) -> None:
    longer = make_entry(title=f"News of {word}{suffix} today")
    assume(re.fullmatch(r"\w+", fold(word + suffix)))
    assert not matches(parse_query(word), longer)
    assert matches(parse_query(word + "*"), longer)


@given(word=LATIN_WORD, apostrophe=st.sampled_from(["'", "’", "ʼ"]))
def test_a_word_matches_its_possessive(word: str, apostrophe: str) -> None:
    assert matches(parse_query(word), make_entry(title=f"{word}{apostrophe}s leaders"))


@given(words=st.lists(LATIN_WORD, min_size=1, max_size=4), pick=st.integers(min_value=0))
def test_matching_ignores_case_and_curly_quotes(words: list[str], pick: int) -> None:
    title = "“" + " ".join(words) + "” – it’s said"
    word = words[pick % len(words)]
    for variant in (title, title.upper(), title.lower(), title.replace("“", '"')):
        assert matches(parse_query(word), make_entry(title=variant)), variant
        assert matches(parse_query(word.swapcase()), make_entry(title=variant)), variant


@given(words=st.lists(LATIN_WORD, min_size=2, max_size=4))
def test_a_phrase_of_a_titles_words_matches_it_and_reversed_does_not(words: list[str]) -> None:
    assume(len({fold(w) for w in words}) == len(words))
    entry = make_entry(title=", ".join(words) + ".")
    assert matches(parse_query('"' + " ".join(words) + '"'), entry)
    assert not matches(parse_query('"' + " ".join(reversed(words)) + '"'), entry)


@given(query_text=QUERYISH, title=ENTRY_TEXT)
def test_a_query_matches_when_and_only_when_every_term_alone_does(
    query_text: str, title: str
) -> None:
    try:
        query = parse_query(query_text)
    except QueryError:
        return
    entry = make_entry(title=title)
    singles = [Query(query.text, (term,)) for term in query.terms]
    assert matches(query, entry) is all(matches(single, entry) for single in singles)
