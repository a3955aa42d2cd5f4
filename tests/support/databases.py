"""A fresh, empty database on the test PostgreSQL server, for metadata that must start from nothing."""

from __future__ import annotations

import sqlalchemy as sa


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create database `name` on the server of `admin_url`; its URL."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
