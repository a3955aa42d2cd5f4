"""Production refuses secrets that can be guessed, naming each setting, without a traceback."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from sharehub.settings import REPO_ROOT, Settings

STRONG = {
    "mode": "production",
    "metadata_url": f"postgresql+psycopg://hub:{secrets.token_urlsafe(16)}@db/hub",
    "url_signing_key": secrets.token_hex(32),
    "seal_key": secrets.token_hex(32),
}


def _examples() -> dict[str, str]:
    """The secret values .env.example hands out."""
    found = {}
    for line in (REPO_ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        if re.search(r"PASSWORD|SECRET|KEY", name) and not name.startswith("#"):
            found[name] = value
    return found


def test_strong_secrets_pass(tmp_path: Path) -> None:
    assert Settings(home=tmp_path, **STRONG).mode == "production"


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("seal_key", "0" * 64, "SHAREHUB_SEAL_KEY to be a real secret"),
        ("seal_key", "ab" * 32, "SHAREHUB_SEAL_KEY to be random"),
        ("url_signing_key", "k", "SHAREHUB_URL_SIGNING_KEY to be a real secret"),
        ("url_signing_key", "x7", "SHAREHUB_URL_SIGNING_KEY of at least 32 characters"),
        ("url_signing_key", "abababababababababababababababab", "SHAREHUB_URL_SIGNING_KEY to be random"),
        ("metadata_url", "postgresql+psycopg://hub:change-me@db/hub", "the password in SHAREHUB_METADATA_URL"),
        ("connections", {"gongan_front": "postgresql://reader:secret@db/front"}, "connection 'gongan_front'"),
        ("smtp_password", "changeme", "SHAREHUB_SMTP_PASSWORD to be a real secret"),
    ],
)
def test_weak_secrets_are_refused_by_name(tmp_path: Path, setting: str, value: object, said: str) -> None:
    with pytest.raises(ValueError, match=re.escape(said)):
        Settings(home=tmp_path, **(STRONG | {setting: value}))


def test_every_example_value_is_refused(tmp_path: Path) -> None:
    examples = _examples()
    assert "SHAREHUB_SEAL_KEY" in examples and "POSTGRES_PASSWORD" in examples
    accepted = []
    for name, value in examples.items():
        try:
            Settings(home=tmp_path, **(STRONG | {"url_signing_key": value}))
            accepted.append(name)
        except ValueError as exc:
            assert "SHAREHUB_URL_SIGNING_KEY to be a real secret" in str(exc), name
    assert accepted == []


@pytest.mark.slow  # a sharehub process
def test_the_command_line_names_the_settings_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")} | {
        "SHAREHUB_HOME": str(tmp_path),
        "SHAREHUB_MODE": "production",
        "SHAREHUB_SEAL_KEY": "0" * 64,
        "SHAREHUB_URL_SIGNING_KEY": "k",
        "SHAREHUB_METADATA_URL": "postgresql+psycopg://hub:change-me@db/hub",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sharehub", "serve"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2
    assert "Traceback" not in said
    for setting in ("SHAREHUB_SEAL_KEY", "SHAREHUB_URL_SIGNING_KEY", "SHAREHUB_METADATA_URL"):
        assert setting in said, said
    assert "change-me" not in said  # a secret's value is never printed
