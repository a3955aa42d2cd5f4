"""Connectors to department front-end databases and offline file drops; each streams Arrow batches."""

from connectors.base import TYPE_FAMILIES, Source, SourceColumn
from connectors.files import FileDropSource
from connectors.sql import SqlSource

__all__ = ["FileDropSource", "Source", "SourceColumn", "SqlSource", "TYPE_FAMILIES"]
