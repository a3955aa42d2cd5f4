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


__all__ = [
    "CatalogueError",
    "ConnectorFailure",
    "FatalError",
    "RejectedInput",
    "RetryableError",
    "SchemaDrift",
    "SharehubError",
    "SourceMissing",
    "SourceUnreachable",
]
