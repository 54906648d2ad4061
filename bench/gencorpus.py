"""Generate the benchmark corpus: many source feeds and the configuration that polls them.

    python bench/gencorpus.py OUT_DIR [--feeds 2000] [--seed 1] [--port 8765]

Writes OUT_DIR/feeds/NNNN.xml (RSS 2.0 or Atom 1.0) or NNNN.json (JSON Feed 1.1),
OUT_DIR/aggregator.toml with one source per feed at http://127.0.0.1:PORT/feeds/…, and
OUT_DIR/corpus.json with the corpus figures. The same seed, feed count and date give the
same bytes, so runs on different days or machines compare like with like.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

# Shares of each format among the feeds, roughly what a real subscription list holds.
FORMATS = (("rss", 0.6), ("atom", 0.3), ("json", 0.1))
ENTRIES_PER_FEED = (20, 50)
REPUBLISHED_SHARE = 0.05
DATE_SPAN = timedelta(days=30)
CATEGORY_COUNT = 20

CATEGORIES = (
    "world",
    "usa",
    "europe",
    "africa",
    "asia",
    "latin-america",
    "middle-east",
    "labour",
    "economy",
    "theory",
    "history",
    "culture",
    "science",
    "environment",
    "health",
    "education",
    "technology",
    "youth",
    "women",
    "housing",
)[:CATEGORY_COUNT]

TAGS = (
    "Strikes",
    "Elections",
    "Trade Unions",
    "Inflation",
    "Climate",
    "Housing",
    "Health Care",
    "Students",
    "Police",
    "War",
    "Imperialism",
    "Energy",
    "Wages",
    "Migration",
    "Pandemic",
    "Protests",
    "Philosophy",
    "Art",
    "Media",
    "Banks",
)

# Enough varied words that titles and summaries look like prose to a parser, a sanitiser and
# a filter: mixed lengths, a few accents and curly quotes, punctuation attached to words.
_VOCABULARY = """
the of and to in a is that for on with as by at from this be are was were it an which or
has have had not but all they their more one will would there been who can its new than
workers movement government capitalist crisis economy wages strike union labour labor party
revolution state police protest protests struggle class youth students women housing rent
prices inflation profits bosses banks market markets crash debt austerity budget cuts jobs
unemployment pandemic vaccine hospital nurses teachers doctors schools universities climate
energy oil gas coal transport railway dockworkers port ships cargo factory miners farmers
land water drought flood election elections parliament congress senate president minister
ministers opposition coalition reform reforms decree court judges constitution democracy
dictatorship regime army soldiers war peace ceasefire bombardment refugees borders migrants
history anniversary massacre uprising general assembly committee demands victory defeat
solidarity international national regional local city cities village villages district
streets square squares march marches rally rallies picket pickets occupation occupations
leaflet newspaper paper magazine readers writers editors journalists media television radio
internet platform platforms technology science research scientists data algorithms
philosophy dialectics materialism theory practice programme program perspectives tasks
question questions answer answers lesson lessons experience experiences generation
generations future past present moment period epoch era decade decades century centuries
million millions billion billions thousands hundreds dozens percent majority minority
Zürich São Paulo Québec Kraków Montréal Bogotá Brasília Istanbul Johannesburg Nairobi Lagos
Karachi Dhaka Jakarta Manila Seoul Tokyo Mumbai Delhi Tehran Baghdad Cairo Tunis Algiers
Madrid Lisbon Paris Berlin Rome Athens Vienna Warsaw Budapest Prague Moscow Kyiv London
Dublin Glasgow Toronto Chicago Detroit Houston Oakland Minneapolis Tulsa Mexico Caracas Lima
rising falling growing shrinking collapsing exploding spreading sweeping mounting deepening
angry determined militant cautious bold brutal ruthless desperate historic unprecedented
"""
WORDS = tuple(_VOCABULARY.split())

# Quoted phrases, with curly quotes, as the summaries of real articles carry them.
PHRASES = (
    "“workers’ control”",
    "“general strike”",
    "“cost of living”",
    "“new normal”",
    "“law and order”",
    "“an injury to one is an injury to all”",
)

CAPTIONS = (
    "Workers on the picket line",
    "Protesters fill the square",
    "Dockworkers refuse to unload cargo",
    "Nurses rally outside the hospital",
    "Students march on parliament",
    "A banner at the general assembly",
    "Smoke over the city at dawn",
    "Tenants resist an eviction",
    "Miners at the pit gate",
    "Teachers on strike, day three",
)

AUTHORS = (
    "Ana Souza",
    "Ben Carter",
    "Chiara Rossi",
    "Dmitri Volkov",
    "Esi Mensah",
    "Farid Haddad",
    "Grace Liu",
    "Hugo Martín",
    "Ingrid Berg",
    "Jamal Okafor",
    "Kasia Nowak",
    "Luis Ortega",
)


@dataclass(frozen=True)
class Article:
    """One article as its original publisher wrote it; republished copies share it."""

    site: str  # host of the original publisher, e.g. "www.news0042.example.org"
    slug: str
    title: str
    paragraphs: tuple[str, ...]
    image_url: str
    caption: str
    tags: tuple[str, ...]
    author: str
    published: datetime

    @property
    def url(self) -> str:
        return f"https://{self.site}/{self.published:%Y/%m}/{self.slug}/"


@dataclass(frozen=True)
class Entry:
    """An article as one feed carries it: its own id, its own link variant, its own date."""

    article: Article
    guid: str
    link: str
    published: datetime


@dataclass(frozen=True)
class Feed:
    number: int
    format: str  # "rss", "atom" or "json"
    site: str
    title: str
    categories: tuple[str, ...]
    entries: tuple[Entry, ...]

    @property
    def filename(self) -> str:
        return f"{self.number:04d}.{'json' if self.format == 'json' else 'xml'}"


@dataclass(frozen=True)
class Corpus:
    feeds: tuple[Feed, ...]
    republished: int

    @property
    def entries(self) -> int:
        return sum(len(feed.entries) for feed in self.feeds)


def generate(feed_count: int, seed: int, now: datetime) -> Corpus:
    """The whole corpus as values; `now` anchors the dates, the seed everything else."""
    rng = random.Random(seed)
    originals: list[Article] = []
    feeds: list[Feed] = []
    republished = 0
    formats, weights = zip(*FORMATS, strict=True)
    for number in range(1, feed_count + 1):
        site = f"www.news{number:04d}.example.org"
        entries: list[Entry] = []
        for _ in range(rng.randint(*ENTRIES_PER_FEED)):
            # Copies come from earlier feeds only, so every republished article has an original.
            if originals and rng.random() < REPUBLISHED_SHARE:
                original = rng.choice(originals)
                entries.append(_republish(rng, original, site))
                republished += 1
            else:
                article = _article(rng, site, now)
                originals.append(article)
                entries.append(Entry(article, article.url, article.url, article.published))
        entries.sort(key=lambda entry: entry.published, reverse=True)
        feeds.append(
            Feed(
                number=number,
                format=rng.choices(formats, weights)[0],
                site=site,
                title=_title(rng, 2, 4) + " News",
                categories=tuple(sorted(set(rng.sample(CATEGORIES, rng.choice((1, 1, 2)))))),
                entries=tuple(entries),
            )
        )
    return Corpus(tuple(feeds), republished)


def _article(rng: random.Random, site: str, now: datetime) -> Article:
    title = _title(rng, 6, 12)
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = "-".join(ascii_title.lower().split())[:80].strip("-")
    published = now - timedelta(seconds=rng.randrange(int(DATE_SPAN.total_seconds())))
    return Article(
        site=site,
        slug=f"{slug}-{rng.randrange(10**6):06d}",
        title=title,
        paragraphs=tuple(_sentences(rng, rng.randint(3, 6)) for _ in range(rng.randint(1, 2))),
        image_url=f"https://{site}/images/{published:%Y/%m}/{rng.randrange(10**8):08d}.jpg",
        caption=rng.choice(CAPTIONS),
        tags=tuple(rng.sample(TAGS, rng.randint(1, 4))),
        author=rng.choice(AUTHORS),
        published=published.replace(microsecond=0),
    )


def _republish(rng: random.Random, original: Article, site: str) -> Entry:
    """The original article under the link variants republishing sites write."""
    url = original.url
    variant = rng.randrange(5)
    if variant == 0:
        url += "?utm_source=rss&utm_medium=feed"
    elif variant == 1:
        url = url.replace("https://", "http://", 1)
    elif variant == 2:
        url = url.replace("://www.", "://", 1)
    elif variant == 3:
        url = url.rstrip("/")
    else:
        url += "#comments"
    published = original.published + timedelta(minutes=rng.randint(5, 48 * 60))
    slug = f"{original.slug}-republished"
    return Entry(original, f"https://{site}/{published:%Y/%m}/{slug}/", url, published)


def _title(rng: random.Random, low: int, high: int) -> str:
    words = rng.sample(WORDS, rng.randint(low, high))
    return " ".join(word[0].upper() + word[1:] for word in words)


def _sentences(rng: random.Random, count: int) -> str:
    sentences = []
    for _ in range(count):
        words = rng.choices(WORDS, k=rng.randint(8, 22))
        if rng.random() < 0.1:
            words.insert(rng.randrange(1, len(words)), rng.choice(PHRASES))
        sentence = " ".join(words)
        sentences.append(sentence[0].upper() + sentence[1:] + rng.choice(".....?!"))
    return " ".join(sentences)


def _content_html(article: Article) -> str:
    figure = (
        f'<figure><img src="{article.image_url}" alt="{escape(article.caption)}">'
        f"<figcaption>{escape(article.caption)}</figcaption></figure>"
    )
    return figure + "".join(f"<p>{escape(p)}</p>" for p in article.paragraphs)


def _summary(article: Article) -> str:
    first = article.paragraphs[0]
    return first if len(first) < 400 else first[:400].rsplit(" ", 1)[0] + " […]"


def render_rss(feed: Feed) -> str:
    items = []
    for entry in feed.entries:
        article = entry.article
        items.append(
            "    <item>\n"
            f"      <title>{escape(article.title)}</title>\n"
            f"      <link>{escape(entry.link)}</link>\n"
            f'      <guid isPermaLink="false">{escape(entry.guid)}</guid>\n'
            f"      <dc:creator>{escape(article.author)}</dc:creator>\n"
            f"      <pubDate>{format_datetime(entry.published)}</pubDate>\n"
            + "".join(f"      <category>{escape(tag)}</category>\n" for tag in article.tags)
            + f"      <description>{escape(_summary(article))}</description>\n"
            f"      <content:encoded>{escape(_content_html(article))}</content:encoded>\n"
            f'      <media:content url={quoteattr(article.image_url)} medium="image" '
            'type="image/jpeg">\n'
            f"        <media:description>{escape(article.caption)}</media:description>\n"
            "      </media:content>\n"
            "    </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:media="http://search.yahoo.com/mrss/">\n'
        "  <channel>\n"
        f"    <title>{escape(feed.title)}</title>\n"
        f"    <link>https://{feed.site}/</link>\n"
        f"    <description>Latest articles from {escape(feed.title)}</description>\n"
        "    <language>en</language>\n"
        f"    <lastBuildDate>{format_datetime(_newest(feed))}</lastBuildDate>\n"
        + "".join(items)
        + "  </channel>\n</rss>\n"
    )


def render_atom(feed: Feed) -> str:
    entries = []
    for entry in feed.entries:
        article = entry.article
        entries.append(
            "  <entry>\n"
            f"    <id>{escape(entry.guid)}</id>\n"
            f"    <title>{escape(article.title)}</title>\n"
            f'    <link rel="alternate" type="text/html" href={quoteattr(entry.link)}/>\n'
            f"    <published>{entry.published.isoformat()}</published>\n"
            f"    <updated>{entry.published.isoformat()}</updated>\n"
            f"    <author><name>{escape(article.author)}</name></author>\n"
            + "".join(f"    <category term={quoteattr(tag)}/>\n" for tag in article.tags)
            + f'    <summary type="html">{escape(_summary(article))}</summary>\n'
            f'    <content type="html">{escape(_content_html(article))}</content>\n'
            "  </entry>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
        f"  <id>https://{feed.site}/</id>\n"
        f"  <title>{escape(feed.title)}</title>\n"
        f'  <link rel="alternate" type="text/html" href="https://{feed.site}/"/>\n'
        f'  <link rel="self" type="application/atom+xml" href="https://{feed.site}/feed.atom"/>\n'
        f"  <updated>{_newest(feed).isoformat()}</updated>\n"
        f"  <author><name>{escape(feed.title)}</name></author>\n" + "".join(entries) + "</feed>\n"
    )


def render_json(feed: Feed) -> str:
    items = [
        {
            "id": entry.guid,
            "url": entry.link,
            "title": entry.article.title,
            "summary": _summary(entry.article),
            "content_html": _content_html(entry.article),
            "image": entry.article.image_url,
            "date_published": entry.published.isoformat(),
            "authors": [{"name": entry.article.author}],
            "tags": list(entry.article.tags),
        }
        for entry in feed.entries
    ]
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": feed.title,
        "home_page_url": f"https://{feed.site}/",
        "feed_url": f"https://{feed.site}/feed.json",
        "language": "en",
        "items": items,
    }
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


RENDERERS = {"rss": render_rss, "atom": render_atom, "json": render_json}


def _newest(feed: Feed) -> datetime:
    return max(entry.published for entry in feed.entries)


def host_address(index: int) -> str:
    """The loopback address of host `index`: 127.0.1.1, 127.0.1.2, … (all of 127/8 is loopback)."""
    return f"127.0.{1 + index // 254}.{1 + index % 254}"


def feed_url(feed: Feed, port: int, hosts: int) -> str:
    """Feeds are dealt over `hosts` addresses, so per-host limits act as on the internet."""
    return f"http://{host_address(feed.number % hosts)}:{port}/feeds/{feed.filename}"


def render_config(corpus: Corpus, port: int, hosts: int = 1, database: str = "bench.db") -> str:
    lines = [
        "# Generated by bench/gencorpus.py; regenerated on every run.",
        "[aggregator]",
        f'database = "sqlite:///{database}"',
        "",
    ]
    if hosts < 20:
        # Few hosts for many feeds, where a real list spreads over hundreds: the default
        # cap of 2 requests per host would measure politeness instead of throughput.
        lines[-1:-1] = ["per_host = 20"]
    for feed in corpus.feeds:
        categories = ", ".join(f'"{name}"' for name in feed.categories)
        lines += [
            f"[sources.f{feed.number:04d}]",
            f'url = "{feed_url(feed, port, hosts)}"',
            f"categories = [{categories}]",
            "",
        ]
    return "\n".join(lines)


def changed(corpus: Corpus, share: float, seed: int, now: datetime) -> Corpus:
    """The corpus a while later: `share` of the feeds have two new entries on top (their
    oldest two fall off the end) and one existing entry with a corrected title."""
    rng = random.Random(seed * 7919 + 1)
    chosen = set(rng.sample(range(len(corpus.feeds)), round(len(corpus.feeds) * share)))
    feeds = []
    for index, feed in enumerate(corpus.feeds):
        if index not in chosen:
            feeds.append(feed)
            continue
        fresh = []
        for _ in range(2):
            article = _article(rng, feed.site, now + timedelta(hours=1))
            published = max(now, article.published) + timedelta(minutes=rng.randint(1, 50))
            article = replace(article, published=published)
            fresh.append(Entry(article, article.url, article.url, published))
        kept = list(feed.entries[:-2])
        if kept:
            target = rng.randrange(len(kept))
            old = kept[target]
            kept[target] = replace(
                old, article=replace(old.article, title=old.article.title + " (updated)")
            )
        fresh.sort(key=lambda entry: entry.published, reverse=True)
        feeds.append(replace(feed, entries=(*fresh, *kept)))
    return Corpus(tuple(feeds), corpus.republished)


def write_feeds(corpus: Corpus, out_dir: Path, only_changed_from: Corpus | None = None) -> int:
    """Write the feed documents (only those differing from `only_changed_from`, if given, so
    the others keep their bytes and mtimes); returns the bytes written."""
    feeds_dir = out_dir / "feeds"
    if only_changed_from is None:
        if feeds_dir.exists():
            shutil.rmtree(feeds_dir)
        feeds_dir.mkdir(parents=True)
    total = 0
    for number, feed in enumerate(corpus.feeds):
        if only_changed_from is not None and only_changed_from.feeds[number] == feed:
            continue
        data = RENDERERS[feed.format](feed).encode("utf-8")
        (feeds_dir / feed.filename).write_bytes(data)
        total += len(data)
    return total


def write(corpus: Corpus, out_dir: Path, port: int, hosts: int = 1) -> int:
    """Write feeds, configuration and figures; returns the bytes of feeds written."""
    total = write_feeds(corpus, out_dir)
    (out_dir / "aggregator.toml").write_text(render_config(corpus, port, hosts), encoding="utf-8")
    (out_dir / "feeds.txt").write_text(
        "".join(feed_url(feed, port, hosts) + "\n" for feed in corpus.feeds), encoding="utf-8"
    )
    figures = {
        "feeds": len(corpus.feeds),
        "entries": corpus.entries,
        "republished": corpus.republished,
        "bytes": total,
        "formats": {
            name: sum(1 for feed in corpus.feeds if feed.format == name) for name in RENDERERS
        },
    }
    (out_dir / "corpus.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765, help="where bench/serve.py listens")
    parser.add_argument("--hosts", type=int, default=1, help="loopback addresses to spread over")
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        default=None,
        help="anchor of the 30 days of dates (ISO 8601; default: today 00:00 UTC)",
    )
    args = parser.parse_args()
    now = args.now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    corpus = generate(args.feeds, args.seed, now)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    size = write(corpus, args.out_dir, args.port, args.hosts)
    print(
        f"{len(corpus.feeds)} feeds, {corpus.entries} entries "
        f"({corpus.republished} republished), {size / 1e6:.1f} MB in {args.out_dir / 'feeds'}"
    )


if __name__ == "__main__":
    main()
