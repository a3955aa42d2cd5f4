"""extract removal

An extract's files (masked personal data) leave the object store once its grant has ended or it is
older than SHAREHUB_EXTRACT_KEEP_DAYS; the row stays, for the audit trail and incremental extracts.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extracts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("extracts", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
