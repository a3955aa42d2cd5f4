"""Connectors to department front-end databases and offline file drops; each streams Arrow batches.

Import the submodules (`connectors.sql`, `connectors.files`) where they are used, so that importing
the error types stays cheap (DAG parsing imports them).
"""
