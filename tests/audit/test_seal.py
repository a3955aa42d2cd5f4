"""The platform's electronic seal (Zhejiang 23): a sealed document checks out, an altered one does not."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from sharehub.cli import app as cli
from sharehub.seal import public_pem, seal, verify
from sharehub.settings import Settings


def test_a_seal_holds_until_the_document_changes(make_hub) -> None:
    hub = make_hub()
    document = {"resource_id": "scjg.legal_entity", "rows": 3, "sha256": "ab" * 32, "名称": "利川"}
    sealed = seal(hub, document)
    public = public_pem(hub)
    assert verify(sealed, public) is None
    assert verify({**sealed, "rows": 4}, public) == "the seal does not match the document: it was altered after sealing"
    assert verify(document, public) == "the document carries no seal"
    other = Ed25519PrivateKey.generate().public_key()
    stranger = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert "not with this key" in (verify(sealed, stranger) or "")
    forged = {**sealed, "seal": {**sealed["seal"], "key_id": "0" * 16}}
    assert "sealed with key" in (verify(forged, public) or "")
    # The key is the configured one: another hub with the same key seals alike, a bad key is refused.
    key = "11" * 32
    assert public_pem(make_hub(seal_key=key)) == public_pem(make_hub(home=hub.settings.home / "other", seal_key=key))
    with pytest.raises(ValueError, match="64 hex digits"):
        public_pem(make_hub(seal_key="not-hex"))


def test_production_needs_a_seal_key(tmp_path: Path) -> None:
    production = {
        "mode": "production",
        "home": tmp_path,
        "metadata_url": "postgresql+psycopg://hub@db/hub",
        "url_signing_key": "Vq3xJ9pLr7TzW2mNc8sKd4hFa6gYb1eU",
    }
    with pytest.raises(ValueError, match="SHAREHUB_SEAL_KEY as 64 hex digits"):
        Settings(**production)
    with pytest.raises(ValueError, match="SHAREHUB_SEAL_KEY as 64 hex digits"):
        Settings(**production, seal_key="change-me")
    # One start-up error names every gap at once.
    with pytest.raises(ValueError, match=r"SHAREHUB_S3_ACCESS_KEY .*SHAREHUB_SEAL_KEY.*SHAREHUB_METADATA_URL"):
        Settings(mode="production", home=tmp_path, storage_url="s3://lake/city")
    key = "9f1c2e7a4b8d3f6051e2a9c7d4b3f8e1a6c5d2f0b9e8a7c6d5f4e3b2a1c0d9e8"
    assert Settings(**production, seal_key=key).seal_key.get_secret_value() == key


def test_the_command_line_checks_a_manifest_and_its_data(make_hub, use_env, tmp_path: Path) -> None:
    hub = make_hub()
    use_env(hub)
    data = tmp_path / "data.parquet"
    data.write_bytes(b"PAR1 rows PAR1")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(seal(hub, {"sha256": hashlib.sha256(data.read_bytes()).hexdigest()})))
    ok = CliRunner().invoke(cli, ["seal", "verify", str(manifest), "--data", str(data)])
    assert ok.exit_code == 0 and "seal valid" in ok.output and "matches it" in ok.output, ok.output
    data.write_bytes(b"PAR1 other rows PAR1")
    changed = CliRunner().invoke(cli, ["seal", "verify", str(manifest), "--data", str(data)])
    assert changed.exit_code == 1 and "the sealed manifest says" in changed.output
    key = tmp_path / "seal.pem"
    key.write_text(public_pem(make_hub(home=tmp_path / "elsewhere")))
    foreign = CliRunner().invoke(cli, ["seal", "verify", str(manifest), "--public-key", str(key)])
    assert foreign.exit_code == 1 and "not with this key" in foreign.output
    shown = CliRunner().invoke(cli, ["seal", "show"])
    assert shown.exit_code == 0 and public_pem(hub) in shown.output
