"""The filter query language of output feeds and of the HTTP `q` parameter.

A query is terms separated by spaces, all of which must match (AND). A term is
`[-][field:]value`:

- `-` negates the term.
- `field` is `title`, `summary` (summary and content text), `author`, `tag` (the
  entry's own categories), `source` (source name) or `link`; without a field the
  term searches title, summary and content.
- `value` is a word or a quoted phrase (`"…"`, or curly `“…”`). Its words must appear
  in that order, separated by any non-word characters, on word boundaries: `Iran`
  matches "Iran's" and "Iran." but not "Iranian". Punctuation at the very start or
  end of the value is kept literally (`C++`, `#tag`). A `*` at the end of a word
  matches any ending (`Palestin*`).
- `/regex/` is a Python regular expression, searched case-insensitively in the
  field's text and in its folded form; it matches when either search finds it, so
  `/zurich/` finds "Zürich" and `/Zürich/` does too.

A query from the network (`parse_query(text, untrusted=True)`, the HTTP `q`
parameter) runs its regexes on RE2 instead, whose matching time is linear in the
text: Python's backtracking engine takes exponential time on `/(a+)+$/` and would
hang a worker. RE2 lacks backreferences and lookaround; such a regex is refused
with a QueryError saying so. Admins' own filters keep the whole Python syntax.

Words and phrases compare *folded* text (see `folding.fold`): case, accents, compatibility
forms, curly quotes and dash variants make no difference.

Every term is compiled to one regular expression when the query is parsed, so
matching an entry is a handful of `re.search` calls over cached folded text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import re2

from aggregator.folding import fold
from aggregator.model import StoredEntry, Story
from aggregator.sanitize import html_to_text

FIELDS: tuple[str, ...] = ("title", "summary", "author", "tag", "source", "link")

_OPENING_QUOTES = '"“”„'
_CLOSING_QUOTES = '"”“'
_FIELD_PREFIX = re.compile(r"([A-Za-z]+):")
_WORD = re.compile(r"\w+")


class QueryError(ValueError):
    """A query that cannot be parsed; the message says what is wrong and where."""

    def __init__(self, problem: str, query: str, position: int | None = None) -> None:
        self.problem = problem
        self.query = query
        self.position = position  # 0-based index into `query`, when one place is to blame
        where = f" at column {position + 1}" if position is not None else ""
        super().__init__(f"{problem}{where} in query {query!r}")


class Pattern(Protocol):
    """What a term searches with: a compiled Python `re` pattern, or an RE2 one."""

    def search(self, text: str) -> object | None: ...


# RE2 compiles a pattern into an automaton of at most this much memory; past it the
# pattern is refused ("pattern too large") instead of growing without bound.
_RE2_MAX_MEMORY = 8 << 20


@dataclass(frozen=True, slots=True)
class Term:
    """One compiled term: where to look, the pattern to search, and whether to negate."""

    field: str | None  # None: title, summary and content
    value: str  # as written, without quotes or slashes
    kind: str  # "word", "phrase" or "regex"
    negated: bool
    pattern: Pattern
    position: int  # 0-based index of the term in the query text


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: its source text and its terms, all of which must match."""

    text: str
    terms: tuple[Term, ...]

    def __str__(self) -> str:
        return self.text


def parse_query(text: str, *, untrusted: bool = False) -> Query:
    """Parse and compile `text`; raises `QueryError` naming the problem and its column.

    `untrusted`: the query comes from the network, so its regexes run on RE2 (see
    the module doc)."""
    terms: list[Term] = []
    position = 0
    length = len(text)
    while True:
        while position < length and text[position].isspace():
            position += 1
        if position >= length:
            break
        term, position = _parse_term(text, position, untrusted)
        terms.append(term)
    if not terms:
        raise QueryError("empty query", text)
    return Query(text=text, terms=tuple(terms))


def matches(query: Query, entry: StoredEntry) -> bool:
    """Whether every term of `query` holds for `entry`."""
    return all(_term_matches(term, entry) for term in query.terms)


def matches_any_copy(query: Query, story: Story) -> bool:
    """Whether some single copy of `story` satisfies the whole query."""
    return any(matches(query, copy) for copy in story.copies)


def _parse_term(text: str, start: int, untrusted: bool) -> tuple[Term, int]:
    position = start
    negated = text[position] == "-"
    if negated:
        position += 1
        if position >= len(text) or text[position].isspace():
            raise QueryError("'-' must be followed by a term", text, start)
    field: str | None = None
    prefix = _FIELD_PREFIX.match(text, position)
    if prefix:
        field = prefix.group(1).lower()
        if field not in FIELDS:
            raise QueryError(
                f"unknown field {prefix.group(1)!r} (known: {', '.join(FIELDS)}; "
                "quote the value to search for a colon)",
                text,
                position,
            )
        position = prefix.end()
    value_start = position
    if position >= len(text) or text[position].isspace():
        raise QueryError(f"empty value for field {field!r}", text, value_start)
    opener = text[position]
    pattern: Pattern
    if opener in _OPENING_QUOTES:
        raw, position = _read_quoted(text, position)
        kind = "phrase"
        pattern = _words_pattern(raw, text, value_start + 1)
        value = raw.strip()
    elif opener == "/":
        value, position = _read_regex(text, position)
        kind = "regex"
        pattern = (
            _linear_regex_pattern(value, text, value_start)
            if untrusted
            else _regex_pattern(value, text, value_start)
        )
    else:
        end = position
        while end < len(text) and not text[end].isspace():
            end += 1
        value, position = text[position:end], end
        kind = "word"
        pattern = _words_pattern(value, text, value_start)
    term = Term(
        field=field, value=value, kind=kind, negated=negated, pattern=pattern, position=start
    )
    return term, position


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """The phrase between quotes starting at `start`, and the index after the closing quote."""
    end = start + 1
    while end < len(text) and text[end] not in _CLOSING_QUOTES:
        end += 1
    if end >= len(text):
        raise QueryError("unterminated quote", text, start)
    after = end + 1
    if after < len(text) and not text[after].isspace():
        raise QueryError("a space must follow the closing quote", text, after)
    value = text[start + 1 : end]
    if not value.strip():
        raise QueryError("empty phrase", text, start)
    return value, after


