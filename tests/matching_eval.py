"""The story-matching evaluation set: base articles republished with realistic variations.

`build()` reads the base articles (tests/data/matching_articles.toml) and, with a seeded
random generator, republishes them the way syndicating sites do: link variants
(tracking parameters, http/https, www, AMP and mobile editions, feed proxies with
`feedburner:origLink`, redirect wrappers, WordPress `?p=` shortlinks, the republisher's
own URL), title variants (case, quotes, dashes, a trailing ellipsis, a cut section
prefix, a site suffix) and text variants (a summary cut with "[…]", light edits, added
footers and figures, summary against full text, no text at all), published a little
later or earlier. Every pair is labelled by construction: two copies are one story
exactly when they come from the same base article. Hard negatives come from the base
set itself: same-topic articles, follow-ups, generic titles, one shared headline.

`run()` stores every copy through the real code path (`Store.record_poll` on a real
database, one document per source) and reads back which story each copy joined;
`score()` turns that into precision and recall, overall and per variation.

    .venv/bin/python bench/matching_quality.py     # prints the tables
"""

from __future__ import annotations

import random
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlalchemy import select

from aggregator.dedupe import entry_key
from aggregator.model import ParsedEntry, ParsedFeed, PollRecord
from aggregator.store import Store, entries, sources

ARTICLES = Path(__file__).resolve().parent / "data" / "matching_articles.toml"
SEED = 20210604
POLLED_AT = datetime(2021, 6, 8, 12, 0, tzinfo=UTC)

# How many republished copies each kind of base article gets.
COPIES = {"seed": 13, "same-topic": 3, "follow-up": 3, "generic": 3, "same-title": 3}
REPUBLISHERS = tuple(f"rep{n:02d}" for n in range(1, 16))

LINK_VARIANTS = (
    "tracking",
    "http-www",
    "trailing-slash",
    "amp-path",
    "amp-query",
    "amp-host",
    "mobile-host",
    "amp-cache",
    "feedproxy",
    "redirect",
    "shortlink",
    "guid-origin",
    "own-url",
    "own-url",
    "own-url",
)
TITLE_VARIANTS = (
    "same",
    "same",
    "lower",
    "upper",
    "quotes",
    "ellipsis",
    "bracket-ellipsis",
    "dash",
    "section-cut",
    "site-suffix",
)
TEXT_VARIANTS = (
    "same",
    "same",
    "cut",
    "cut-plain",
    "edit",
    "footer",
    "wp-footer",
    "figure",
    "summary-only",
    "none",
)
# Word edits a republisher's sub-editor makes (spelling, style, one word more or less).
EDITS = (
    ("organize", "organise"),
    ("Labor", "Labour"),
    ("labor", "labour"),
    ("thousands", "many thousands"),
    ("brutally ", ""),
    ("ruthless", "merciless"),
    ("largest", "biggest"),
    ("US", "U.S."),
    ("unprecedented", "enormous"),
    ("refused", "declined"),
    ("anniversary", "100th anniversary"),
    ("now", ""),
)


@dataclass(frozen=True)
class Article:
    id: str
    kind: str
    site: str
    url: str
    title: str
    published: datetime
    summary: str
    more: str = ""
    wp_id: int | None = None
    partner: str | None = None


@dataclass(frozen=True)
class Copy:
    """One entry of one source: a base article as that source published it."""

    source: str
    article: str
    variant: str  # "origin", or "LINK/TITLE/TEXT/TIME"
    entry: ParsedEntry


@dataclass(frozen=True)
class Pair:
    a: int  # indexes into EvalSet.copies
    b: int
    same: bool
    kind: str  # what the pair tests: a variation ("link:amp-host") or a negative kind


@dataclass
class EvalSet:
    articles: dict[str, Article]
    copies: list[Copy] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)


@dataclass(frozen=True)
class Score:
    pairs: int
    positives: int
    negatives: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.positives if self.positives else 1.0


def load_articles(path: Path = ARTICLES) -> dict[str, Article]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    articles = {}
    for raw in data["article"]:
        published = raw["published"]
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        articles[raw["id"]] = Article(**{**raw, "published": published})
    return articles


