"""The command line, one module per command group; `sharehub.cli.main` assembles them under `sharehub`."""

from sharehub.cli.main import app, entrypoint

__all__ = ["app", "entrypoint"]
