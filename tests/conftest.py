"""Shared fixtures: real PostgreSQL, MariaDB and SeaweedFS; a hub in a fresh folder for each test.

CI (CI=true) fails when PostgreSQL or MariaDB is missing. Elsewhere those tests are skipped, and the
run ends with a loud banner naming what was skipped.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

# Airflow reads its configuration at import time: give it a throwaway home before anything imports it.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="sharehub-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from sharehub.hub import Hub  # noqa: E402
from sharehub.metadata.db import dispose_all  # noqa: E402
from sharehub.settings import Settings, get_settings  # noqa: E402

pytest_plugins = ["tests.support.served", "tests.support.mail"]  # the `served` and `smtp` fixtures

PG_URL = os.environ.get("SHAREHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("SHAREHUB_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_SKIPPED_SERVICES: set[str] = set()


def _reachable(url: str) -> str | None:
    try:
        engine = sa.create_engine(url)
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
        engine.dispose()
        return None
    except (sa.exc.SQLAlchemyError, OSError) as exc:  # the service is not there; the reason is shown below
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _service(name: str, url: str) -> str:
    problem = _reachable(url)
    if problem is None:
        return url
    if IN_CI:
        pytest.fail(f"{name} is required in CI but is not reachable at {url}: {problem}", pytrace=False)
    _SKIPPED_SERVICES.add(name)
    pytest.skip(f"{name} not reachable ({problem})")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The real PostgreSQL the tests use as a department database."""
    return _service("PostgreSQL", PG_URL)


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """The real MariaDB the tests use as a department database."""
    return _service("MariaDB", MARIADB_URL)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say loudly which real services were missing, so a green run cannot hide skipped tests."""
    if _SKIPPED_SERVICES:
        bar = "!" * 78
        terminalreporter.write_line(bar, red=True, bold=True)
        terminalreporter.write_line(
            f"SKIPPED tests that need: {', '.join(sorted(_SKIPPED_SERVICES))}. Start them "
            "(see README, 'Services') before trusting this run.",
            red=True,
            bold=True,
        )
        terminalreporter.write_line(bar, red=True, bold=True)


HubFactory = Callable[..., Hub]


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[HubFactory]:
    """Build a hub whose home, lake and metadata live in this test's folder."""

    def factory(**overrides: object) -> Hub:
        overrides.setdefault("home", tmp_path / "home")
        settings = Settings(**overrides)  # type: ignore[arg-type]
        return Hub(settings)

    yield factory
    get_settings.cache_clear()
    dispose_all()


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Hub], None]:
    """Export a hub's settings as SHAREHUB_* variables, for code paths that read the environment (DAGs, CLI)."""

    def export(hub: Hub) -> None:
        s = hub.settings
        monkeypatch.setenv("SHAREHUB_HOME", str(s.home))
        monkeypatch.setenv("SHAREHUB_METADATA_URL", s.metadata_url)
        monkeypatch.setenv("SHAREHUB_STORAGE_URL", s.storage_url)
        monkeypatch.setenv("SHAREHUB_CATALOGUE_DIR", str(s.catalogue_dir))
        monkeypatch.setenv("SHAREHUB_PROFILE", s.profile)
        import json

        monkeypatch.setenv("SHAREHUB_CONNECTIONS", json.dumps(s.connections))
        get_settings.cache_clear()

    return export
