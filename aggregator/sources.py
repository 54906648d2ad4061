"""Editing the `[sources.NAME]` tables of a configuration text, keeping its layout.

Pure: text in, text out. tomlkit keeps every comment, blank line, key order and
quoting of the file as written; the functions here decide where a new table or key
goes so that the file still reads as its author laid it out: a new source after the
last one (before whatever comment introduces the next section), a new key after the
table's last key, a removed table's leading comment gone with it. They do not check
the result: the caller validates it with `config.parse_config` before saving.

Also pure and here: names for new sources (from a feed's title), duplicate detection
by `dedupe.canonical_url`, and the plan of an OPML import.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Comment, InlineTable, Item, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from aggregator.config import name_problem, url_problem
from aggregator.dedupe import canonical_url
from aggregator.folding import fold

# What `sources set` may change, and how its VALUE is read.
KEYS: Final = ("url", "path", "title", "categories", "interval", "enabled", "allow_private")
_BOOLEAN_KEYS: Final = frozenset({"enabled", "allow_private"})
_TRUE: Final = frozenset({"true", "yes", "on", "1"})
_FALSE: Final = frozenset({"false", "no", "off", "0"})
# One of the two says where the feed is; setting one drops the other.
_LOCATIONS: Final = ("url", "path")
# Names stay short enough to type and to read in a table.
MAX_NAME = 40


class EditError(ValueError):
    """An edit that cannot be made as asked: no such source, a name taken, a bad value."""


@dataclass(frozen=True, slots=True)
class NewSource:
    """A `[sources.NAME]` table to add."""

    name: str
    url: str | None = None
    path: str | None = None
    title: str | None = None
    categories: tuple[str, ...] = ()
    interval: str | None = None
    enabled: bool = True

    def values(self) -> dict[str, Any]:
        """The table's keys in the order a person writes them; defaults left out."""
        values: dict[str, Any] = {}
        if self.url is not None:
            values["url"] = self.url
        if self.path is not None:
            values["path"] = self.path
        if self.title:
            values["title"] = self.title
        if self.categories:
            values["categories"] = list(self.categories)
        if self.interval:
            values["interval"] = self.interval
        if not self.enabled:
            values["enabled"] = False
        return values


# ---------------------------------------------------------------------------
# Edits


def add_sources(text: str, new: Sequence[NewSource]) -> str:
    """`text` with a table for each of `new` after the last `[sources.*]` table."""
    doc = _parse(text)
    fragments = _fragments(doc)
    for source in new:
        if _find(fragments, source.name) is not None:
            raise EditError(f"a source named {source.name!r} exists already")
    if not new:
        return text
    if not fragments:
        return _append_tables(text, new)
    group = fragments[-1]
    children = _child_tables(group)
    if not children:
        # `[sources]` with inline tables: add in the same style.
        for source in new:
            group.append(source.name, _inline_table(source.values()))
        return tomlkit.dumps(doc)
    last = children[-1]
    tail = _detach_tail(last)
    previous = last
    for source in new:
        previous.value.body.append((None, Whitespace("\n")))
        table = _table(source.values())
        group.append(source.name, table)
        previous = table
    previous.value.body.extend(tail)
    return tomlkit.dumps(doc)


def remove_source(text: str, name: str) -> str:
    """`text` without `[sources.NAME]` (and the comment lines right above its header)."""
    doc = _parse(text)
    fragments = _fragments(doc)
    found = _find(fragments, name)
    if found is None:
        raise EditError(_unknown(name, fragments))
    group, table = found
    if not isinstance(table, Table):
        del group[name]
        return tomlkit.dumps(doc)
    tables = list(_document_tables(doc))
    index = next(i for i, t in enumerate(tables) if t is table)
    # A comment right above the first source may be the header of the sources section
    # rather than this table's own: it is dropped only between two sources.
    described = next(t for f in fragments for t in _child_tables(f)) is not table
    tail = _detach_tail(table)
    del group[name]
    # tomlkit's key index is not touched below (only item lists): the text is rendered
    # from these lists and parsed afresh by whoever reads it next.
    if index > 0:
        previous = tables[index - 1].value.body
        if described:
            _drop_attached_comments(previous)
        _strip_blank_lines(previous)
        previous.extend(tail)
    else:
        # The first table of the file: the tail goes where the table stood.
        at = next(i for i, (key, item) in enumerate(doc.body) if item is group)
        before = doc.body[:at]
        _strip_blank_lines(before)
        while not before and tail and isinstance(tail[0][1], Whitespace):
            tail.pop(0)  # no blank line at the top of the file
        doc.body[:at] = [*before, *tail]
    if len(group) == 0:
        # No source left here: no empty `[sources]` header either.
        at = next(i for i, (key, item) in enumerate(doc.body) if item is group)
        del doc.body[at]
    return tomlkit.dumps(doc)


