"""The web console's sign-in: with a caller's API key, or with a username and password (argon2id), a
browser gets a session. Only the SHA-256 of the session's token is kept, beside its CSRF token; a session
ends after `LIFETIME`, on sign-out, or as soon as its caller's key is revoked. The caller a session
resolves to is the one its API key would: the console authorizes exactly as the API does."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select

from sharehub import audit
from sharehub.access.callers import Caller
from sharehub.access.consumers import AuthError, authenticate
from sharehub.errors import Invalid, NotFound
from sharehub.hub import Hub
from sharehub.metadata.models import ConsoleSession, Consumer, utcnow

LIFETIME = timedelta(hours=8)  # a working day
MIN_PASSWORD = 10
_hasher = PasswordHasher()


@functools.cache
def _decoy() -> str:
    """Checked when the username is unknown, so that a wrong name takes as long as a wrong password (made
    on the first sign-in, not when the API imports this module)."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_password(hub: Hub, consumer_id: int, username: str, password: str, *, actor: Caller | None = None) -> None:
    """Give a caller a console username and password (stored as an argon2id hash)."""
    username = username.strip()
    if not 3 <= len(username) <= 60 or not username.replace(".", "").replace("_", "").replace("-", "").isalnum():
        raise Invalid("a username is 3 to 60 letters, digits, dots, dashes or underscores")
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"a console password has at least {MIN_PASSWORD} characters")
    with hub.db() as s:
        consumer = s.get(Consumer, consumer_id)
        if consumer is None:
            raise NotFound(f"no consumer {consumer_id}")
        taken = s.scalar(select(Consumer.id).where(Consumer.username == username, Consumer.id != consumer_id))
        if taken is not None:
            raise Invalid(f"the username {username!r} is taken")
        consumer.username, consumer.password_hash = username, _hasher.hash(password)
    audit.record(hub, "console_password", actor, None, result="set", detail=f"consumer {consumer_id}")


def _by_password(hub: Hub, username: str, password: str) -> Caller:
    with hub.db() as s:
        consumer = s.scalar(select(Consumer).where(Consumer.username == username.strip()))
        stored = consumer.password_hash if consumer is not None else None
        try:
            _hasher.verify(stored or _decoy(), password)
        except (VerificationError, InvalidHashError):
            raise AuthError("wrong username or password") from None
        if consumer is None or stored is None:
            raise AuthError("wrong username or password")
        if consumer.revoked_at is not None:
            raise AuthError("this caller's access was revoked")
        return Caller(consumer.id, consumer.name, consumer.department, consumer.role)  # type: ignore[arg-type]


def sign_in(
    hub: Hub, *, key: str | None = None, username: str | None = None, password: str | None = None
) -> tuple[Caller, str, str]:
    """Open a session for the caller of this key, or of this username and password: (caller, the session
    token for the cookie, its CSRF token). AuthError, saying no more than the API would, otherwise."""
    if key:
        caller = authenticate(hub, key.strip())
    elif username and password:
        caller = _by_password(hub, username, password)
    else:
        raise AuthError("give an API key, or a username and password")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    with hub.db() as s:
        s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
        s.add(
            ConsoleSession(
                token_hash=_digest(token), consumer_id=caller.id, csrf=csrf, created_at=now, expires_at=now + LIFETIME
            )
        )
    audit.record(hub, "console_sign_in", caller, None, result="signed_in", detail="key" if key else "password")
    return caller, token, csrf


def session(hub: Hub, token: str | None) -> tuple[Caller, str]:
    """The caller and CSRF token of a live session; AuthError when there is none, it ended, or the caller's
    key was revoked since."""
    if not token:
        raise AuthError("not signed in")
    with hub.db() as s:
        found = s.get(ConsoleSession, _digest(token))
        if found is None or found.expires_at <= utcnow():
            raise AuthError("the session has ended: sign in again")
        consumer = s.get(Consumer, found.consumer_id)
        if consumer is None or consumer.revoked_at is not None:  # refused on every request from now on
            raise AuthError("this caller's access was revoked")
        caller = Caller(consumer.id, consumer.name, consumer.department, consumer.role)  # type: ignore[arg-type]
        return caller, found.csrf


def csrf_matches(expected: str, given: str | None) -> bool:
    """Whether a form's CSRF token is the session's (compared in constant time)."""
    return bool(given) and hmac.compare_digest(expected, given or "")


def sign_out(hub: Hub, token: str | None) -> None:
    """End the session at once."""
    if token:
        with hub.db() as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _digest(token)))
