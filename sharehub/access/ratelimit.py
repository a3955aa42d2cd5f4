"""The verification rate limit, shared by every API worker and replica through the metadata database.

Each consumer has one token bucket in `rate_buckets`: `per_minute` tokens, refilled continuously. A
worker takes tokens from it in small leases (a fiftieth of a minute's worth, at least one) under the
row's lock, and spends them locally, so the database sees one short write per lease rather than per
call. Tokens are never taken twice, so the consumer never gets more than the limit across all workers;
a lease a worker holds but does not use is lost to the others, at most a lease per worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

from sharehub.metadata import dbapi

LEASE_SHARE = 50  # a lease is per_minute / LEASE_SHARE tokens


class SharedRateLimit:
    """Token buckets per key in a metadata database, leased to this process in small amounts."""

    def __init__(self, kind: str = "verify") -> None:
        self.kind = kind
        self._on_hand: dict[tuple[str, Hashable, int], int] = {}
        self._lock = threading.Lock()

    def allow(self, url: str, key: Hashable, per_minute: int) -> bool:
        """Take one token for `key` if the shared bucket in the metadata database at `url` (or this
        process's lease of it) has one."""
        held = (url, key, per_minute)
        with self._lock:
            if self._on_hand.get(held, 0) >= 1:
                self._on_hand[held] -= 1
                return True
        got = self._lease(url, f"{self.kind}:{key}", per_minute, max(1, per_minute // LEASE_SHARE))
        if got < 1:
            return False
        with self._lock:
            self._on_hand[held] = self._on_hand.get(held, 0) + got - 1
        return True

    def _lease(self, url: str, name: str, per_minute: int, wanted: int) -> int:
        """Take up to `wanted` whole tokens from the bucket; how many were taken (0: it is empty)."""
        db = dbapi.raw(url)
        now = time.time()
        with db.transaction() as cur:
            cur.execute(
                db.sql("INSERT INTO rate_buckets (key, tokens, updated) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING"),
                (name, float(per_minute), now),
            )
            cur.execute(
                db.sql("SELECT tokens, updated FROM rate_buckets WHERE key = ?" + ("" if db.sqlite else " FOR UPDATE")),
                (name,),
            )
            tokens, updated = cur.fetchone()
            available = min(float(per_minute), float(tokens) + max(0.0, now - float(updated)) * per_minute / 60.0)
            taken = min(wanted, int(available))
            if taken >= 1:
                cur.execute(
                    db.sql("UPDATE rate_buckets SET tokens = ?, updated = ? WHERE key = ?"),
                    (available - taken, now, name),
                )
        return taken
