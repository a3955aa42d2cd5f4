"""upstream objections

Objections a department raised, through this platform office, on upper-level records it uses; the
upper level's provider answers, and sync brings the answer down.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('upstream_objections',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('consumer_id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=50), nullable=False),
    sa.Column('resource_id', sa.String(length=100), nullable=False),
    sa.Column('record_key', sa.String(length=200), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('upstream_objection_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['consumer_id'], ['consumers.id'], name='fk_upstream_objections_consumer_id'),
    sa.ForeignKeyConstraint(['request_id'], ['upstream_requests.id'], name='fk_upstream_objections_request_id'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('upstream_objections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upstream_objections_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_upstream_objections_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_upstream_objections_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('upstream_objections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upstream_objections_status'))
        batch_op.drop_index(batch_op.f('ix_upstream_objections_request_id'))
        batch_op.drop_index(batch_op.f('ix_upstream_objections_department'))

    op.drop_table('upstream_objections')
