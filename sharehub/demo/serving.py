"""The demo's serving tour: consumers, applications and the three serving modes, over real HTTP.

It starts the API (uvicorn, on a free local port, in a thread) against the stores the demo just built,
registers a platform office, two provider departments and one consumer application, and then, as
those callers: applies for an unconditional resource (granted at once) and a conditional one (review,
decision, notification), verifies claims, queries a masked record, is refused outside its grant, makes
a bulk extract and downloads it; then, as the open-data portal, files a request for data opened on
application, which the tax bureau approves; and finally walks the audit chain. Every step is an HTTP
call that a department's system could make.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pyarrow.parquet as pq
import uvicorn

from sharehub.access.consumers import add_consumer
from sharehub.access.sessions import set_password
from sharehub.anchors import checkpoint
from sharehub.audit import verify as verify_chain
from sharehub.hub import Hub
from sharehub.serving.masking import mask_field
from sharehub.workdays import china_time, due_text
from warehouse.delta import open_table


@dataclass
class Tour:
    """What the tour did: one (step, outcome) per call, and the consumer's key to try the API with."""

    steps: list[tuple[str, str]] = field(default_factory=list)
    consumer_key: str = ""
    audit_entries: int = 0
    audit_intact: bool = False
    sign_ins: list[tuple[str, str, str]] = field(default_factory=list)  # (who, username, password) for the console


