"""The hub's error hierarchy: retryable, fatal, or rejected input. Caught only at the edges."""

from __future__ import annotations

from connectors.errors import (
    ConnectorFailure,
    FatalError,
    RetryableError,
    SchemaDrift,
    SharehubError,
    SourceMissing,
    SourceUnreachable,
)


class CatalogueError(FatalError):
    """The catalogue is broken: the message names the file, the key and the reason."""


class RejectedInput(SharehubError):
    """Input that the hub will not accept, named by resource, field and row key."""


class Refused(RejectedInput):
    """A step the hub will not take for this caller; the message says why and is shown to the caller.
    `api.errors.step` maps each kind to its HTTP status in one place; each kind is also the built-in
    exception it refines, so a caller that catches LookupError or ValueError still catches it."""


class Forbidden(Refused, PermissionError):
    """The caller may not take this step (403)."""


class NotFound(Refused, LookupError):
    """Nothing by that id that the caller may see (404): absent and hidden look alike."""


class Gone(Refused):
    """It was there and is no longer, e.g. an extract whose files were removed (410)."""


class WrongState(Refused):
    """The target is not in the state this step needs (409)."""


class Invalid(Refused, ValueError):
    """The request is malformed or incomplete: a reason missing, a field unknown (422)."""


__all__ = [
    "CatalogueError",
    "ConnectorFailure",
    "FatalError",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "Refused",
    "RejectedInput",
    "RetryableError",
    "SchemaDrift",
    "SharehubError",
    "SourceMissing",
    "SourceUnreachable",
    "WrongState",
]