def set_keys(text: str, name: str, changes: Mapping[str, Any]) -> str:
    """`text` with these keys of `[sources.NAME]` set (a value of None removes the key).

    An existing key keeps its place and its trailing comment; a new one goes after the
    table's last key.
    """
    doc = _parse(text)
    fragments = _fragments(doc)
    found = _find(fragments, name)
    if found is None:
        raise EditError(_unknown(name, fragments))
    table = found[1]
    if not isinstance(table, Table | InlineTable):
        raise EditError(f"sources.{name} is not a table")
    renamed = _swap_location(table, changes)
    removals = [key for key, value in changes.items() if value is None and key in table]
    for key in removals:
        del table[key]
    existing = {
        key: value
        for key, value in changes.items()
        if value is not None and key in table and key not in renamed
    }
    for key, value in existing.items():
        table[key] = value
    added = {key: value for key, value in changes.items() if value is not None and key not in table}
    if added:
        if isinstance(table, Table):
            tail = _detach_tail(table)
            for key, value in added.items():
                table.append(key, value)
            table.value.body.extend(tail)
        else:
            for key, value in added.items():
                table.append(key, value)
    return tomlkit.dumps(doc)


def _swap_location(table: Table | InlineTable, changes: Mapping[str, Any]) -> set[str]:
    """A new `url` where `path` was (or the other way round), so the table keeps its
    order; returns the keys written this way."""
    for new, old in (_LOCATIONS, tuple(reversed(_LOCATIONS))):
        if changes.get(new) is not None and new not in table and old in table:
            if changes.get(old, "") is not None:
                continue  # the other one is kept: nothing to swap
            replace = getattr(table.value if isinstance(table, Table) else table, "_replace", None)
            if replace is None:  # a tomlkit without it: delete and add instead
                return set()
            replace(old, new, changes[new])
            return {new}
    return set()


def remove_from_feeds(text: str, source: str) -> tuple[str, list[str]]:
    """`text` with `source` taken out of every `[feeds.*] sources` list; the feeds changed.

    Raises EditError when that would leave a feed with neither sources nor categories,
    since such a feed takes every source.
    """
    doc = _parse(text)
    feeds = doc.get("feeds")
    changed: list[str] = []
    if not isinstance(feeds, Mapping):
        return text, changed
    for feed_name, feed in feeds.items():
        if not isinstance(feed, Mapping):
            continue
        listed = feed.get("sources")
        if not isinstance(listed, list) or source not in listed:
            continue
        remaining = [item for item in listed if item != source]
        if not remaining and not feed.get("categories"):
            raise EditError(
                f"feed {feed_name!r} lists only source {source!r}: without it, it would take "
                f"every source; change or remove [feeds.{feed_name}] first"
            )
        for index in reversed([i for i, item in enumerate(listed) if item == source]):
            del listed[index]
        changed.append(feed_name)
    return tomlkit.dumps(doc), changed


