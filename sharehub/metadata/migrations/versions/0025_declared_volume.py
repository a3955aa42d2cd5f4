"""declared volume

An application may declare how many serving calls a day its purpose needs; the grant keeps it, and a day
far beyond it is raised as a rectification item (use beyond the grant, Lichuan 31(4); Hengyang 26).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('applications', 'grants'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('expected_calls_per_day', sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in ('grants', 'applications'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('expected_calls_per_day')
