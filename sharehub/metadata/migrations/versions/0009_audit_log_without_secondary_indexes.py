"""audit_log without secondary indexes

Every serving call appends to the audit log; each secondary index cost one more B-tree page written per
commit (the unique index on the hash a random page per entry), and nothing reads the log by them: the
statistics scan it whole, and `sharehub audit verify` walks it by id, checking each hash.

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


# 0008 left the unique constraint on `hash` unnamed: PostgreSQL named it audit_log_hash_key; on SQLite
# the batch copy names what it reflects by this convention, so it can be left out of the new table.
UNIQUE_HASH = {"postgresql": "audit_log_hash_key"}
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    unique = UNIQUE_HASH.get(op.get_bind().dialect.name, "uq_audit_log_hash")
    with op.batch_alter_table("audit_log", schema=None, naming_convention=NAMING) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_constraint(unique, type_="unique")


def downgrade() -> None:
    unique = UNIQUE_HASH.get(op.get_bind().dialect.name, "uq_audit_log_hash")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        for name, column in INDEXES.items():
            batch_op.create_index(name, [column], unique=False)
        batch_op.create_unique_constraint(unique, ["hash"])
