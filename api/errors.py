"""The one place a domain refusal becomes an HTTP status with its reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import HTTPException, status

from sharehub.errors import Gone, Refused, WrongState

_Step = TypeVar("_Step")


def step(action: Callable[[], _Step]) -> _Step:
    """Run a domain step, turning its refusal into 403 / 404 / 409 / 410 / 422 with the reason.

    The domain's kinds (`sharehub.errors`) refine the built-in exceptions, so a module that still
    raises PermissionError, LookupError or ValueError maps the same way."""
    try:
        return action()
    except Gone as exc:
        raise HTTPException(status.HTTP_410_GONE, str(exc)) from None
    except WrongState as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except PermissionError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except (Refused, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


step = step  # the notice and conflict routes' name for it
