"""notify changes to consumers and grants on PostgreSQL

The serving path remembers each API key's and grant's rows between calls and must forget them the
moment either table changes, whoever changes it (the API, the CLI, another process, a DBA). SQLite
says so through `PRAGMA data_version`; PostgreSQL has no such cheap signal, so every change to these
tables now sends NOTIFY sharehub_auth (at commit, once per statement), which the serving connections
LISTEN for (`sharehub.metadata.dbapi`). Nothing changes on SQLite.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("consumers", "grants")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION sharehub_auth_changed() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('sharehub_auth', TG_TABLE_NAME); RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION sharehub_auth_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS sharehub_auth_changed()")
