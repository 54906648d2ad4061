"""The candidate key index without the story: `match_keys` loses `story_id`, its foreign
key and its index.

An entry never changes story, so a key's story is its entry's (`entries.story_id`,
one primary-key read for the few keys a poll finds). The column's index, which the
foreign key's cascade needed, was a third B-tree written for every one of the some
fourteen keys of every new entry: storing the bench corpus cost 7% less without it.
Prune deletes a story's keys through its entries (`ix_match_keys_entry_id`), as it did.

The table is made again empty rather than copied: the `fingerprint_version` row is
removed, so `Store.upgrade()` recomputes every entry's fingerprint and candidate keys
right after the migrations, as it does whenever what they hold changes.

Revision ID: 0007_slim_match_keys
Revises: 0006_scale
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_slim_match_keys"
down_revision: str | Sequence[str] | None = "0006_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0001: plain DateTime(timezone=True), independent of the store's run-time type.
UTC_DATETIME = sa.DateTime(timezone=True)

_META = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def _create_match_keys(with_story: bool) -> None:
    story = (
        [
            sa.Column(
                "story_id",
                sa.Integer,
                sa.ForeignKey("stories.id", ondelete="CASCADE", name="fk_match_keys_story_id"),
                nullable=False,
            )
        ]
        if with_story
        else []
    )
    op.create_table(
        "match_keys",
        sa.Column("key", sa.BigInteger, primary_key=True),
        sa.Column("at", UTC_DATETIME, primary_key=True),
        sa.Column(
            "entry_id",
            sa.Integer,
            sa.ForeignKey("entries.id", ondelete="CASCADE", name="fk_match_keys_entry_id"),
            primary_key=True,
        ),
        *story,
        sa.Column(
            "source_id",
            sa.Integer,
            sa.ForeignKey("sources.id", ondelete="CASCADE", name="fk_match_keys_source_id"),
            nullable=False,
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_match_keys_entry_id", "match_keys", ["entry_id"])
    if with_story:
        op.create_index("ix_match_keys_story_id", "match_keys", ["story_id"])


def _recompute_on_upgrade() -> None:
    op.execute(_META.delete().where(_META.c.key == "fingerprint_version"))


def upgrade() -> None:
    op.drop_table("match_keys")
    _create_match_keys(with_story=False)
    _recompute_on_upgrade()


def downgrade() -> None:
    op.drop_table("match_keys")
    _create_match_keys(with_story=True)
    _recompute_on_upgrade()
