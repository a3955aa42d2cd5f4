"""key rotation overlap

A rotation may leave the replaced key working for a while, so that a consumer can deploy the new one
without a gap: the replaced key's prefix and hash, and until when it works.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consumers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_prefix", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("previous_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_consumers_previous_prefix", ["previous_prefix"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("consumers", schema=None) as batch_op:
        batch_op.drop_index("ix_consumers_previous_prefix")
        batch_op.drop_column("previous_until")
        batch_op.drop_column("previous_hash")
        batch_op.drop_column("previous_prefix")