class _Api:
    """The API in a thread, and a small JSON client for it."""

    def __init__(self) -> None:
        from api.app import create_app

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="sharehub-demo-api", daemon=True)

    def __enter__(self) -> _Api:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the demo API did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def call(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def fetch(self, url: str) -> bytes:
        # The link names the hub's public address; the demo's API listens on its own port.
        parts = urlsplit(url)
        with urllib.request.urlopen(f"{self.base}{parts.path}?{parts.query}", timeout=60) as response:
            data: bytes = response.read()
            return data


def _china_clock(moment: object, form: str = "%H:%M") -> str:
    """An API moment (ISO 8601) as a Beijing wall-clock time, e.g. `23:25`."""
    return china_time(datetime.fromisoformat(str(moment)), form)


def _due(moment: object) -> str:
    """An API deadline (ISO 8601) as notices write it, e.g. `2026-11-27 24:00`."""
    return due_text(datetime.fromisoformat(str(moment))) if moment else ""


def _enrolment(hub: Hub) -> dict[str, Any]:
    """One enrolment from the social insurance store, to object to."""
    res = hub.catalogue.resource("rsj.insurance_enrolment")
    table = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
    if table is None:
        raise RuntimeError("the social insurance store is empty: the demo's pipelines did not run")
    return table.to_pyarrow_dataset().head(1, columns=["id_number", "insurance_type"]).to_pylist()[0]


def _person(hub: Hub) -> dict[str, Any]:
    """One resident from the population store, to make claims about."""
    res = hub.catalogue.resource("gongan.population")
    table = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
    if table is None:
        raise RuntimeError("the population store is empty: the demo's pipelines did not run")
    rows = table.to_pyarrow_dataset().head(50, columns=["id_number", "name", "sex", "birth_date", "phone"])
    return next(r for r in rows.to_pylist() if r["phone"] and r["name"])


def tour(hub: Hub) -> Tour:
    """Run the serving tour against the demo's stores; every step is recorded with its outcome."""
    done = Tour()
    callers = {
        "platform": add_consumer(hub, "平台办 运维", "platform", "platform"),
        "rsj": add_consumer(hub, "人社局 数据管理", "rsj", "provider"),
        "swj": add_consumer(hub, "税务局 数据管理", "swj", "provider"),
        "mzj": add_consumer(hub, "民政局 低保核对系统", "mzj", "consumer"),
    }
    platform, rsj, swj, mzj = (callers[who][1] for who in ("platform", "rsj", "swj", "mzj"))
    done.consumer_key = mzj
    for who, (consumer, _key) in callers.items():  # the web console's sign-ins, one per role (shown this once)
        password = secrets.token_urlsafe(9)
        set_password(hub, consumer.id, f"demo.{who}", password)
        done.sign_ins.append((consumer.name, f"demo.{who}", password))
    until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    person = _person(hub)
    id_field = hub.catalogue.resource("gongan.population").field("id_number")
    shown_id = mask_field(person["id_number"], id_field)

    def step(label: str, outcome: str) -> None:
        done.steps.append((label, outcome))

    with _Api() as api:
        code, app = api.call(
            "POST",
            "/applications",
            mzj,
            {
                "resource_id": "gongan.population",
                "fields": ["name", "sex", "birth_date", "phone"],
                "modes": ["verification", "query"],
                "purpose": "最低生活保障申请人身份核验",
                "valid_until": until,
            },
        )
        step("民政局 applies for gongan.population (无条件共享)", f"{code} {app['status']}, grant at once")

        claims = {"name": person["name"], "sex": person["sex"], "birth_date": str(person["birth_date"])}
        code, answer = api.call(
            "POST", "/verify/gongan.population", mzj, {"key": {"id_number": person["id_number"]}, "claims": claims}
        )
        step(
            f"verify {shown_id}: name, sex, birth date as registered",
            f"{code} {json.dumps(answer, ensure_ascii=False)}",
        )
        wrong = {**claims, "birth_date": "1901-01-01"}
        code, answer = api.call(
            "POST", "/verify/gongan.population", mzj, {"key": {"id_number": person["id_number"]}, "claims": wrong}
        )
        step(f"verify {shown_id}: a wrong birth date", f"{code} {json.dumps(answer, ensure_ascii=False)}")

        query = urlencode({"id_number": person["id_number"]})
        code, record = api.call("GET", f"/query/gongan.population?{query}", mzj)
        shown = record.get("record", record) if isinstance(record, dict) else record
        step(f"query {shown_id} (granted fields, masked)", f"{code} {json.dumps(shown, ensure_ascii=False)}")
        code, refused = api.call("GET", f"/query/wjw.health_record?{query}", mzj)
        step("query wjw.health_record (不予共享, no grant)", f"{code} {refused['detail']}")
        code, app = api.call(
            "POST",
            "/applications",
            mzj,
            {
                "resource_id": "wjw.health_record",
                "fields": ["id_number", "last_visit"],
                "modes": ["query"],
                "purpose": "低保申请人因病支出核实",
                "valid_until": until,
            },
        )
        step("民政局 applies for wjw.health_record anyway", f"{code} {app['status']}: {app.get('decision_reason')}")
        why = {"reason": "因病致贫的低保认定须核实病情，请协商提供必要字段"}
        code, app = api.call("POST", f"/applications/{app['id']}/contest", mzj, why)
        due = _due(app["contest"]["deadline"]) if code == 200 else app.get("detail")
        step("民政局 contests the refusal (意见分歧)", f"{code} {app.get('status')}, coordination due {due}")
        settled = {"outcome": "referred", "reason": "不予共享有法定依据，协商未能一致", "referred_to": "市政府办公室"}
        code, app = api.call("POST", f"/applications/{app['id']}/contest/outcome", platform, settled)
        step("平台办 coordinates; no agreement, so it is referred", f"{code} {app.get('status')} to 市政府办公室")

        code, app = api.call(
            "POST",
            "/applications",
            mzj,
            {
                "resource_id": "rsj.insurance_enrolment",
                "fields": ["id_number", "insurance_type", "status"],
                "modes": ["query", "bulk"],
                "purpose": "低保家庭成员参保情况核对",
                "valid_until": until,
            },
        )
        deadline = _due(app.get("step_deadline"))
        step(
            "民政局 applies for rsj.insurance_enrolment (有条件共享)", f"{code} {app['status']}, review due {deadline}"
        )
        code, app = api.call("POST", f"/applications/{app['id']}/review", platform, {"approve": True})
        deadline = _due(app.get("step_deadline"))
        step("平台办 reviews it", f"{code} {app['status']}, provider's decision due {deadline}")
        code, app = api.call(
            "POST", f"/applications/{app['id']}/decision", rsj, {"approve": True, "reason": "用途符合社会救助核查"}
        )
        notified = _china_clock(app["notified_at"], "%Y-%m-%d %H:%M")
        step("人社局 decides; the applicant is told", f"{code} {app['status']}, notified {notified} Beijing time")

        enrolment = _enrolment(hub)
        key = {"id_number": enrolment["id_number"], "insurance_type": enrolment["insurance_type"]}
        code, objected = api.call(
            "POST",
            "/objections",
            mzj,
            {
                "resource_id": "rsj.insurance_enrolment",
                "key": key,
                "fields": ["status"],
                "reason": "申请人称已于上月停保，参保状态应为暂停",
            },
        )
        step(
            "民政局 objects to an enrolment's status (疑义); left for 人社局 in the console",
            f"{code} #{objected.get('id')} {objected.get('status')}, answer due {_due(objected.get('deadline'))}",
        )

        code, extract = api.call("POST", "/bulk/rsj.insurance_enrolment", mzj, {})
        if code == 201:
            data = api.fetch(extract["url"])
            rows = pq.read_table(io.BytesIO(data)).num_rows
            same = hashlib.sha256(data).hexdigest() == extract["sha256"]
            step(
                "bulk extract of rsj.insurance_enrolment, then download",
                f"{code} {extract['rows']:,} rows ({', '.join(extract['columns'])}); got {rows:,}, "
                f"sha256 {'matches' if same else 'DIFFERS'}; "
                f"link expires {_china_clock(extract['expires_at'])} Beijing time",
            )
        else:
            step("bulk extract of rsj.insurance_enrolment", f"{code} {extract.get('detail')}")

        code, app = api.call(
            "POST",
            "/applications",
            mzj,
            {
                "resource_id": "swj.tax_registration",
                "fields": ["uscc", "name", "taxpayer_status"],
                "modes": ["query"],
                "purpose": "低保申请人名下企业经营状况核对",
                "valid_until": until,
            },
        )
        step(
            "民政局 applies for swj.tax_registration; left for the console",
            f"{code} {app['status']}: review due {_due(app.get('step_deadline'))}",
        )

        ask = {"resource_id": "swj.tax_registration", "applicant": "利川市信用研究院", "purpose": "企业信用状况研究"}
        code, asked = api.call("POST", "/open/requests", platform, {**ask, "fields": ["uscc", "name", "tax_grade"]})
        step("the open-data portal asks 税务局 to open tax_grade (L2)", f"{code} {asked.get('detail')}")
        public = ["uscc", "name", "taxpayer_status"]
        code, asked = api.call("POST", "/open/requests", platform, {**ask, "fields": public})
        step(
            "the portal files a request for swj.tax_registration (依申请开放)",
            f"{code} #{asked['id']} {asked['status']}, answer due {_due(asked['deadline'])}",
        )
        code, asked = api.call("POST", f"/open/requests/{asked['id']}/decision", swj, {"approve": True})
        step(
            "税务局 approves; its dataset is written and sealed",
            f"{code} {asked['status']}: {asked['rows']:,} rows at {asked['dataset']}"
            if code == 200
            else f"{code} {asked.get('detail')}",
        )

    checkpoint(hub)  # as the hourly DAG does: the head, sealed into the object store
    chain = verify_chain(hub)
    done.audit_entries, done.audit_intact = chain.entries, chain.ok
    return done
