"""The candidate key index keeps its time as whole seconds since the epoch.

`match_keys.at` was a timestamp, which SQLite stores as 26 characters of text and
compares as text: most of a row of an index written some fourteen times for every new
entry, at places all over the B-tree (its keys are hashes). As an integer the row is
half as long, so a poll dirties fewer pages and its commit writes less. The key's time
only bounds which stored copies are worth comparing (a window of days): a second's
resolution loses nothing, since `same_story` compares the fingerprints' exact times.

As in 0007 the table is made again empty, and the `fingerprint_version` row removed so
that `Store.upgrade()` recomputes every entry's candidate keys after the migrations.

Revision ID: 0008_match_key_seconds
Revises: 0007_slim_match_keys
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008_match_key_seconds"
down_revision: str | Sequence[str] | None = "0007_slim_match_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_META = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def _create_match_keys(at: sa.types.TypeEngine[Any]) -> None:
    op.create_table(
        "match_keys",
        sa.Column("key", sa.BigInteger, primary_key=True),
        sa.Column("at", at, primary_key=True),
        sa.Column(
            "entry_id",
            sa.Integer,
            sa.ForeignKey("entries.id", ondelete="CASCADE", name="fk_match_keys_entry_id"),
            primary_key=True,
        ),
        sa.Column(
            "source_id",
            sa.Integer,
            sa.ForeignKey("sources.id", ondelete="CASCADE", name="fk_match_keys_source_id"),
            nullable=False,
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_match_keys_entry_id", "match_keys", ["entry_id"])


def _recompute_on_upgrade() -> None:
    op.execute(_META.delete().where(_META.c.key == "fingerprint_version"))


def upgrade() -> None:
    op.drop_table("match_keys")
    _create_match_keys(sa.BigInteger())
    _recompute_on_upgrade()


def downgrade() -> None:
    op.drop_table("match_keys")
    _create_match_keys(sa.DateTime(timezone=True))
    _recompute_on_upgrade()
