"""Performance: the entries index that output queries read is (story_id, source_id).

Every output feed asks, for each candidate story newest first, whether one of the feed's
sources carried it. With an index on story_id alone, each such test read the entry's own
row (titles, summaries and content: kilobytes each) only to learn its source_id; with
source_id in the index the test never leaves it. The new index also serves every lookup
the old one did (its first column is story_id), so the old one is dropped rather than
kept as a second cost on every insert.

Revision ID: 0004_performance
Revises: 0003_polling
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_performance"
down_revision: str | Sequence[str] | None = "0003_polling"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_entries_story_source", "entries", ["story_id", "source_id"])
    op.drop_index("ix_entries_story_id", table_name="entries")


def downgrade() -> None:
    op.create_index("ix_entries_story_id", "entries", ["story_id"])
    op.drop_index("ix_entries_story_source", table_name="entries")
