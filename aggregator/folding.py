"""How text is compared: Unicode folding, shared by filter queries and story matching.

Two texts that a reader would call "the same words" must fold to the same string:
case, accents, compatibility forms (ligatures, full-width letters), curly and straight
quotes, dash variants and invisible characters make no difference. `fold` is the one
definition; `filters` matches queries against folded text and `dedupe` compares
folded titles and texts, so "equal after folding" means the same thing in both.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache

# Letters that Unicode does not decompose but that readers type without the mark
# ("Ærø" is searched as "aero", "Łódź" as "lodz"). Applied after casefolding.
_LETTERS = {
    "æ": "ae",
    "ø": "o",
    "œ": "oe",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "ı": "i",
    "ħ": "h",
    "ŧ": "t",
}
# Typographic variants that feeds and people use interchangeably with the ASCII mark.
_APOSTROPHES = "‘’‚‛′`´ʹʻʼʽ＇"
_QUOTES = "“”„‟″«»＂"
_DASHES = "‐‑‒–—―−⁃﹘﹣－"
# Invisible characters that split a word in the source without showing (soft hyphen,
# zero-width space/joiners, word joiner, BOM).
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"

_FOLD_TABLE = str.maketrans(
    {
        **{ch: "'" for ch in _APOSTROPHES},
        **{ch: '"' for ch in _QUOTES},
        **{ch: "-" for ch in _DASHES},
        **{ch: None for ch in _INVISIBLE},
        **_LETTERS,
    }
)

_WORD = re.compile(r"\w+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


# Bounded small: keys are whole summaries and contents, and one selection pass
# (a feed page, a few include queries over each candidate) only revisits a few hundred.
@lru_cache(maxsize=1024)
def fold(text: str) -> str:
    """The form in which words are compared: compatibility-decomposed, accents dropped,
    casefolded, letters such as æ ø ł spelled in ASCII, quote, apostrophe and dash
    variants made ASCII, soft hyphens and zero-width characters removed."""
    if text.isascii():
        # NFKD leaves ASCII as it is and casefold is lower(); of the table only its one
        # ASCII entry applies (a backtick is an apostrophe; tests/test_fingerprint.py
        # holds `fold` to the reference). Most feed text is ASCII: this is the hot path,
        # and str.replace costs a fifteenth of translate with a dict table.
        return text.lower().replace("`", "'")
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    # One pass drops the combining marks and applies the table: no mark is in the table,
    # and nothing the table puts in is a mark, so the order of the two does not matter.
    # Only the runs of non-ASCII characters go through translate, which looks every
    # character up in the dict: a text with a few curly quotes folded five times faster.
    table = _fold_and_strip_table()
    folded = _NON_ASCII.sub(lambda run: run.group().translate(table), decomposed)
    return folded.replace("`", "'")


@lru_cache(maxsize=1)
def _fold_and_strip_table() -> dict[int, str | None]:
    # Built on first use (about 60 ms): a generator over every character of every
    # text was a third of the cost of fingerprinting an entry.
    marks = {code: None for code in range(sys.maxunicode + 1) if unicodedata.combining(chr(code))}
    return {**marks, **_FOLD_TABLE}


def folded_words(text: str) -> list[str]:
    """The words of `text` after folding, punctuation dropped: "Iran’s War!" → iran, s, war."""
    return _WORD.findall(fold(text))
