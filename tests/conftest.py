"""Fixtures shared by the suite: a real feed server, real databases, the shared corpus."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import FeedServer, feed_server_fixture

from aggregator.store import Store

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
PG_ADMIN_URL = os.environ.get(
    "AGGREGATOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A real HTTP server on 127.0.0.1 serving what the test adds to it."""
    yield from feed_server_fixture()


@pytest.fixture
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (../shared is absent)")
    return CORPUS


def _pg_answers() -> str | None:
    """None when the local PostgreSQL answers, else the reason it does not."""
    try:
        import psycopg
    except ImportError as error:
        return f"psycopg not installed: {error}"
    try:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ):
            return None
    except psycopg.Error as error:
        return f"no PostgreSQL answers at 127.0.0.1:5432 ({error})"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    reason = _pg_answers()
    if reason is not None:
        pytest.skip(reason)
    import psycopg

    name = "aggregator_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on a real SQLite file and on the local PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'aggregator.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each of `db_url`'s databases, closed afterwards."""
    opened = Store(db_url)
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.close()