def build(seed: int = SEED, articles: dict[str, Article] | None = None) -> EvalSet:
    """The evaluation set: every base article's origin copy and its republished copies,
    and the labelled pairs: (origin, copy) positives and cross pairs of hard negatives."""
    chosen = articles if articles is not None else load_articles()
    rng = random.Random(seed)
    evalset = EvalSet(chosen)
    clusters: dict[str, list[int]] = defaultdict(list)
    for article in chosen.values():
        clusters[article.id].append(len(evalset.copies))
        evalset.copies.append(Copy(article.site, article.id, "origin", _origin(article)))
        publishers = [name for name in REPUBLISHERS if name != article.site]
        rng.shuffle(publishers)
        links = list(LINK_VARIANTS)
        rng.shuffle(links)
        for number in range(COPIES[article.kind]):
            link = links[number % len(links)]
            title = rng.choice(TITLE_VARIANTS)
            text = rng.choice(TEXT_VARIANTS)
            if link == "shortlink" and article.wp_id is None:
                link = "tracking"
            if link == "own-url" and title in ("section-cut", "site-suffix") and text == "none":
                # Nothing would be left that says it is this article: no one could find it.
                text = "same"
            lag = rng.choice((-3, 1, 2, 6, 20, 30, 50, 70))
            copy_entry = _republish(article, publishers[number], link, title, text, lag, rng)
            variant = f"{link}/{title}/{text}/{lag:+d}h"
            clusters[article.id].append(len(evalset.copies))
            evalset.copies.append(Copy(publishers[number], article.id, variant, copy_entry))
    for members in clusters.values():
        origin, *republished = members
        for index in republished:
            link, title, text, _ = evalset.copies[index].variant.split("/")
            evalset.pairs.append(Pair(origin, index, True, f"{link}/{title}/{text}"))
    for article in chosen.values():
        if article.partner is None:
            continue
        for a in clusters[article.id]:
            for b in clusters[article.partner]:
                evalset.pairs.append(Pair(a, b, False, f"negative:{article.kind}"))
    return evalset


def run(evalset: EvalSet, store_url: str, *, repoll: bool = True) -> list[int]:
    """Store every copy through Store.record_poll, one document per source; the story id
    each copy ended in, by copy index. With `repoll`, every document is stored a second
    time and must change nothing."""
    documents: dict[str, list[ParsedEntry]] = defaultdict(list)
    for copy in evalset.copies:
        documents[copy.source].append(copy.entry)
    order = sorted(documents)
    random.Random(SEED + 1).shuffle(order)
    store = Store(store_url)
    try:
        store.upgrade()
        store.sync_sources(_SourceStandIn(name) for name in order)
        for step, name in enumerate(order):
            store.record_poll(_poll(name, documents[name], POLLED_AT + timedelta(minutes=step)))
        stories = _story_of_copies(store, evalset)
        if repoll:
            for step, name in enumerate(order):
                later = POLLED_AT + timedelta(hours=1, minutes=step)
                store.record_poll(_poll(name, documents[name], later))
            again = _story_of_copies(store, evalset)
            if again != stories:
                raise AssertionError("re-polling the same documents moved copies between stories")
        return stories
    finally:
        store.close()


def score(pairs: Iterable[Pair], story_of: Sequence[int]) -> Score:
    tp = fp = fn = positives = negatives = total = 0
    for pair in pairs:
        total += 1
        predicted = story_of[pair.a] == story_of[pair.b]
        if pair.same:
            positives += 1
            tp += predicted
            fn += not predicted
        else:
            negatives += 1
            fp += predicted
    return Score(total, positives, negatives, tp, fp, fn)


def all_pairs(evalset: EvalSet) -> list[Pair]:
    """Every pair of copies in the set: the clustering as a whole, not only the labelled pairs."""
    return [
        Pair(a, b, evalset.copies[a].article == evalset.copies[b].article, "all")
        for a, b in combinations(range(len(evalset.copies)), 2)
    ]


