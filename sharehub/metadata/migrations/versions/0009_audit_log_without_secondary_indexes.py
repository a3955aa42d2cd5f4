"""audit_log without secondary indexes

Every serving call appends to the audit log; each secondary index cost one more B-tree page written per
commit, and nothing reads the log by them (the statistics scan it whole).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_audit_log_action": "action",
    "ix_audit_log_consumer_id": "consumer_id",
    "ix_audit_log_department": "department",
    "ix_audit_log_resource_id": "resource_id",
}


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        for name, column in INDEXES.items():
            batch_op.create_index(name, [column], unique=False)
