"""Anchors of the audit chain outside the metadata database.

The chain's hashes show an edit, a removal or a reordering, but whoever can write the database can also
recompute every later hash and the head. A checkpoint closes that gap: the chain's head (last id and
hash) sealed with the platform's Ed25519 seal and written to the object store, where the database's
writers do not reach (use a bucket with object lock or versioning in production). `sharehub audit
verify` then checks the chain against every checkpoint: a rewritten chain no longer has, at a
checkpoint's id, the hash that was sealed there. Checkpoints are written by the hourly
`sharehub.audit_checkpoint` DAG and by `sharehub audit checkpoint`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sharehub import seal
from sharehub.hub import Hub
from sharehub.metadata.models import AuditHead, utcnow

log = logging.getLogger(__name__)
FOLDER = "audit/checkpoints"
KIND = "sharehub.audit_checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head as sealed at a moment."""

    last_id: int
    last_hash: str
    at: datetime
    path: str


def checkpoint(hub: Hub) -> Checkpoint | None:
    """Seal the chain's head now and write it to the object store; None when the chain is empty. Written
    once per head: a head already anchored is not written again."""
    with hub.db() as s:
        head = s.get(AuditHead, 1)
        if head is None or head.last_id == 0:
            return None
        last_id, last_hash = head.last_id, head.last_hash
    path = f"{FOLDER}/{last_id:020d}.json"
    now = utcnow()
    if not hub.store.exists(path):
        document = {"kind": KIND, "last_id": last_id, "last_hash": last_hash, "at": now.isoformat()}
        hub.store.write_bytes(path, json.dumps(seal.seal(hub, document), ensure_ascii=False).encode())
        log.info("audit chain anchored at entry %d", last_id)
    return Checkpoint(last_id, last_hash, now, path)


class BadCheckpoint(Exception):
    """A checkpoint file that is not one this platform sealed."""


def checkpoints(hub: Hub) -> list[Checkpoint]:
    """Every checkpoint in the object store, oldest first; BadCheckpoint names one whose seal fails."""
    paths = [p for p in hub.store.list(FOLDER) if p.endswith(".json")]
    public = seal.public_pem(hub) if paths else ""  # no checkpoint yet: nothing to read the seal for
    found = []
    for path in sorted(paths):
        try:
            document = json.loads(hub.store.read_bytes(path))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadCheckpoint(f"checkpoint {path} is not JSON") from exc
        problem = seal.verify(document, public) if document.get("kind") == KIND else "it is not a checkpoint"
        if problem:
            raise BadCheckpoint(f"checkpoint {path}: {problem}")
        found.append(
            Checkpoint(
                int(document["last_id"]), str(document["last_hash"]), datetime.fromisoformat(document["at"]), path
            )
        )
    return sorted(found, key=lambda c: c.last_id)
