"""How the API turns a domain step's refusal into an HTTP status with the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException, status

from sharehub.grants import Forbidden, Gone, GrantError, NotFound, WrongState
from sharehub.service import BadRequest

_Step = TypeVar("_Step")


def step(action: Callable[[], Any]) -> Any:
    """Run an application or grant step, turning its refusals into 403 / 404 / 409 / 410 / 422 with the reason."""
    try:
        return action()
    except Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except Gone as exc:
        raise HTTPException(status.HTTP_410_GONE, str(exc)) from None
    except WrongState as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except (GrantError, BadRequest) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def notice_step(action: Callable[[], _Step]) -> _Step:
    """Run a step on a notice or a conflict, turning its refusals into 403 / 404 / 422 with the reason (those
    modules refuse with the built-in PermissionError, LookupError and ValueError)."""
    try:
        return action()
    except PermissionError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
