"""Console sessions: sign-in by key or by username and password (argon2), what is stored, and how a
session ends (sign-out, expiry, the caller's key revoked)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from sharehub.access.consumers import AuthError, add_consumer, revoke
from sharehub.access.sessions import session, set_password, sign_in, sign_out
from sharehub.errors import Invalid
from sharehub.metadata.models import ConsoleSession, Consumer


def test_a_password_signs_in_as_the_key_would_and_is_stored_hashed(make_hub) -> None:
    hub = make_hub()
    consumer, key = add_consumer(hub, "人社局 数据管理", "rsj", "provider")
    with pytest.raises(Invalid):
        set_password(hub, consumer.id, "demo.rsj", "short")
    set_password(hub, consumer.id, "demo.rsj", "a long enough password")
    with hub.db() as s:
        stored = s.get(Consumer, consumer.id).password_hash
    assert stored.startswith("$argon2id$") and "a long enough password" not in stored

    by_password, token, csrf = sign_in(hub, username="demo.rsj", password="a long enough password")
    by_key, _, _ = sign_in(hub, key=key)
    assert by_password == by_key and by_password.role == "provider" and by_password.department == "rsj"
    assert session(hub, token) == (by_password, csrf)
    with hub.db() as s:  # only the token's digest is kept
        assert s.scalar(select(ConsoleSession.token_hash).where(ConsoleSession.token_hash == token)) is None
    for wrong in (
        {"username": "demo.rsj", "password": "not the password"},
        {"username": "nobody", "password": "x" * 12},
    ):
        with pytest.raises(AuthError, match="wrong username or password"):
            sign_in(hub, **wrong)
    other, _ = add_consumer(hub, "税务局", "swj", "provider")
    with pytest.raises(Invalid, match="taken"):
        set_password(hub, other.id, "demo.rsj", "another long password")

    sign_out(hub, token)
    with pytest.raises(AuthError):
        session(hub, token)


def test_a_session_ends_when_it_expires_or_its_key_is_revoked(make_hub) -> None:
    hub = make_hub()
    consumer, key = add_consumer(hub, "民政局 低保核对", "mzj", "consumer")
    _, token, _ = sign_in(hub, key=key)
    _, expiring, _ = sign_in(hub, key=key)
    with hub.db() as s:
        row = s.get(ConsoleSession, hashlib.sha256(expiring.encode()).hexdigest())
        row.expires_at = row.created_at - timedelta(seconds=1)
    with pytest.raises(AuthError, match="ended"):
        session(hub, expiring)
    assert session(hub, token)[0].id == consumer.id
    revoke(hub, consumer.id)
    with pytest.raises(AuthError, match="revoked"):
        session(hub, token)
