"""`python -m sharehub` runs the CLI."""

from sharehub.cli import entrypoint

entrypoint()
