"""The platform's electronic seal (电子印章; Zhejiang 23–24): what the hub hands out cannot be altered unseen.

Every document sharehub publishes about data it hands over carries a seal: the manifest of a bulk
extract (and through its sha256, the extract itself), the manifest of an open dataset, and a monthly
bulletin. The seal is an Ed25519 signature over the document's canonical JSON (keys sorted, no
whitespace, UTF-8) without its `seal` member, with the algorithm and the key's id. Anyone holding the
platform's public key (`GET /seal`, `sharehub seal show`) can check it offline, and `sharehub seal
verify` does, also against the data file a manifest describes.

The private key is `SHAREHUB_SEAL_KEY` (64 hex digits), required in production so that every service
seals with the same key; in development it is made under the hub's home on first use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sharehub.hub import Hub

ALGORITHM = "Ed25519"


def _private_key(hub: Hub) -> Ed25519PrivateKey:
    text = hub.settings.seal_key.get_secret_value().strip()
    if not text:
        path = hub.settings.home / "seal.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        text = path.read_text().strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ValueError("SHAREHUB_SEAL_KEY must be 64 hex digits (32 bytes), e.g. from: openssl rand -hex 32")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_pem(hub: Hub) -> str:
    """The public key that checks the platform's seal, as PEM."""
    return _pem(_private_key(hub))


def _pem(key: Ed25519PrivateKey) -> str:
    public = key.public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(public: str) -> str:
    """A short name of a public key (PEM): the first 16 hex digits of the SHA-256 of its PEM text."""
    return hashlib.sha256(public.strip().encode()).hexdigest()[:16]


def canonical(document: dict[str, Any]) -> bytes:
    """What the seal signs: the document without its seal, as canonical JSON."""
    body = {k: v for k, v in document.items() if k != "seal"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def seal(hub: Hub, document: dict[str, Any]) -> dict[str, Any]:
    """The document with the platform's seal added."""
    key = _private_key(hub)  # read once: it may come from a file
    signature = key.sign(canonical(document))
    return {
        **document,
        "seal": {
            "algorithm": ALGORITHM,
            "key_id": key_id(_pem(key)),
            "signature": base64.b64encode(signature).decode(),
        },
    }


def verify(document: dict[str, Any], public: str) -> str | None:
    """None when the document carries a valid seal of this public key (PEM); otherwise why not."""
    found = document.get("seal")
    if not isinstance(found, dict):
        return "the document carries no seal"
    if found.get("algorithm") != ALGORITHM:
        return f"the seal's algorithm is {found.get('algorithm')!r}, not {ALGORITHM}"
    if found.get("key_id") != key_id(public):
        return f"sealed with key {found.get('key_id')}, not with this key ({key_id(public)})"
    key = serialization.load_pem_public_key(public.encode())
    if not isinstance(key, Ed25519PublicKey):
        return "the public key is not an Ed25519 key"
    try:
        key.verify(base64.b64decode(str(found.get("signature", "")), validate=True), canonical(document))
    except (InvalidSignature, ValueError):
        return "the seal does not match the document: it was altered after sealing"
    return None
