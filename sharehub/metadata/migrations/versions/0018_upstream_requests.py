"""upstream requests

Requests for data held at the upper-level platform (MISSION 14; Zhongshan 20): collected by this
platform office, forwarded upward as its own application, and relayed once granted.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('upstream_requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('consumer_id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=50), nullable=False),
    sa.Column('resource_id', sa.String(length=100), nullable=False),
    sa.Column('provider', sa.String(length=50), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('modes', sa.JSON(), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('forwarded_by', sa.String(length=100), nullable=True),
    sa.Column('forwarded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('upstream_application_id', sa.BigInteger(), nullable=True),
    sa.Column('upstream_status', sa.String(length=20), nullable=True),
    sa.Column('upstream_step_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('upstream_grant_id', sa.BigInteger(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['consumer_id'], ['consumers.id'], name='fk_upstream_requests_consumer_id'),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name='fk_upstream_requests_notice_id'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('upstream_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upstream_requests_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_upstream_requests_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_upstream_requests_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('upstream_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upstream_requests_status'))
        batch_op.drop_index(batch_op.f('ix_upstream_requests_resource_id'))
        batch_op.drop_index(batch_op.f('ix_upstream_requests_department'))

    op.drop_table('upstream_requests')
