"""run holders

Which process works on a run (host and pid) and since when, so a run whose process died is found and
marked abandoned instead of staying `running`.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holder', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('step_started_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('step_started_at')
        batch_op.drop_column('holder')
