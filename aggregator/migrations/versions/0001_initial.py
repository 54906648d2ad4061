"""Initial schema: sources, stories, entries, the story key index and meta.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain DateTime(timezone=True) here: the store's UTCDateTime only converts values
# at run time, and a migration must not change when that code does.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("configured_url", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("path", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("feed_title", sa.Text),
        sa.Column("site_link", sa.Text),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("gone", sa.Boolean, nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("body_hash", sa.String(128)),
        sa.Column("last_polled_at", UTC_DATETIME),
        sa.Column("last_status", sa.String(20)),
        sa.Column("last_error", sa.Text),
        sa.Column("error_count", sa.Integer, nullable=False),
        sa.Column("next_poll_at", UTC_DATETIME),
        sa.Column("http_status", sa.Integer),
        sa.Column("configured", sa.Boolean, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.UniqueConstraint("name", name="uq_sources_name"),
    )
    op.create_index("ix_sources_next_poll_at", "sources", ["next_poll_at"])

    op.create_table(
        "stories",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(100), nullable=False),
        sa.Column("sort_time", UTC_DATETIME, nullable=False),
        sa.Column("face_entry_id", sa.Integer),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.UniqueConstraint("uid", name="uq_stories_uid"),
    )
    op.create_index("ix_stories_sort_time", "stories", ["sort_time"])

    op.create_table(
        "entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "source_id",
            sa.Integer,
            sa.ForeignKey("sources.id", ondelete="CASCADE", name="fk_entries_source_id"),
            nullable=False,
        ),
        sa.Column(
            "story_id",
            sa.Integer,
            sa.ForeignKey("stories.id", name="fk_entries_story_id"),
            nullable=False,
        ),
        sa.Column("entry_key", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("guid", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("published", UTC_DATETIME),
        sa.Column("updated", UTC_DATETIME),
        sa.Column("first_seen", UTC_DATETIME, nullable=False),
        sa.Column("last_seen", UTC_DATETIME, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("enclosures", sa.JSON, nullable=False),
        sa.Column("image_url", sa.Text),
        sa.Column("image_caption", sa.Text),
        sa.Column("orig_link", sa.Text),
        sa.UniqueConstraint("source_id", "entry_key", name="uq_entries_source_key"),
    )
    op.create_index("ix_entries_story_id", "entries", ["story_id"])

    op.create_table(
        "story_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column(
            "story_id",
            sa.Integer,
            sa.ForeignKey("stories.id", ondelete="CASCADE", name="fk_story_keys_story_id"),
            nullable=False,
        ),
    )
    op.create_index("ix_story_keys_story_id", "story_keys", ["story_id"])

    op.create_table(
        "meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.bulk_insert(
        sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text)),
        [{"key": "data_version", "value": "0"}],
    )


def downgrade() -> None:
    op.drop_table("meta")
    op.drop_table("story_keys")
    op.drop_table("entries")
    op.drop_table("stories")
    op.drop_index("ix_sources_next_poll_at", table_name="sources")
    op.drop_table("sources")
