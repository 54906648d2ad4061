"""Polling state for the daemon: claims with leases, host-wide Retry-After, feed hints, moves.

sources gains:
- host: the lower-case host name of the URL in use (what a Retry-After applies to)
- claimed_by, lease_until: which poller holds the source and until when (the claim)
- ttl_minutes, update_period_minutes: the feed's own <ttl> / sy:updatePeriod hints
- last_ok_at: the last poll that succeeded (200, 304 or unchanged body)
- moved_from, moved_at: the URL a 301/308 moved the source away from, and when
hosts is new: one row per host a 429/503 Retry-After asked us to leave alone until `not_before`.

Revision ID: 0003_polling
Revises: 0002_story_matching
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision: str = "0003_polling"
down_revision: str | Sequence[str] | None = "0002_story_matching"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0001: plain DateTime(timezone=True), independent of the store's run-time type.
UTC_DATETIME = sa.DateTime(timezone=True)


def _host(url: str | None) -> str | None:
    # Kept here rather than imported: a migration must not change when the store's code does.
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("host", sa.String(255)))
        batch.add_column(sa.Column("claimed_by", sa.String(200)))
        batch.add_column(sa.Column("lease_until", UTC_DATETIME))
        batch.add_column(sa.Column("ttl_minutes", sa.Integer))
        batch.add_column(sa.Column("update_period_minutes", sa.Integer))
        batch.add_column(sa.Column("last_ok_at", UTC_DATETIME))
        batch.add_column(sa.Column("moved_from", sa.Text))
        batch.add_column(sa.Column("moved_at", UTC_DATETIME))
    op.create_index("ix_sources_host", "sources", ["host"])

    table = sa.table("sources", sa.column("id", sa.Integer), sa.column("url", sa.Text))
    bind = op.get_bind()
    for row in bind.execute(sa.select(table.c.id, table.c.url)).all():
        host = _host(row.url)
        if host is not None:
            bind.execute(
                sa.text("UPDATE sources SET host = :host WHERE id = :id"),
                {"host": host, "id": row.id},
            )

    op.create_table(
        "hosts",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("not_before", UTC_DATETIME, nullable=False),
        sa.Column("reason", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("hosts")
    op.drop_index("ix_sources_host", table_name="sources")
    with op.batch_alter_table("sources") as batch:
        for column in (
            "moved_at",
            "moved_from",
            "last_ok_at",
            "update_period_minutes",
            "ttl_minutes",
            "lease_until",
            "claimed_by",
            "host",
        ):
            batch.drop_column(column)
