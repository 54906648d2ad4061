"""Fetch a URL once, as a poll would, and say whether it is a feed: for `sources add`
and `sources import --check`.

A shell: the real `fetch.Fetcher` (the configured User-Agent, timeout, size cap,
per-host limit and address guard of polling) and the real `parse.parse_document`.
An HTML page is looked at for the feeds it offers (`discover.feed_links`), one level
deep: the first of them that parses is the feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aggregator.config import Config
from aggregator.discover import feed_links, looks_like_html
from aggregator.fetch import Fetcher, FetchError, FetchResponse
from aggregator.model import ParsedFeed
from aggregator.parse import ParseError, parse_document
from aggregator.poll import new_fetcher


class NotAFeed(Exception):
    """The URL answered, but with no feed; str() says why, naming the URL."""


@dataclass(frozen=True, slots=True)
class Probe:
    url: str  # the feed's URL: the one given, or the one its page pointed to
    feed: ParsedFeed
    page: str | None = None  # the HTML page it was discovered from
    offered: tuple[str, ...] = ()  # every feed that page offered, the chosen one included


async def probe(fetcher: Fetcher, url: str, *, name: str = "new source") -> Probe:
    """The feed at `url`, or the one its HTML page offers; FetchError or NotAFeed (whose
    message is "URL: cause")."""
    response = await fetcher.fetch(name, url)
    try:
        return Probe(response.final_url if response.permanent_url else url, _parse(response, name))
    except ParseError as error:
        if not looks_like_html(response.body, response.content_type):
            raise NotAFeed(f"{url}: {error.cause}") from None
    offered = feed_links(response.body, response.final_url)
    if not offered:
        raise NotAFeed(
            f"{url}: an HTML page that offers no feed "
            '(no <link rel="alternate" type="application/rss+xml"> or Atom/JSON Feed link)'
        )
    reasons = []
    for candidate in offered:
        try:
            found = await fetcher.fetch(name, candidate)
            feed = _parse(found, name)
        except (FetchError, ParseError) as error:
            reasons.append(f"{candidate}: {error.cause}")
            continue
        chosen = found.final_url if found.permanent_url else candidate
        return Probe(chosen, feed, page=url, offered=offered)
    raise NotAFeed(
        f"{url}: the page offers {len(offered)} feed(s), none of which works: " + "; ".join(reasons)
    )


def _parse(response: FetchResponse, name: str) -> ParsedFeed:
    return parse_document(
        response.body, url=response.final_url, content_type=response.content_type, source=name
    )


def probe_one(config: Config, url: str, *, name: str = "new source") -> Probe:
    """`probe` with a fetcher of the configuration's settings, from synchronous code."""

    async def run() -> Probe:
        async with new_fetcher(config) as fetcher:
            return await probe(fetcher, url, name=name)

    return asyncio.run(run())


def probe_all(
    config: Config,
    urls: Sequence[tuple[str, str]],
    *,
    on_done: Callable[[str], None] | None = None,
) -> dict[str, Probe | str]:
    """Probe every (name, url) at once within the fetcher's limits: name → Probe, or the
    reason it is no feed."""

    async def run() -> dict[str, Probe | str]:
        results: dict[str, Probe | str] = {}
        async with new_fetcher(config) as fetcher:

            async def one(name: str, url: str) -> None:
                try:
                    results[name] = await probe(fetcher, url, name=name)
                except FetchError as error:
                    results[name] = f"{error.url}: {error.cause}"
                except NotAFeed as error:
                    results[name] = str(error)
                if on_done is not None:
                    on_done(name)

            await asyncio.gather(*(one(name, url) for name, url in urls))
        return results

    return asyncio.run(run())
