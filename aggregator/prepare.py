"""What a parser worker does with a fetched document: parse it and prepare its entries.

Everything that follows from an entry alone (`dedupe.prepare`: identity key, content
hash, strong keys, fingerprint and candidate keys) is computed here, in the worker
process that parsed it, so both cores share that work and the poller's one writer
only looks keys up and writes. Kept apart from `poll` so a worker imports the parser
and the matching code, not the store and its database drivers.
"""

from __future__ import annotations

import os
import select
import threading
from dataclasses import dataclass

from aggregator.dedupe import PreparedEntry, prepare
from aggregator.model import ParsedFeed, pickled_by_fields
from aggregator.parse import parse_document


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PreparedFeed:
    """A parsed document and its prepared entries (the same entry objects: pickled once)."""

    feed: ParsedFeed
    entries: tuple[PreparedEntry, ...]


def parse_and_prepare(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    source: str = "",
    max_entries: int = 1000,
) -> PreparedFeed:
    """`parse.parse_document`, then `dedupe.prepare` of its entries; raises ParseError."""
    feed = parse_document(
        body, url=url, content_type=content_type, source=source, max_entries=max_entries
    )
    return PreparedFeed(feed, prepare(feed.entries))


def exit_with(poller: int) -> None:
    """Parser pool initializer: end this worker as soon as the poller process `poller` ends.

    A poller killed with -9 (or by the OOM killer) cannot shut its pool down, and its
    workers would wait on their call queue for ever — they hold that pipe's write end
    themselves, so no end of file comes — keeping the forkserver alive with them (it
    lives while any worker holds its pipe). A pidfd becomes readable when the process
    exits, before it is reaped.
    """
    try:
        watched = os.pidfd_open(poller)
    except ProcessLookupError:
        os._exit(0)

    def wait_for_exit() -> None:
        select.select([watched], [], [])
        os._exit(0)

    threading.Thread(target=wait_for_exit, name="exit-with-poller", daemon=True).start()
