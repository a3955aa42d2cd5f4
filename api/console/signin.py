"""Who a console request is from: the session cookie resolved to the caller its API key would be
(`sharehub.access.sessions`), and the CSRF check every form's POST passes."""

from __future__ import annotations

from typing import Annotated, NamedTuple

from fastapi import Depends, Form, HTTPException, Request, status

from api.deps import HubDep
from sharehub.access.callers import Caller
from sharehub.access.consumers import AuthError
from sharehub.access.sessions import csrf_matches, session
from sharehub.hub import Hub

COOKIE = "sharehub_console"
LOGIN_CSRF = "sharehub_console_login"


class SignedIn(NamedTuple):
    """A console request's hub, caller and the session's CSRF token (for the forms it renders)."""

    hub: Hub
    caller: Caller
    csrf: str


class NotSignedIn(Exception):
    """No live session: the console answers with the sign-in page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def signed_in(hub: HubDep, request: Request) -> SignedIn:
    """The caller of the session cookie; NotSignedIn (a redirect to the sign-in page) otherwise."""
    try:
        caller, csrf = session(hub, request.cookies.get(COOKIE))
    except AuthError as exc:
        raise NotSignedIn(str(exc)) from None
    return SignedIn(hub, caller, csrf)


SignedInDep = Annotated[SignedIn, Depends(signed_in)]


async def posted(who: SignedInDep, csrf: Annotated[str, Form()]) -> SignedIn:
    """A form's POST: signed in, and carrying the session's CSRF token (403 otherwise)."""
    if not csrf_matches(who.csrf, csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form's CSRF token does not match this session")
    return who


PostedDep = Annotated[SignedIn, Depends(posted)]


def roles(*allowed: str):
    """A page for these roles only: 403 for another, as the API's `require` answers."""

    async def check(who: SignedInDep) -> SignedIn:
        if who.caller.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this page is for the {' or '.join(allowed)} role")
        return who

    return Depends(check)