def by_kind(pairs: Iterable[Pair], story_of: Sequence[int], part: int | None) -> dict[str, Score]:
    """Scores per pair kind; `part` picks one field of a positive's "link/title/text" kind."""
    groups: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        kind = pair.kind
        if part is not None and pair.same:
            kind = ("link:", "title:", "text:")[part] + kind.split("/")[part]
        elif part is not None:
            continue
        groups[kind].append(pair)
    return {kind: score(group, story_of) for kind, group in sorted(groups.items())}


def missed(evalset: EvalSet, story_of: Sequence[int]) -> Counter[str]:
    """The variants of the positive pairs that were not matched (for the report)."""
    return Counter(
        evalset.copies[pair.b].variant
        for pair in evalset.pairs
        if pair.same and story_of[pair.a] != story_of[pair.b]
    )


# --- making copies ---------------------------------------------------------------------


def _origin(article: Article) -> ParsedEntry:
    guid = f"{_site_root(article.url)}/?p={article.wp_id}" if article.wp_id else article.url
    summary = f"<p>{_escape(article.summary)}</p>"
    content = summary + f"<p>{_escape(article.more)}</p>" if article.more else ""
    return ParsedEntry(
        guid=guid,
        link=article.url,
        title=article.title,
        summary=summary,
        content=content,
        published=article.published,
    )


def _republish(
    article: Article,
    publisher: str,
    link_variant: str,
    title_variant: str,
    text_variant: str,
    lag_hours: int,
    rng: random.Random,
) -> ParsedEntry:
    host = f"https://www.{publisher}.example"
    slug = article.url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".htm")
    own = f"{host}/2021/06/{slug}/"
    guid: str | None = f"tag:{publisher}.example,2021:{rng.randrange(10**6)}"
    orig_link = None
    link = _link(article, link_variant, publisher, slug, rng)
    if link_variant == "own-url":
        guid = own
    elif link_variant == "guid-origin":
        guid, link = article.url, own
    elif link_variant == "feedproxy":
        orig_link = article.url
    return ParsedEntry(
        guid=guid,
        link=link,
        orig_link=orig_link,
        title=_title(article.title, title_variant, publisher),
        **_texts(article, text_variant, publisher, rng),
        published=article.published + timedelta(hours=lag_hours),
    )


def _link(article: Article, variant: str, publisher: str, slug: str, rng: random.Random) -> str:
    url = article.url
    root = _site_root(url)
    path = url[len(root) :]
    bare_host = root.removeprefix("https://").removeprefix("www.")
    match variant:
        case "tracking":
            return f"{url}?utm_source={publisher}&utm_medium=rss&utm_campaign=syndication"
        case "http-www":
            scheme_less = url.removeprefix("https://")
            if scheme_less.startswith("www."):
                return "http://" + scheme_less.removeprefix("www.")
            return "http://www." + scheme_less
        case "trailing-slash":
            return url.rstrip("/") + "/#comments" if url.endswith("/") else url + "/"
        case "amp-path":
            return url.rstrip("/") + "/amp/"
        case "amp-query":
            return url + rng.choice(("?amp=1", "?amp", "?outputType=amp"))
        case "amp-host":
            return f"https://amp.{bare_host}{path}"
        case "mobile-host":
            return f"https://{rng.choice(('m', 'mobile'))}.{bare_host}{path}"
        case "amp-cache":
            dashed = root.removeprefix("https://").replace("-", "--").replace(".", "-")
            return f"https://{dashed}.cdn.ampproject.org/c/s/{root.removeprefix('https://')}{path}"
        case "feedproxy":
            token = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(11))
            return f"http://feedproxy.google.com/~r/{publisher}/~3/{token}/{slug}"
        case "redirect":
            from urllib.parse import quote

            return f"https://www.google.com/url?q={quote(url, safe='')}&sa=D&ust=1622"
        case "shortlink":
            return f"{root}/?p={article.wp_id}"
        case "guid-origin" | "own-url":
            return f"https://www.{publisher}.example/2021/06/{slug}/"
    raise ValueError(f"unknown link variant {variant!r}")


