"""Several processes on one database: the data version row exists from the start.

Every transaction that changes what outputs show bumps `meta.data_version` (one atomic
UPDATE), and web processes compare it with the version their render cache was built
at. The row used to be inserted by the first bump, and two pollers making the first
bump at once on PostgreSQL would both find no row and both INSERT: one of the two
polls would fail on the primary key. Creating the row here leaves only the UPDATE.

Revision ID: 0006_scale
Revises: 0005_retention
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_scale"
# Chained onto the head of this branch; the lead re-chains it at merge time.
down_revision: str | Sequence[str] | None = "0005_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_META = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    bind = op.get_bind()
    present = bind.scalar(sa.select(_META.c.key).where(_META.c.key == "data_version"))
    if present is None:
        op.execute(_META.insert().values(key="data_version", value="0"))


def downgrade() -> None:
    # The row is harmless to older releases, which insert it themselves when missing.
    pass
