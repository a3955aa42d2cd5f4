"""rate buckets

The verification rate limit's token buckets, kept in the metadata database so that the limit holds
across API workers and replicas.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_buckets',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('rate_buckets')