def _title(title: str, variant: str, publisher: str) -> str:
    match variant:
        case "same":
            return title
        case "lower":
            return title[:1] + title[1:].lower()
        case "upper":
            return title.upper()
        case "quotes":
            swapped = title.translate(str.maketrans({"’": "'", "“": '"', "”": '"'}))
            return swapped if swapped != title else title.replace("'", "’")
        case "ellipsis":
            return title + "…"
        case "bracket-ellipsis":
            return title + " [...]"
        case "dash":
            return title.replace("—", " - ").replace(": ", " – ")
        case "section-cut":
            return title.split(": ", 1)[1] if ": " in title else title
        case "site-suffix":
            return f"{title} | {publisher.upper()} News"
    raise ValueError(f"unknown title variant {variant!r}")


def _texts(article: Article, variant: str, publisher: str, rng: random.Random) -> dict[str, str]:
    summary = article.summary
    full = f"{summary} {article.more}".strip()
    match variant:
        case "same":
            return _html(summary, article.more)
        case "cut" | "cut-plain":
            words = summary.removesuffix(" […]").split()
            cut = rng.randrange(min(14, len(words) - 1), len(words))
            mark = " […]" if variant == "cut" else ""
            return {"summary": f"<p>{_escape(' '.join(words[:cut]))}{mark}</p>", "content": ""}
        case "edit":
            for old, new in rng.sample(EDITS, len(EDITS)):
                if old in full:
                    return _html(summary.replace(old, new, 1), article.more.replace(old, new, 1))
            return _html(summary.replace(",", "", 1), article.more)
        case "footer":
            return _html(summary, f"{article.more} This article first appeared on {article.site}.")
        case "wp-footer":
            body = _html(summary, article.more)
            footer = (
                f'<p>The post <a href="https://www.{publisher}.example/">{_escape(article.title)}'
                f'</a> appeared first on <a href="https://www.{publisher}.example/">'
                f"{publisher.upper()}</a>.</p>"
            )
            return {key: value + footer if value else value for key, value in body.items()}
        case "figure":
            figure = (
                f'<figure><img src="https://www.{publisher}.example/lead.jpg" alt="">'
                f"<figcaption>Photo: {publisher} archive</figcaption></figure>"
            )
            body = _html(summary, article.more)
            key = "content" if body["content"] else "summary"
            return {**body, key: figure + body[key]}
        case "summary-only":
            return {"summary": f"<p>{_escape(summary)}</p>", "content": ""}
        case "none":
            return {"summary": "", "content": ""}
    raise ValueError(f"unknown text variant {variant!r}")


def _html(summary: str, more: str) -> dict[str, str]:
    first = f"<p>{_escape(summary)}</p>"
    return {"summary": first, "content": first + f"<p>{_escape(more)}</p>" if more else ""}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _site_root(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


# --- running it through the store ------------------------------------------------------


@dataclass(frozen=True)
class _SourceStandIn:
    name: str
    url: str | None = None
    path: Path | None = None
    title: str | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", f"https://{self.name}.example/feed.xml")


def _poll(name: str, document: list[ParsedEntry], at: datetime) -> PollRecord:
    return PollRecord(
        source=name,
        polled_at=at,
        status="ok",
        next_poll_at=at + timedelta(hours=1),
        feed=ParsedFeed(
            "rss20", title=name, link=f"https://{name}.example/", entries=tuple(document)
        ),
    )


def _story_of_copies(store: Store, evalset: EvalSet) -> list[int]:
    with store._engine.connect() as conn:
        rows = conn.execute(
            select(sources.c.name, entries.c.entry_key, entries.c.story_id).join(
                sources, entries.c.source_id == sources.c.id
            )
        )
        story: dict[tuple[str, str], int] = {(r.name, r.entry_key): r.story_id for r in rows}
    return [story[(copy.source, entry_key(copy.entry))] for copy in evalset.copies]


def describe(evalset: EvalSet) -> dict[str, Any]:
    """Counts for the report: copies, sources, labelled pairs by label."""
    return {
        "articles": len(evalset.articles),
        "copies": len(evalset.copies),
        "sources": len({copy.source for copy in evalset.copies}),
        "positive pairs": sum(pair.same for pair in evalset.pairs),
        "negative pairs": sum(not pair.same for pair in evalset.pairs),
    }
