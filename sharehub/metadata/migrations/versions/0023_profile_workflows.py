"""profile workflows

What the jurisdiction profiles' workflows need (issue 22): the notice that told an applicant its outcome
and when telling it ran late (`notify_applicant`), and the delivery filings (报备) by which a department
reports ahead that a period's data will be late, moving its due date.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications') as batch:
        batch.add_column(sa.Column('told_notice_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('told_overdue_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('delivery_filings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('resource_id', sa.String(length=100), nullable=False),
    sa.Column('department', sa.String(length=50), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('filed_by', sa.String(length=100), nullable=False),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_delivery_filings_resource_id', 'delivery_filings', ['resource_id'])


def downgrade() -> None:
    op.drop_index('ix_delivery_filings_resource_id', table_name='delivery_filings')
    op.drop_table('delivery_filings')
    with op.batch_alter_table('applications') as batch:
        batch.drop_column('told_overdue_at')
        batch.drop_column('told_notice_id')
