"""Errors that say what to do: retry, fix the source or catalogue, or fix the input.

They live in the lowest layer so that connectors can raise them; `sharehub.errors` re-exports them.
"""

from __future__ import annotations


class SharehubError(Exception):
    """Base of every error the hub raises on purpose."""

    retryable = False


class RetryableError(SharehubError):
    """A transient failure (network, lock, unreachable server): retrying may help."""

    retryable = True


class FatalError(SharehubError):
    """A failure that retrying will not fix: someone must change the source, the catalogue or the config."""


class SourceUnreachable(RetryableError):
    """The department's front-end database or file drop does not answer."""


class SourceMissing(FatalError):
    """The declared table, query or file is gone from the source."""


class SchemaDrift(FatalError):
    """A declared column disappeared or changed type at the source."""


class ConnectorFailure(FatalError):
    """The driver itself failed on what the source holds (a value it cannot convert): fix the source or report it."""
