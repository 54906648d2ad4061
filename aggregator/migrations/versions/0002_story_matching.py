"""Story matching beyond equal links: entry fingerprints and the candidate key index.

- `entry_fingerprints`: one row per entry, what `fingerprint.same_story` compares
  (normalised title, the text's first words, MinHash signature, effective time).
- `match_keys`: the candidate keys of every entry (`fingerprint.candidate_keys`: the
  specific title, the text's first words, MinHash bands), as signed 64-bit integers,
  with the entry's story, source and time, so that one indexed range read per key
  finds the copies worth comparing. On SQLite it is a WITHOUT ROWID table: the rows
  live in the primary-key B-tree, ordered by (key, at).

Existing entries get their rows from `Store.upgrade()` after the migrations (the
`fingerprint_version` in `meta` says whether they are current), since computing
fingerprints is application code that a migration must not freeze.

Revision ID: 0002_story_matching
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_story_matching"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "entry_fingerprints",
        sa.Column(
            "entry_id",
            sa.Integer,
            sa.ForeignKey("entries.id", ondelete="CASCADE", name="fk_entry_fingerprints_entry_id"),
            primary_key=True,
        ),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("title_specific", sa.Boolean, nullable=False),
        sa.Column("lead", sa.Text, nullable=False),
        sa.Column("words", sa.Integer, nullable=False),
        sa.Column("shingles", sa.Integer, nullable=False),
        sa.Column("truncated", sa.Boolean, nullable=False),
        sa.Column("signature", sa.LargeBinary),
        sa.Column("at", UTC_DATETIME, nullable=False),
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
        sa.Column(
            "story_id",
            sa.Integer,
            sa.ForeignKey("stories.id", ondelete="CASCADE", name="fk_match_keys_story_id"),
            nullable=False,
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


def downgrade() -> None:
    op.drop_index("ix_match_keys_entry_id", table_name="match_keys")
    op.drop_table("match_keys")
    op.drop_table("entry_fingerprints")
    op.execute("DELETE FROM meta WHERE key = 'fingerprint_version'")
