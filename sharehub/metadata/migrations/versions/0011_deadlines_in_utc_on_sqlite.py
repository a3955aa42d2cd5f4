"""deadlines in UTC on SQLite

SQLite keeps no time zone: SQLAlchemy wrote an aware datetime's wall-clock time and dropped its offset.
Every other moment the hub stores is made in UTC, but working-day deadlines are made in China time
(24:00 of the last day, i.e. 00:00+08:00), so notices.deadline and applications.step_deadline held
China wall-clock midnight, which every reader takes as UTC: 8 hours late. From this revision the
models write every moment in UTC (`models.UTCDateTime`); this moves the deadlines already stored. A
deadline is always China midnight, so a stored deadline at 00:00:00 is one of those. PostgreSQL's
timestamptz kept the offset and needs nothing.

Downgrade leaves the UTC values: earlier revisions read a naive value as UTC too, so it is right there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = (("notices", "deadline"), ("applications", "step_deadline"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column in COLUMNS:
        op.execute(
            f"UPDATE {table} SET {column} = strftime('%Y-%m-%d %H:%M:%S', {column}, '-8 hours') || '.000000' "
            f"WHERE {column} IS NOT NULL AND substr({column}, 12, 8) = '00:00:00'"
        )


def downgrade() -> None:
    pass
