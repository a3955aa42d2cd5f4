"""API callers and their keys: a department's application, a provider department, or the platform office.

A key looks like `shk_<prefix>_<secret>`. The prefix finds the row; only the SHA-256 of the whole key
is stored, and it is compared in constant time. A key is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select

from sharehub import audit
from sharehub.access.callers import PLATFORM, ROLES, Caller, Role, operator
from sharehub.hub import Hub
from sharehub.metadata import dbapi
from sharehub.metadata.models import Consumer, utcnow


class AuthError(Exception):
    """The key is missing, malformed, unknown or revoked (the message says which, and nothing more)."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> tuple[str, str]:
    """(prefix, key): the prefix finds the row, the rest is the secret."""
    prefix = secrets.token_hex(6)
    return prefix, f"shk_{prefix}_{secrets.token_urlsafe(32)}"


def add_consumer(
    hub: Hub, name: str, department: str, role: Role, *, actor: Caller | None = None
) -> tuple[Consumer, str]:
    """Register a caller; return it and its API key (the only time the key is available)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "platform" and department != PLATFORM:
        raise ValueError(f"the platform role belongs to department {PLATFORM!r}")
    if role != "platform" and department not in hub.catalogue.departments:
        raise ValueError(f"no department {department!r} in the catalogue")
    if not name.strip():
        raise ValueError("a consumer needs a name, e.g. the application that will call")
    prefix, key = _new_key()
    with hub.db() as s:
        consumer = Consumer(
            name=name.strip(), department=department, role=role, key_prefix=prefix, key_hash=_digest(key)
        )
        s.add(consumer)
    audit.record(
        hub, "key_create", actor, None, result="created", detail=f"consumer {consumer.id} ({role}, {department})"
    )
    return consumer, key


def authenticate(hub: Hub, key: str) -> Caller:
    """The caller a key belongs to, or AuthError."""
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "shk":
        raise AuthError("malformed API key")
    db = dbapi.raw(hub.settings.metadata_url)
    found = db.remembered(("consumer", parts[1]), lambda: db.rows(_BY_PREFIX, (parts[1], parts[1])))
    if not found or not hmac.compare_digest(found[0][4], _digest(key)):
        raise AuthError("unknown API key")
    consumer_id, name, department, role, _, revoked_at, replaced_until = found[0]
    if revoked_at is not None:
        raise AuthError("revoked API key")
    if replaced_until is not None and dbapi.read_time(replaced_until) <= utcnow():
        raise AuthError("this API key was replaced, and its overlap with the new one is over")
    return Caller(consumer_id, name, department, role)


# A key is found by its prefix: the current key, or one a rotation replaced that still works for a while.
_BY_PREFIX = (
    "SELECT id, name, department, role, key_hash, revoked_at, NULL FROM consumers WHERE key_prefix = ?"
    " UNION ALL"
    " SELECT id, name, department, role, previous_hash, revoked_at, previous_until FROM consumers"
    " WHERE previous_prefix = ?"
)
MAX_OVERLAP = timedelta(days=7)


def revoke(hub: Hub, consumer_id: int, *, actor: Caller | None = None) -> Consumer:
    """Revoke a caller's key at once; the row stays, for the audit trail."""
    with hub.db() as s:
        consumer = s.get(Consumer, consumer_id)
        if consumer is None:
            raise LookupError(f"no consumer {consumer_id}")
        if consumer.revoked_at is None:
            consumer.revoked_at = utcnow()
    audit.record(hub, "key_revoke", actor, None, result="revoked", detail=f"consumer {consumer_id}")
    return consumer


def rotate(
    hub: Hub, consumer_id: int, *, actor: Caller | None = None, overlap: timedelta = timedelta(0)
) -> tuple[Consumer, str]:
    """A new key for a caller, shown this once. The caller keeps its id, and so its applications and
    grants. The old key stops working at once (every process forgets it on the change signal, as on a
    revocation), or after `overlap` (at most `MAX_OVERLAP`), so that the new one can be deployed without
    a gap. A revoked caller is given a key again: reinstated, with the grants it still holds, and never
    with an overlap (its old key is the one that was revoked)."""
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise ValueError(f"an overlap is between 0 and {MAX_OVERLAP.days} days")
    prefix, key = _new_key()
    with hub.db() as s:
        consumer = s.get(Consumer, consumer_id)
        if consumer is None:
            raise LookupError(f"no consumer {consumer_id}")
        reinstated = consumer.revoked_at is not None
        if reinstated and overlap:
            raise ValueError(f"consumer {consumer_id}'s key was revoked: its new key takes over at once")
        replaced = (consumer.key_prefix, consumer.key_hash, utcnow() + overlap) if overlap else (None, None, None)
        consumer.previous_prefix, consumer.previous_hash, consumer.previous_until = replaced
        consumer.key_prefix, consumer.key_hash, consumer.revoked_at = prefix, _digest(key), None
    result = "reinstated" if reinstated else "rotated"
    ends = replaced[2]
    until = f"; the replaced key works until {ends.isoformat(timespec='seconds')}" if ends is not None else ""
    audit.record(hub, "key_rotate", actor, None, result=result, detail=f"consumer {consumer_id}{until}")
    return consumer, key


def list_consumers(hub: Hub, department: str | None = None) -> list[Consumer]:
    """Registered callers, oldest first."""
    with hub.db() as s:
        q = select(Consumer).order_by(Consumer.id)
        if department:
            q = q.where(Consumer.department == department)
        return list(s.scalars(q))


__all__ = [  # callers are defined in access.callers, and used with their keys from here
    "PLATFORM",
    "ROLES",
    "AuthError",
    "Caller",
    "Role",
    "add_consumer",
    "authenticate",
    "list_consumers",
    "operator",
    "revoke",
    "rotate",
]
