"""Use beyond a grant that the platform can see (Lichuan 31(4); Hengyang 26): a day's calls far beyond the
volume the application declared is raised once as a rectification item, and counted in the statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sharehub.notices import list_notices
from sharehub.reporting.overuse import OVERUSE_FACTOR, detect_overuse
from sharehub.reporting.stats import department_stats
from sharehub.workdays import CHINA
from tests.support.served import auth, source_row


def test_calls_far_beyond_the_declared_volume_are_a_rectification_item(served) -> None:
    hub, client, keys = served
    until = (datetime.now(UTC) + timedelta(days=90)).isoformat()
    body = {
        "resource_id": "gongan.population",
        "fields": ["name"],
        "modes": ["verification"],
        "purpose": "低保申请人身份核验",
        "valid_until": until,
        "expected_calls_per_day": 2,
    }
    made = client.post("/applications", json=body, headers=auth(keys["mzj"]))
    assert made.status_code == 201 and made.json()["expected_calls_per_day"] == 2
    undeclared = {**body, "expected_calls_per_day": None}
    assert client.post("/applications", json=undeclared, headers=auth(keys["rsj"])).status_code == 201
    person = source_row(hub, "gongan_front:population_register", "length(name) = 3")
    claim = {"key": {"id_number": person["id_number"]}, "claims": {"name": person["name"]}}
    today = datetime.now(CHINA).date()

    for key in ("mzj", "rsj"):
        for _ in range(OVERUSE_FACTOR * 2):  # exactly at the limit: not raised
            assert client.post("/verify/gongan.population", json=claim, headers=auth(keys[key])).status_code == 200
    assert detect_overuse(hub, today) == []
    client.post("/verify/gongan.population", json=claim, headers=auth(keys["mzj"]))
    client.post("/verify/gongan.population", json=claim, headers=auth(keys["rsj"]))

    (raised,) = detect_overuse(hub, today)
    (notice,) = [n for n in list_notices(hub, department="mzj") if n.kind == "overuse"]
    assert notice.id == raised and "申报每日约 2 次调用" in notice.body and "实际调用 7 次" in notice.body
    assert hub.profile.cite("rectification") in notice.body and person["name"] not in notice.body
    assert detect_overuse(hub, today) == []  # once per grant-day
    assert not [n for n in list_notices(hub, department="rsj") if n.kind == "overuse"]  # declared nothing
    (mzj,) = department_stats(hub, "mzj")
    assert mzj["use_beyond_declared"] == 1 and "use_beyond_grant" in mzj["rectify"]
    assert client.get("/stats", headers=auth(keys["platform"])).json()[0].get("use_beyond_declared") is not None
