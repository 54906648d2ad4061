"""Checks that what the store holds and what the outputs publish are sound, whatever came in.

`published(store, config, out)` writes every output feed with the real publisher and
returns the files; `assert_outputs_valid` parses each back strictly (Atom against
the MUSTs of RFC 4287, RSS 2.0's required channel elements, JSON Feed 1.1);
`store_text` is every value of every row of the database, for leak checks.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree
from test_end_to_end import assert_valid_outputs
from test_render import rfc4287_problems

from aggregator.config import Config
from aggregator.outputs import output_feeds
from aggregator.publish import build_all
from aggregator.store import Store

STRICT = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def published(store: Store, config: Config, out: Path) -> dict[str, bytes]:
    feeds = output_feeds(config)
    build_all(store, feeds, out, base_url=config.settings.base_url, now=datetime.now(UTC))
    return {path.name: path.read_bytes() for path in sorted(out.iterdir())}


def assert_outputs_valid(store: Store, config: Config, out: Path) -> dict[str, bytes]:
    files = published(store, config, out)
    names = set(output_feeds(config))
    assert_valid_outputs(out, names)
    for name in names:
        atom = etree.fromstring(files[f"{name}.atom"], STRICT)
        assert rfc4287_problems(atom) == [], name
        document = json.loads(files[f"{name}.json"])
        for item in document["items"]:
            assert isinstance(item.get("url", ""), str)
            assert not XML_FORBIDDEN.search(json.dumps(item, ensure_ascii=False)), item["id"]
    return files


def store_text(database: Path) -> str:
    """Every value in every table of a SQLite database, as one string."""
    parts: list[str] = []
    with closing(sqlite3.connect(database)) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                parts.extend(str(value) for value in row)
    return "\n".join(parts)
