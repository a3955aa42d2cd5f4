"""One settings object for the whole hub, read from `SHAREHUB_*` environment variables."""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting has a working embedded default; production mode refuses missing secrets."""

    model_config = SettingsConfigDict(env_prefix="SHAREHUB_", env_nested_delimiter="__", extra="ignore")

    mode: Literal["development", "production"] = "development"
    home: Path = Field(default=Path(".sharehub"), description="Working directory of the embedded defaults.")
    catalogue_dir: Path = Field(default=REPO_ROOT / "catalogue", description="Folder of catalogue YAML.")
    models_dir: Path = Field(
        default=REPO_ROOT / "warehouse" / "models", description="Folder of thematic SQL models (<theme>.<name>.sql)."
    )
    metadata_url: str = Field(default="", description="SQLAlchemy URL; default SQLite under home.")
    storage_url: str = Field(default="", description="file:///dir or s3://bucket/prefix; default home/lake.")
    s3_endpoint: str = Field(default="", description="S3 endpoint URL, e.g. http://minio:9000.")
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    s3_region: str = "us-east-1"
    s3_public_endpoint: str = Field(
        default="", description="S3 endpoint as consumers reach it, for presigned links; default: s3_endpoint."
    )
    connections: dict[str, str] = Field(
        default_factory=dict,
        description="Connection name -> SQLAlchemy-style URL. Unset names fall back to SQLite under home/frontdb.",
    )
    filedrop_dir: Path = Field(default=Path(""), description="Root of offline file drops; default home/filedrop.")
    profile: str = Field(
        default="lichuan", description="Jurisdiction profile: lichuan, fushun, zhejiang, hengyang, zhongshan."
    )
    holiday_file: Path = Field(default=Path(""), description="Holiday override YAML; default home/holidays.yaml.")
    smtp_host: str = Field(default="", description="SMTP server for notices; empty keeps them queued in the outbox.")
    smtp_port: int = 25
    smtp_sender: str = "sharehub@localhost"
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    platform_email: str = Field(default="platform@localhost", description="The platform office: gets escalations.")
    extract_batch_rows: int = Field(default=100_000, gt=0, description="Arrow batch size while extracting.")
    gate_chunk_rows: int = Field(default=250_000, gt=0, description="Rows per Great Expectations validation.")
    gate_engine: Literal["duckdb", "gx"] = Field(
        default="duckdb",
        description="duckdb: rules that compile to SQL run in DuckDB, the rest in Great Expectations; gx: all in GX.",
    )

    verify_rate_per_minute: int = Field(
        default=600, gt=0, description="Verification calls one consumer may make per minute (then 429)."
    )
    serving_refresh_seconds: float = Field(
        default=5.0, ge=0, description="How often the API checks whether a store moved and refreshes its copy."
    )

    extract_url_minutes: int = Field(default=15, gt=0, le=7 * 24 * 60, description="Life of a bulk download URL.")
    extract_keep_days: int = Field(
        default=7,
        ge=1,
        le=3650,
        description="Days a bulk extract's files stay in the object store (those of an ended grant go at once).",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="The API's address as consumers reach it (download links)."
    )
    upstream_url: str = Field(
        default="",
        description="The API of the upper-level (province or city) platform; empty: this platform serves one level.",
    )
    upstream_key: SecretStr = Field(
        default=SecretStr(""), description="The API key the upper-level platform issued to this platform office."
    )
    upstream_name: str = Field(default="上级平台", description="What to call the upper-level platform in notices.")
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, description="Wait this long for the upper level.")
    url_signing_key: SecretStr = Field(
        default=SecretStr(""), description="Signs download links of a local object store; default: made under home."
    )

    seal_key: SecretStr = Field(
        default=SecretStr(""),
        description="The platform's electronic seal: an Ed25519 private key as 64 hex digits (32 random bytes); "
        "default: made under home. Required in production, where every service must seal with the same key.",
    )

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        self.home = self.home.resolve()
        if not self.metadata_url:
            self.metadata_url = f"sqlite:///{self.home / 'metadata.sqlite'}"
        if not self.storage_url:
            self.storage_url = (self.home / "lake").as_uri()
        if self.filedrop_dir == Path(""):
            self.filedrop_dir = self.home / "filedrop"
        if self.holiday_file == Path(""):
            self.holiday_file = self.home / "holidays.yaml"
        if self.mode == "production":
            missing = self._production_gaps()
            if missing:
                raise ValueError("production mode needs " + "; ".join(missing))
        return self

    def _production_gaps(self) -> list[str]:
        """Every secret or service production mode lacks, so one start-up error names them all."""
        gaps = []
        if self.storage_url.startswith("s3://"):
            for name in ("s3_access_key", "s3_secret_key"):
                if not getattr(self, name).get_secret_value():
                    gaps.append(f"SHAREHUB_{name.upper()} for {self.storage_url}")
        if self.storage_url.startswith("file:") and not self.url_signing_key.get_secret_value():
            gaps.append("SHAREHUB_URL_SIGNING_KEY, with a local object store")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", self.seal_key.get_secret_value().strip()):
            gaps.append("SHAREHUB_SEAL_KEY as 64 hex digits (openssl rand -hex 32)")
        if self.metadata_url.startswith("sqlite"):
            gaps.append("SHAREHUB_METADATA_URL pointing at PostgreSQL")
        return gaps + self._weak_secrets()

    def _weak_secrets(self) -> list[str]:
        """Every secret that is set but guessable: a placeholder or example value, too short, or too uniform."""
        secrets: list[tuple[str, str, int, float]] = [  # (setting, value, fewest characters, fewest bits)
            ("SHAREHUB_SEAL_KEY", self.seal_key.get_secret_value().strip(), 64, 128),
            ("SHAREHUB_URL_SIGNING_KEY", self.url_signing_key.get_secret_value(), 32, 96),
            ("SHAREHUB_S3_SECRET_KEY", self.s3_secret_key.get_secret_value(), 16, 40),
            ("SHAREHUB_SMTP_PASSWORD", self.smtp_password.get_secret_value(), 8, 24),
            ("SHAREHUB_UPSTREAM_KEY", self.upstream_key.get_secret_value(), 16, 40),
            ("the password in SHAREHUB_METADATA_URL", _password(self.metadata_url), 8, 24),
        ]
        secrets += [(f"the password of connection {n!r}", _password(u), 8, 24) for n, u in self.connections.items()]
        weak = []
        for name, value, length, bits in secrets:
            if not value:
                continue  # a missing secret is a gap of its own where production needs it
            if placeholder(value):
                weak.append(f"{name} to be a real secret, not the example or placeholder value")
            elif len(value) < length:
                weak.append(f"{name} of at least {length} characters (it has {len(value)})")
            elif entropy_bits(value) < bits:
                weak.append(f"{name} to be random: it is too uniform (about {entropy_bits(value):.0f} bits)")
        return weak

    def connection_url(self, name: str) -> str:
        """The URL of a named department connection, or the embedded SQLite front-end database."""
        if name in self.connections:
            return self.connections[name]
        return f"sqlite:///{self.home / 'frontdb' / f'{name}.sqlite'}"


# Values that documentation and examples hand out: never a production secret.
_PLACEHOLDERS = re.compile(
    r"change.?me|generate.?with|example|placeholder|replace.?me|your.?(key|secret|password)|^(secret|password|"
    r"passw0rd|admin|minioadmin|test|default|sharehub|postgres|root|123456\d*|k+|x+|0+)$",
    re.IGNORECASE,
)


def placeholder(value: str) -> bool:
    """Whether a secret is an example or placeholder value (as .env.example and documentation hand out)."""
    return bool(_PLACEHOLDERS.search(value.strip()))


def entropy_bits(value: str) -> float:
    """An estimate of a secret's randomness: its length times the Shannon entropy of its characters."""
    counts = Counter(value)
    return -len(value) * sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _password(url: str) -> str:
    try:
        return (make_url(url).password or "") if "://" in url else ""
    except ArgumentError:
        return ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
