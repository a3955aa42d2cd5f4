"""Where a run's files live in the object store; the resource id names every path."""

from __future__ import annotations


def landing(resource_id: str, run_id: str) -> str:
    """The immutable Parquet of everything a run read."""
    return f"landing/{resource_id}/run={run_id}/rows.parquet"


def landing_keys(resource_id: str, run_id: str) -> str:
    """Every key the source held at extraction time, for delete detection."""
    return f"landing/{resource_id}/run={run_id}/keys.parquet"


def landing_dir(resource_id: str, run_id: str) -> str:
    """The folder of one run's landing files."""
    return f"landing/{resource_id}/run={run_id}"


def quarantine(resource_id: str, run_id: str) -> str:
    """Rows the gate refused, as landed, with their reasons."""
    return f"quarantine/{resource_id}/run={run_id}/rows.parquet"


def staging_dir(resource_id: str, run_id: str) -> str:
    """The folder of one run's staged rows; removed once the run commits or fails."""
    return f"staging/{resource_id}/run={run_id}"


def staging(resource_id: str, run_id: str) -> str:
    """Typed rows that passed the gate, waiting to be merged into the store."""
    return f"{staging_dir(resource_id, run_id)}/rows.parquet"