def parse_value(key: str, value: str) -> Any:
    """What `sources set NAME KEY VALUE` writes: a string, a boolean, a list, or None
    (an empty VALUE, which removes the key and so restores its default)."""
    if key not in KEYS:
        close = difflib.get_close_matches(key, KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise EditError(f"unknown key {key!r}{hint}; a source has {', '.join(KEYS)}")
    text = value.strip()
    if key in _BOOLEAN_KEYS:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise EditError(f"{key} is true or false, got {value!r}")
    if not text:
        if key in _LOCATIONS:
            raise EditError(f"{key} may not be empty")
        return None
    if key == "categories":
        return [part.strip() for part in re.split(r"[,\s]+", text) if part.strip()]
    return text


def changes_for(key: str, value: Any) -> dict[str, Any]:
    """The key changes one `set` makes: a new url drops path, and the other way round."""
    changes = {key: value}
    if key in _LOCATIONS:
        changes[next(other for other in _LOCATIONS if other != key)] = None
    return changes


# ---------------------------------------------------------------------------
# Names and duplicates

_NOT_NAME = re.compile(r"[^a-z0-9]+")


def slug(text: str, max_length: int = MAX_NAME) -> str:
    """`text` as a name: folded to ASCII, lower case, words joined by `-`; "" if nothing
    is left (a title in a script with no ASCII spelling)."""
    words = _NOT_NAME.sub("-", fold(text)).strip("-")
    if len(words) <= max_length:
        return words
    cut = words[: max_length + 1].rsplit("-", 1)[0] if "-" in words[:max_length] else ""
    return (cut or words[:max_length]).strip("-")


def category_name(text: str) -> str:
    """A folder's name as a category: its slug, else its characters' code points (so an
    emoji-only folder still names one category of its own)."""
    named = slug(text)
    if named:
        return named
    points = "-".join(f"u{ord(ch):x}" for ch in text if not ch.isspace())
    return slug(points) or "category"


def unique_name(base: str, taken: Iterable[str]) -> str:
    """`base`, or `base-2`, `base-3` … whichever is free."""
    used = set(taken)
    if base not in used:
        return base
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = base[: MAX_NAME - len(suffix)].rstrip("-") + suffix
        if candidate not in used:
            return candidate
        number += 1


def propose_name(title: str | None, url: str, taken: Iterable[str]) -> str:
    """A free name for a new source: from its title, else its host name, else `source`."""
    base = slug(title or "")
    if not base:
        host = re.sub(r"^www\.", "", _host(url))
        base = slug(host.replace(".", "-"))
    if base and not base[0].isalnum():
        base = base.lstrip("-_")
    if not base or name_problem(base):
        base = "source"
    return unique_name(base, taken)


def find_duplicate(url: str, existing: Mapping[str, str | None]) -> str | None:
    """The name of a source in `existing` (name → url) whose URL is `url` in canonical form."""
    wanted = canonical_url(url)
    for name, other in existing.items():
        if other is not None and canonical_url(other) == wanted:
            return name
    return None


def _host(url: str) -> str:
    match = re.match(r"[a-z][a-z0-9+.-]*://([^/:?#@]*@)?([^/:?#]*)", url.strip(), re.IGNORECASE)
    return match.group(2).lower() if match else ""


# ---------------------------------------------------------------------------
# OPML import plan


@dataclass(frozen=True, slots=True)
class Candidate:
    """A feed offered for import (an OPML outline): where, what it is called, its folders."""

    url: str
    title: str | None = None
    folders: tuple[str, ...] = ()  # as written in the file, outermost first


@dataclass(frozen=True, slots=True)
class Skipped:
    candidate: Candidate
    reason: str


@dataclass(frozen=True, slots=True)
class ImportPlan:
    add: tuple[NewSource, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    # Outlines of a feed already added from an earlier folder: one source, every folder a
    # category (Inoreader and others let a feed sit in several folders; FreshRSS does not).
    merged: tuple[Skipped, ...] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        """Every category the added sources name, in order of first use."""
        return tuple(dict.fromkeys(c for source in self.add for c in source.categories))


def plan_import(
    candidates: Iterable[Candidate],
    existing: Mapping[str, str | None],
    *,
    extra_categories: Sequence[str] = (),
) -> ImportPlan:
    """Which candidates become sources, under which names and categories, and why the
    others do not (a bad URL, a duplicate of a source or of an earlier outline)."""
    taken = set(existing)
    seen: dict[str, int] = {}  # canonical URL → its place in `add`
    add: list[NewSource] = []
    skipped: list[Skipped] = []
    merged: list[Skipped] = []
    for candidate in candidates:
        url = candidate.url.strip()
        problem = url_problem(url)
        if problem:
            skipped.append(Skipped(candidate, problem))
            continue
        duplicate = find_duplicate(url, existing)
        if duplicate is not None:
            skipped.append(Skipped(candidate, f"already a source: {duplicate}"))
            continue
        categories = tuple(
            dict.fromkeys([*(category_name(f) for f in candidate.folders), *extra_categories])
        )
        earlier = seen.get(canonical_url(url))
        if earlier is not None:
            first = add[earlier]
            new = tuple(c for c in categories if c not in first.categories)
            add[earlier] = replace(first, categories=first.categories + new)
            added = f"; categories added: {', '.join(new)}" if new else ""
            merged.append(
                Skipped(candidate, f"listed again in the file: one source, {first.name}{added}")
            )
            continue
        name = propose_name(candidate.title, url, taken)
        taken.add(name)
        seen[canonical_url(url)] = len(add)
        add.append(
            NewSource(
                name=name,
                url=url,
                title=_clean_title(candidate.title),
                categories=categories,
            )
        )
    return ImportPlan(tuple(add), tuple(skipped), tuple(merged))


def _clean_title(title: str | None) -> str | None:
    if title is None:
        return None
    one_line = " ".join(title.split())
    return one_line or None


# ---------------------------------------------------------------------------
# Where an error in the edited text is in the file as it is


def original_line(old: str, new: str, line: int) -> tuple[int, bool]:
    """Line `line` of `new` as a line of `old`: (its number there, True) when the edit
    left it alone, else (the line the edit inserted it before, False)."""
    matcher = difflib.SequenceMatcher(a=old.splitlines(), b=new.splitlines(), autojunk=False)
    index = line - 1
    for tag, a_start, _a_end, b_start, b_end in matcher.get_opcodes():
        if b_start <= index < b_end:
            if tag == "equal":
                return a_start + index - b_start + 1, True
            return a_start + 1, False
    return max(1, len(old.splitlines())), False


# ---------------------------------------------------------------------------
# tomlkit plumbing


def _parse(text: str) -> TOMLDocument:
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as error:
        raise EditError(f"the file is not valid TOML: {error}") from None


def _fragments(doc: TOMLDocument) -> list[Table]:
    """The `sources` tables of the document in order: one, or several when other tables
    stand between `[sources.*]` tables (tomlkit keeps each run apart)."""
    found = [
        item
        for key, item in doc.body
        if key is not None and key.key == "sources" and isinstance(item, Table)
    ]
    if "sources" in doc and not found:
        raise EditError("'sources' is not a table in this file")
    return found


def _find(fragments: Sequence[Table], name: str) -> tuple[Table, Any] | None:
    for group in fragments:
        if name in group:
            return group, group[name]
    return None


def _unknown(name: str, fragments: Sequence[Table]) -> str:
    known = [key for group in fragments for key in group]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"no source named {name!r}{hint}"


def _child_tables(group: Table) -> list[Table]:
    return [item for _, item in group.value.body if isinstance(item, Table)]


def _document_tables(container: Container | TOMLDocument) -> Iterator[Table]:
    """Every table that renders a `[header]` of its own, in the order of the text."""
    for _, item in container.body:
        if isinstance(item, Table):
            if not item.is_super_table():
                yield item
            yield from _document_tables(item.value)
        elif isinstance(item, AoT):
            for table in item.body:
                yield table
                yield from _document_tables(table.value)


def _detach_tail(table: Table) -> list[tuple[None, Item]]:
    """Take off the end of `table` what belongs to whatever follows it: everything from
    the first blank line after its last key (a comment right under the last key stays,
    as the table's own). Only items at the very end are removed, which leaves tomlkit's
    index of the keys intact."""
    body = table.value.body
    last_key = max((i for i, (key, _) in enumerate(body) if key is not None), default=-1)
    start = last_key + 1
    while start < len(body) and isinstance(body[start][1], Comment):
        start += 1
    tail = [(None, item) for _, item in body[start:]]
    del body[start:]
    return tail


def _drop_attached_comments(body: list[tuple[Any, Item]]) -> None:
    """Remove the comment lines at the very end of `body`, right above the header that
    followed it: they described the table removed. A comment run that also touches the
    keys above (no blank line on either side) is left alone: it may be theirs."""
    start = len(body)
    while start > 0 and body[start - 1][0] is None and isinstance(body[start - 1][1], Comment):
        start -= 1
    if start < len(body) and (start == 0 or isinstance(body[start - 1][1], Whitespace)):
        del body[start:]


def _strip_blank_lines(body: list[tuple[Any, Item]]) -> None:
    while body and body[-1][0] is None and isinstance(body[-1][1], Whitespace):
        body.pop()


def _table(values: Mapping[str, Any]) -> Table:
    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, _array(value) if isinstance(value, list) else value)
    return table


def _inline_table(values: Mapping[str, Any]) -> InlineTable:
    table = tomlkit.inline_table()
    for key, value in values.items():
        table.append(key, _array(value) if isinstance(value, list) else value)
    return table


def _array(values: list[Any]) -> Any:
    array = tomlkit.array()
    array.extend(values)
    return array


def _append_tables(text: str, new: Sequence[NewSource]) -> str:
    """The file has no source tables yet: put them at its end, after a blank line."""
    extra = tomlkit.document()
    group = tomlkit.table(is_super_table=True)
    for index, source in enumerate(new):
        table = _table(source.values())
        if index < len(new) - 1:
            table.value.body.append((None, Whitespace("\n")))
        group.append(source.name, table)
    extra.append("sources", group)
    head = text if not text or text.endswith("\n") else text + "\n"
    separator = "\n" if head.strip() and not head.endswith("\n\n") else ""
    combined = head + separator + tomlkit.dumps(extra)
    _parse(combined)  # a `sources` key elsewhere (not a table) shows up here as an error
    return combined
