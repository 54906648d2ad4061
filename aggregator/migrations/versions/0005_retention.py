"""Retention and poll history: tombstones of pruned entries, recent polls, daily activity.

- `tombstones`: one row per pruned entry, (source_id, entry_key) → pruned_at, seen_at.
  `record_poll` skips an entry whose key has one, so a source that still lists an old
  entry does not bring it back; `seen_at` moves each time that happens, and a tombstone
  not seen for `store.TOMBSTONE_GRACE` is dropped by the next prune, so the table holds
  only what sources still list (or listed lately), never every entry ever pruned.
- `polls`: the last `store.POLL_HISTORY` polls of each source (time, result, HTTP status,
  bytes, entries new/updated, duration, error), written in the transaction that records
  the poll; ordered by (source_id, id) so a source page is one range read.
- `poll_days`: per source and UTC day, how many polls ended each way and how many
  entries arrived: the charts of the status pages, kept for `store.ACTIVITY_DAYS` days.
- an index on `match_keys.story_id`: deleting a story makes the database find its match
  keys (the foreign key cascades); without the index SQLite and PostgreSQL scan the whole
  table once per story deleted, and pruning a day's stories takes minutes, not moments.

Revision ID: 0005_retention
Revises: 0004_performance
Create Date: 2025-07-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_retention"
# Chained onto the head of this branch; the lead re-chains it after 0004_performance.
down_revision: str | Sequence[str] | None = "0004_performance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0001: plain DateTime(timezone=True), independent of the store's run-time type.
UTC_DATETIME = sa.DateTime(timezone=True)


def _source_id(table: str) -> sa.Column[int]:
    return sa.Column(
        "source_id",
        sa.Integer,
        sa.ForeignKey("sources.id", ondelete="CASCADE", name=f"fk_{table}_source_id"),
        primary_key=table != "polls",
        nullable=False,
    )


def upgrade() -> None:
    op.create_index("ix_match_keys_story_id", "match_keys", ["story_id"])
    op.create_table(
        "tombstones",
        _source_id("tombstones"),
        sa.Column("entry_key", sa.Text, primary_key=True),
        sa.Column("pruned_at", UTC_DATETIME, nullable=False),
        sa.Column("seen_at", UTC_DATETIME, nullable=False),
    )
    op.create_index("ix_tombstones_seen_at", "tombstones", ["seen_at"])

    op.create_table(
        "polls",
        sa.Column("id", sa.Integer, primary_key=True),
        _source_id("polls"),
        sa.Column("polled_at", UTC_DATETIME, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("new", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("duration", sa.Float),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_polls_source_id", "polls", ["source_id", "id"])

    op.create_table(
        "poll_days",
        _source_id("poll_days"),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("polls", sa.Integer, nullable=False),
        sa.Column("ok", sa.Integer, nullable=False),
        sa.Column("not_modified", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("new", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_poll_days_day", "poll_days", ["day"])


def downgrade() -> None:
    op.drop_index("ix_poll_days_day", table_name="poll_days")
    op.drop_table("poll_days")
    op.drop_index("ix_polls_source_id", table_name="polls")
    op.drop_table("polls")
    op.drop_index("ix_tombstones_seen_at", table_name="tombstones")
    op.drop_table("tombstones")
    op.drop_index("ix_match_keys_story_id", table_name="match_keys")
