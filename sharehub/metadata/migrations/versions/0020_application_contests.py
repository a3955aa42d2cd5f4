"""application contests

An applicant's disagreement with the refusal of its application (Lichuan 25; Fushun 18): coordinated
by the platform office with the provider, then granted, upheld or referred.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('application_contests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('settled_by', sa.String(length=100), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome_reason', sa.Text(), nullable=True),
    sa.Column('referred_to', sa.String(length=200), nullable=True),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name='fk_application_contests_application_id'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('application_id')
    )
    with op.batch_alter_table('application_contests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_contests_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('application_contests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_contests_status'))

    op.drop_table('application_contests')
