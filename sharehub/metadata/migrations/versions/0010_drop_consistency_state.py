"""drop consistency_state

0006 kept, per resource, up to when its changes had been checked; the check now keeps the Delta
version each compared store was checked at beside its cached columns (`consistency.duckdb`,
`cache_state`), where it commits together with them, and nothing read this table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("consistency_state")


def downgrade() -> None:
    op.create_table(
        "consistency_state",
        sa.Column("resource_id", sa.String(length=100), nullable=False),
        sa.Column("checked_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resource_id"),
    )
