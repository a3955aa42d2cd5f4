"""The audit chain held against sealed checkpoints outside the database: rewriting it whole, every later
hash and the head recomputed, no longer passes `audit verify`."""

from __future__ import annotations

import json

from sqlalchemy import select
from typer.testing import CliRunner

from sharehub import audit
from sharehub.anchors import checkpoint
from sharehub.cli import app as cli
from sharehub.metadata.models import AuditEntry, AuditHead


def _fill(hub, n: int) -> None:
    for i in range(n):
        audit.record(hub, "verification", None, "gongan.population", result="match", record_key=f"k{i}")


def _rewrite_whole(hub, entry_id: int) -> None:
    """What an attacker with the database does: edit one entry, then recompute every later hash and the head."""
    with hub.db() as s:
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        prev = audit.GENESIS
        for e in entries:
            if e.id == entry_id:
                e.result = "no_match"
            e.prev_hash = prev
            e.hash = audit.entry_hash(e)
            prev = e.hash
        head = s.get(AuditHead, 1)
        assert head is not None
        head.last_hash = prev


def test_a_chain_rewritten_whole_fails_against_its_checkpoint(make_hub, use_env) -> None:
    hub = make_hub()
    _fill(hub, 5)
    anchored = checkpoint(hub)
    assert anchored is not None and anchored.last_id == 5
    _fill(hub, 3)
    assert checkpoint(hub).last_id == 8  # type: ignore[union-attr]
    before = audit.verify(hub)
    assert before.ok and before.checkpoints == 2

    _rewrite_whole(hub, 3)

    after = audit.verify(hub)
    assert not after.ok and after.first_bad == 5 and "the chain was rewritten" in after.reason
    use_env(hub)
    shown = CliRunner().invoke(cli, ["audit", "verify"])
    assert shown.exit_code == 1 and "rewritten" in shown.output


def test_a_rewrite_after_the_last_checkpoint_shows_at_the_next_one_and_a_forged_checkpoint_is_refused(
    make_hub,
) -> None:
    hub = make_hub()
    _fill(hub, 4)
    made = checkpoint(hub)
    assert made is not None
    _rewrite_whole(hub, 2)
    assert "its hash differs from the checkpoint" in audit.verify(hub).reason

    # Nor can the checkpoint be made to agree: edited, it no longer carries a valid seal.
    forged = json.loads(hub.store.read_bytes(made.path))
    forged["last_hash"] = "f" * 64
    hub.store.write_bytes(made.path, json.dumps(forged).encode())
    refused = audit.verify(hub)
    assert not refused.ok and "seal does not match" in refused.reason


def test_entries_removed_after_a_checkpoint_are_found(make_hub) -> None:
    hub = make_hub()
    _fill(hub, 6)
    checkpoint(hub)
    with hub.db() as s:
        for e in s.scalars(select(AuditEntry).where(AuditEntry.id > 4)):
            s.delete(e)
        head = s.get(AuditHead, 1)
        assert head is not None
        head.last_id, head.last_hash = 4, s.get(AuditEntry, 4).hash  # type: ignore[union-attr]
    gone = audit.verify(hub)
    assert not gone.ok and gone.first_bad == 6 and "entries were removed" in gone.reason