def _read_regex(text: str, start: int) -> tuple[str, int]:
    """The regex between slashes; it ends at the first unescaped `/` followed by a space
    or the end, so `/a/b/` is the regex `a/b`."""
    end = start + 1
    while end < len(text):
        char = text[end]
        if char == "\\":
            end += 2
            continue
        if char == "/" and (end + 1 == len(text) or text[end + 1].isspace()):
            break
        end += 1
    if end >= len(text):
        raise QueryError(
            "unterminated regular expression (quote a value that starts with '/')", text, start
        )
    value = text[start + 1 : end]
    if not value:
        raise QueryError("empty regular expression", text, start)
    return value, end + 1


def _regex_pattern(value: str, text: str, value_start: int) -> re.Pattern[str]:
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as error:
        where = value_start + 1 + error.pos if error.pos is not None else value_start
        raise QueryError(f"invalid regular expression: {error.msg}", text, where) from error
    except (OverflowError, RecursionError) as error:
        raise QueryError(f"invalid regular expression: {error}", text, value_start) from error


def _linear_regex_pattern(value: str, text: str, value_start: int) -> Pattern:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the QueryError says it; RE2's own log would go to stderr
    options.max_mem = _RE2_MAX_MEMORY
    try:
        pattern: Pattern = re2.compile(value, options)
    except re2.error as error:
        detail = error.args[0] if error.args else error
        reason = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise QueryError(
            f"regular expression not accepted in a query from the network ({reason}); "
            "network queries run on RE2: no backreferences or lookaround",
            text,
            value_start,
        ) from None
    return pattern


def _words_pattern(value: str, text: str, value_start: int) -> re.Pattern[str]:
    """Compile a word or phrase into a search over folded text (see the module doc).

    `value_start` is where `value` begins in `text`, for error positions."""
    folded = fold(value).strip()
    if not folded:
        raise QueryError("nothing to search for in the value", text, value_start)
    # Where each star of the folded value was written, to point at the wrong one.
    written_stars = [
        value_start + i
        for i, char in enumerate(value)
        if "*" in unicodedata.normalize("NFKD", char)
    ]
    for star, written_at in zip(re.finditer(r"\*", folded), written_stars, strict=False):
        at = star.start()
        after_word = at > 0 and _WORD.fullmatch(folded[at - 1]) is not None
        at_word_end = at + 1 == len(folded) or folded[at + 1].isspace()
        if not (after_word and at_word_end):
            raise QueryError("'*' may only end a word", text, written_at)
    words = list(_WORD.finditer(folded))
    if not words:
        return re.compile(re.escape(folded))
    parts: list[str] = []
    lead = folded[: words[0].start()]
    parts.append(re.escape(lead) if lead else r"(?<!\w)")
    for index, word in enumerate(words):
        if index:
            parts.append(r"\W+")
        parts.append(re.escape(word.group()))
        if folded.startswith("*", word.end()):
            parts.append(r"\w*")
    last = words[-1]
    wildcard_end = folded.startswith("*", last.end())
    trail = folded[last.end() + (1 if wildcard_end else 0) :]
    if trail:
        parts.append(re.escape(trail))
    elif not wildcard_end:
        parts.append(r"(?!\w)")
    return re.compile("".join(parts))


def _term_matches(term: Term, entry: StoredEntry) -> bool:
    texts = _FIELD_TEXTS[term.field](entry)
    if term.kind == "regex":
        found = any(term.pattern.search(text) or term.pattern.search(fold(text)) for text in texts)
    else:
        found = any(term.pattern.search(fold(text)) for text in texts)
    return found != term.negated


@lru_cache(maxsize=512)
def _plain(fragment: str) -> str:
    return html_to_text(fragment)


def _summary_texts(entry: StoredEntry) -> tuple[str, ...]:
    # Searched apart, so a phrase never spans the end of the summary and the start of the content.
    return tuple(_plain(html) for html in (entry.summary, entry.content) if html)


_FIELD_TEXTS: dict[str | None, Callable[[StoredEntry], tuple[str, ...]]] = {
    None: lambda entry: (entry.title, *_summary_texts(entry)),
    "title": lambda entry: (entry.title,),
    "summary": _summary_texts,
    "author": lambda entry: (entry.author,) if entry.author else (),
    "tag": lambda entry: entry.tags,
    "source": lambda entry: (entry.source,),
    "link": lambda entry: (entry.link,) if entry.link else (),
}
