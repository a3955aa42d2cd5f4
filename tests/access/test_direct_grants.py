"""A direct grant of an unconditional resource is made at once, within the profile's limit, and its providing
department is told who uses its data, for what and until when (Lichuan 21; Zhejiang 26: 即时)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sharehub.access.callers import Caller
from sharehub.access.consumers import add_consumer
from sharehub.access.grants import apply
from sharehub.notices import list_notices
from tests.support.served import apply as apply_over_http
from tests.support.served import auth


def test_the_provider_is_told_of_a_direct_grant(served) -> None:
    hub, client, keys = served
    made = apply_over_http(client, keys["mzj"], "gongan.population", ["name", "sex"], ["verification"])
    assert made.json()["status"] == "granted"
    (told,) = [n for n in list_notices(hub, department="gongan") if n.kind == "direct_grant"]
    (grant,) = client.get("/grants", headers=auth(keys["mzj"])).json()
    assert told.status == "resolved" and "mzj" in told.subject and "gongan.population" in told.subject
    assert "name, sex" in told.body and "社会保险待遇资格认证" in told.body  # the fields and the purpose
    assert f"/grants/{grant['id']}/revoke" in told.body
    assert hub.profile.deadlines["direct_grant"].basis in told.body and "2 个工作日内" in told.body
    # The applicant's department is not the one told: it holds the grant.
    assert not [n for n in list_notices(hub, department="mzj") if n.kind == "direct_grant"]


@pytest.mark.parametrize(("profile", "within"), [("zhejiang", "应于即时完成"), ("hengyang", "应于2 个工作日内完成")])
def test_the_direct_grant_limit_is_the_profiles(make_hub, profile: str, within: str) -> None:
    hub = make_hub(profile=profile)
    consumer, _ = add_consumer(hub, "民政 低保核对", "mzj", "consumer")
    caller = Caller(consumer.id, consumer.name, consumer.department, "consumer")
    until = datetime.now(UTC) + timedelta(days=30)
    assert apply(hub, caller, "gongan.population", ["name"], ["verification"], "低保核对", until).status == "granted"
    (told,) = [n for n in list_notices(hub, department="gongan") if n.kind == "direct_grant"]
    assert within in told.body and hub.profile.deadlines["direct_grant"].basis in told.body
