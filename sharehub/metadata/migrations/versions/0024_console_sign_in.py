"""console sign-in

The web console's sign-in: a caller may also have a username and an argon2 password hash, and a signed-in
browser holds a session (only the SHA-256 of its token is kept) with its CSRF token.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consumers') as batch:
        batch.add_column(sa.Column('username', sa.String(length=60), nullable=True))
        batch.add_column(sa.Column('password_hash', sa.String(length=200), nullable=True))
        batch.create_index('ix_consumers_username', ['username'], unique=True)
    op.create_table('console_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('consumer_id', sa.Integer(), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consumer_id'], ['consumers.id'], name='fk_console_sessions_consumer_id'),
    sa.PrimaryKeyConstraint('token_hash')
    )


def downgrade() -> None:
    op.drop_table('console_sessions')
    with op.batch_alter_table('consumers') as batch:
        batch.drop_index('ix_consumers_username')
        batch.drop_column('password_hash')
        batch.drop_column('username')
