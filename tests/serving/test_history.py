"""What the hub served on a date: `as_of` answers each version's record, across several merges."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from sharehub.pipeline.run import run_resource
from tests.support.served import apply, auth, source_row


def test_as_of_reads_every_version_across_merges(served) -> None:
    hub, client, keys = served
    person = source_row(hub, "gongan_front:population_register", "length(name) = 3")
    key = {"id_number": person["id_number"]}
    assert apply(client, keys["rsj"], "gongan.population", ["name"], ["query"]).json()["status"] == "granted"
    seen = [(datetime.now(UTC), person["name"])]
    engine = sa.create_engine(hub.settings.connection_url("gongan_front"))
    for n, (surname, stamp) in enumerate((("欧阳", "2026-11-21 10:00:00"), ("司马", "2026-11-22 10:00:00")), start=1):
        with engine.begin() as c:
            c.execute(
                sa.text("UPDATE population_register SET name = :n, updated_at = :t WHERE id_number = :k"),
                {"n": surname + person["name"][-1], "t": stamp, "k": person["id_number"]},
            )
        assert run_resource(hub, "gongan.population").store_version == n  # a merge, written by delta-rs
        time.sleep(0.01)
        seen.append((datetime.now(UTC), surname + person["name"][-1]))
    engine.dispose()

    for version, (moment, name) in enumerate(seen):
        answered = client.get(
            "/query/gongan.population", params={**key, "as_of": moment.isoformat()}, headers=auth(keys["rsj"])
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["version"] == version
        assert answered.json()["record"]["name"] == name[0] + "*" * (len(name) - 2) + name[-1]
