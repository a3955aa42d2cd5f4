"""Requests that cross levels go up through the platform of their own level (MISSION 14; Zhejiang 5 and 14;
Zhongshan 20).

A city or county platform is a consumer of its upper-level (province or city) platform, which has
issued its platform office an API key (`SHAREHUB_UPSTREAM_URL`, `SHAREHUB_UPSTREAM_KEY`). A department
here never calls the upper level itself:

1. A consumer files a request for an upper-level resource (`POST /upstream/requests`), checked at once
   against the upper level's catalogue: the resource, its fields, its serving modes, and a not-shared
   resource refused with its legal basis. This platform office is asked, with a notice and the
   profile's `application_review` working days, to forward or decline it (Zhongshan 20: the platform of
   the same level collects the departments' needs and applies upward).
2. Forwarded, it becomes the platform office's own application upstairs, its purpose naming the
   department and the application that asked. The upper level's own clocks run from there. `sync`
   (CLI, API, and the `sharehub.upstream_sync` DAG) follows each forwarded request to its outcome:
   granted, refused with reasons, or a grant that was revoked or ran out; the department is told of
   each.
3. Under a granted request, the consumer calls `POST /upstream/verify/{id}`, `GET /upstream/query/{id}`
   and `POST /upstream/bulk/{id}` here; this platform checks that request (its fields and modes, its
   validity) and relays the call with its own key, naming the upper-level grant behind the request
   (`X-Sharehub-Grant`), so that upstairs only that grant counts: its fields, its modes, and its
   revocation at once, though the platform office holds grants for other departments too. The answer
   is cut back here as well, in case the upper level answered more: a query returns only the request's
   fields, a verification answers `found` only to a consumer granted query, and an extract with any
   other column is refused. An extract's short-lived download link is the upper level's; its issuance
   and expiry are audited here and there.

4. A requester that disagrees with the upper level's refusal contests it (`POST /upstream/requests/{id}/
   contest`; Lichuan 25): the platform office's application upstairs is contested there at once, with
   the department's name and reasons (the office had endorsed the request by forwarding it, and is
   told). `sync` brings the outcome down: granted (on the fields and modes the upper level's provider
   agreed, which the request here narrows to), the refusal upheld, or referred to the government
   department that coordinates.

Every step and every relayed call is written to this platform's audit chain; the upper level audits
the same calls under the platform office's key. The key is never logged.
"""

from __future__ import annotations

import atexit
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import PLATFORM, Caller
from sharehub.errors import Forbidden, NotFound, WrongState
from sharehub.errors import Refused as GrantError
from sharehub.hub import Hub
from sharehub.metadata.models import Consumer, Notice, UpstreamObjection, UpstreamRequest, as_utc, utcnow
from sharehub.notices import ask, resolve_id, tell
from sharehub.paging import Page, newest_first
from sharehub.workdays import due_text

log = logging.getLogger(__name__)
UpstreamState = Literal[
    "collected", "declined", "forwarded", "granted", "refused", "contested", "referred", "withdrawn", "ended"
]
UPSTREAM_STATES: tuple[str, ...] = get_args(UpstreamState)
RELAYED_MODES = ("verification", "query", "bulk")
RULE = "application_review"
CATALOGUE_SECONDS = 60.0  # how long the upper level's catalogue is remembered between calls


class NotConfigured(NotFound):
    """This platform has no upper level configured."""


class Unreachable(Exception):
    """The upper-level platform did not answer."""


class Refused(Exception):
    """The upper-level platform answered with an error: its status and its reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Reach:
    """What one consumer may do with one upper-level resource in one mode: its newest granted request in
    that mode (the fields of that one, whose grant upstairs the relayed call names), and whether any of
    its live requests grants query (the right to tell a missing record from a mismatch)."""

    request_id: int
    grant_id: int  # the upper level's grant behind the request, named on every relayed call
    fields: frozenset[str]
    modes: frozenset[str]
    purpose: str


@functools.cache
def _client() -> httpx.Client:
    """One HTTP client per process, so relayed calls reuse their connections (it is safe across threads);
    closed when the process exits, with the connections it keeps."""
    client = httpx.Client()
    atexit.register(client.close)
    return client


class Upstream:
    """The upper-level platform's API, called with this platform office's key."""

    def __init__(self, hub: Hub) -> None:
        settings = hub.settings
        if not settings.upstream_url:
            raise NotConfigured(
                "this platform has no upper-level platform configured (SHAREHUB_UPSTREAM_URL, SHAREHUB_UPSTREAM_KEY)"
            )
        self.url = settings.upstream_url.rstrip("/")
        self.name = settings.upstream_name
        self._headers = {"Authorization": f"Bearer {settings.upstream_key.get_secret_value()}"}
        self._timeout = settings.upstream_timeout_seconds

    def call(
        self, method: str, path: str, *, json: Any = None, params: Any = None, grant: int | None = None
    ) -> httpx.Response:
        """One call (a serving call names the `grant` it is made under); Unreachable when the upper level
        does not answer (the address named, never the key)."""
        headers = self._headers if grant is None else {**self._headers, "X-Sharehub-Grant": str(grant)}
        try:
            return _client().request(
                method, self.url + path, json=json, params=params, headers=headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise Unreachable(f"{self.name} ({self.url}) did not answer {method} {path}: {exc}") from None

    def json(self, method: str, path: str, *, json: Any = None, params: Any = None, grant: int | None = None) -> Any:
        """The JSON of a successful call; Refused with the upper level's own reason otherwise."""
        return self.checked(self.call(method, path, json=json, params=params, grant=grant)).json()

    def checked(self, response: httpx.Response) -> httpx.Response:
        """The response of a successful call; Refused with the upper level's own reason otherwise."""
        if response.status_code >= 400:
            raise Refused(response.status_code, f"{self.name}: {_detail(response)}")
        return response


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(detail, list):  # a validation error: say where
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in detail)
    return str(detail or f"HTTP {response.status_code}")


_catalogues: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}


def catalogue(hub: Hub, *, fresh: bool = False) -> dict[str, dict[str, Any]]:
    """The upper level's catalogue, by resource id (remembered for a minute)."""
    up = Upstream(hub)
    found = _catalogues.get(up.url)
    if found is None or fresh or time.monotonic() - found[0] > CATALOGUE_SECONDS:
        entries = up.json("GET", "/catalogue")
        found = _catalogues[up.url] = (time.monotonic(), {e["id"]: e for e in entries})
    return found[1]


def _resource(hub: Hub, resource_id: str) -> dict[str, Any]:
    found = catalogue(hub).get(resource_id) or catalogue(hub, fresh=True).get(resource_id)
    if found is None:
        raise GrantError(f"{Upstream(hub).name} has no resource {resource_id!r} in its catalogue")
    return found


def _asked(request_id: int) -> str:
    return f"upstream request {request_id}"


def file_request(
    hub: Hub,
    caller: Caller,
    resource_id: str,
    fields: list[str],
    modes: list[str],
    purpose: str,
    valid_until: datetime,
) -> UpstreamRequest:
    """A consumer's request for an upper-level resource, checked against that catalogue; the platform
    office here is asked to forward or decline it."""
    if caller.role != "consumer":
        raise Forbidden("requests for upper-level data are made by consumers; this platform office forwards them")
    res = _resource(hub, resource_id)
    if res["share_type"] == "not_shared":
        raise GrantError(f"{resource_id} is not shared at {Upstream(hub).name} (legal basis: {res['legal_basis']})")
    names = [f["name"] for f in res["fields"]]
    for name in fields:
        if name not in names:
            raise GrantError(f"{resource_id}: {name} is not a field of this upper-level resource")
    if not fields:
        raise GrantError(f"{resource_id}: name the fields requested")
    for mode in modes:
        if mode not in res["serving_modes"]:
            raise GrantError(f"{resource_id} is not served by {mode} at the upper level")
        if mode not in RELAYED_MODES:
            raise GrantError(f"{resource_id}: {mode} is not a serving mode (verification, query, bulk)")
    if not modes:
        raise GrantError(f"{resource_id}: name the serving modes (verification, query, bulk)")
    if len(purpose.strip()) < 4:
        raise GrantError("state the purpose of the request")
    now = utcnow()
    if as_utc(valid_until) <= now:
        raise GrantError("valid_until must be in the future")
    rule = hub.profile.deadlines[RULE]
    deadline = hub.calendar.deadline(now, rule.working_days)
    chosen = [n for n in names if n in set(fields)]
    with hub.db() as s:
        request = UpstreamRequest(
            consumer_id=caller.id,
            department=caller.department,
            resource_id=resource_id,
            provider=str(res["provider"]),
            fields=chosen,
            modes=[m for m in RELAYED_MODES if m in set(modes)],
            purpose=purpose.strip(),
            valid_until=as_utc(valid_until),
            status="collected",
            created_at=now,
            deadline=deadline,
        )
        s.add(request)
        s.flush()
        due = due_text(deadline)
        dept = hub.catalogue.departments[caller.department]
        notice = ask(
            s,
            kind="upstream_request",
            department=PLATFORM,
            resource_id=resource_id,
            deadline=deadline,
            subject=f"[sharehub] 跨层级共享申请 #{request.id}：{dept.name} 申请上级资源 {resource_id}，{due} 前处理",
            body=(
                f"平台管理部门：\n\n{dept.name}（{caller.name}）申请使用{Upstream(hub).name}的资源 {resource_id}"
                f"（提供部门 {request.provider}），字段 {', '.join(chosen)}，方式 {', '.join(request.modes)}，"
                f"用途：{request.purpose}，使用至 {due_text(request.valid_until)}。\n"
                f"请在 {due}（北京时间）前，即 {rule.working_days} 个工作日内，统一报上级平台申请或说明理由不予报送"
                "（依据：中山市办法第二十条，跨层级申请由同级主管部门统一向上级申请）。\n"
                f"  POST /upstream/requests/{request.id}/forward | /decline\n"
                f"  sharehub upstream forward {request.id}  |  sharehub upstream decline {request.id} --reason 说明"
            ),
            keys=[_asked(request.id)],
            recipient=hub.settings.platform_email,
        )
        request.notice_id = notice.id
    audit.record(hub, "upstream_request", caller, resource_id, result="collected", detail=f"#{request.id}")
    log.info("upstream request %d on %s collected, due %s", request.id, resource_id, deadline.isoformat())
    return request


def _mine(s: Session, caller: Caller, request_id: int) -> UpstreamRequest:
    request = s.get(UpstreamRequest, request_id)
    if request is None or (caller.role == "consumer" and request.consumer_id != caller.id):
        raise NotFound(f"no upstream request {request_id}" + (" of yours" if caller.role == "consumer" else ""))
    if caller.role == "provider":
        raise NotFound(f"no upstream request {request_id}: they are the platform office's and the requester's")
    return request


def _settle(s: Session, request: UpstreamRequest, now: datetime) -> None:
    """Resolve the platform office's notice: the request is forwarded, declined or withdrawn."""
    resolve_id(s, request.notice_id, now)


def forward(hub: Hub, caller: Caller, request_id: int) -> UpstreamRequest:
    """The platform office applies upward for the request, as its own application; the requester is told
    where it went. A refusal by the upper level to take the application leaves the request collected."""
    if caller.role != "platform":
        raise Forbidden("only the platform office forwards requests to the upper level")
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        if request.status != "collected":
            raise WrongState(f"upstream request {request_id} is already {request.status}")
        consumer = s.get(Consumer, request.consumer_id)
        dept = hub.catalogue.departments[request.department]
        body = {
            "resource_id": request.resource_id,
            "fields": list(request.fields),
            "modes": list(request.modes),
            "purpose": f"{dept.name}（{consumer.name if consumer else request.department}）：{request.purpose}"
            + _marker(request_id),
            "valid_until": as_utc(request.valid_until).isoformat(),
        }
    up = Upstream(hub)
    # A forward that reached the upper level but was not recorded here (this database failed in between)
    # is found again by its marker, not made twice.
    made = _find(up, "/applications", lambda a: str(a["purpose"]).endswith(_marker(request_id)))
    if made is None:
        made = up.json("POST", "/applications", json=body)
    now = utcnow()
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        request.forwarded_by, request.forwarded_at = caller.name, now
        request.upstream_application_id = int(made["id"])
        _follow(hub, up, request, made, now)
        if request.status == "collected":  # the upper level is still deciding
            request.status = "forwarded"
        _settle(s, request, now)
        sent = f"已报送{up.name}（上级申请 #{request.upstream_application_id}，{request.upstream_status}）"
        _tell_requester(hub, s, request, sent)
    audit.record(
        hub,
        "upstream_forward",
        caller,
        request.resource_id,
        result=request.status,
        detail=f"#{request_id} as upstream application {request.upstream_application_id}",
    )
    return request


def decline(hub: Hub, caller: Caller, request_id: int, reason: str) -> UpstreamRequest:
    """The platform office does not forward the request, and says why; the requester is told."""
    if caller.role != "platform":
        raise Forbidden("only the platform office declines requests to the upper level")
    if len(reason.strip()) < 4:
        raise GrantError("a decision not to forward states its reasons")
    now = utcnow()
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        if request.status != "collected":
            raise WrongState(f"upstream request {request_id} is already {request.status}")
        request.status, request.decided_at, request.reason = "declined", now, reason.strip()
        _settle(s, request, now)
        _tell_requester(hub, s, request, f"平台管理部门不予报送上级，理由：{request.reason}")
    audit.record(hub, "upstream_decline", caller, request.resource_id, result="declined", detail=f"#{request_id}")
    return request


def withdraw(hub: Hub, caller: Caller, request_id: int, reason: str) -> UpstreamRequest:
    """The requester takes its request back: at the upper level too, the application (or its contest) is
    withdrawn, or the grant given up (its purpose served)."""
    if caller.role != "consumer":
        raise Forbidden("only the consumer that made a request withdraws it")
    if len(reason.strip()) < 4:
        raise GrantError("a withdrawal states its reason")
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        if request.status not in ("collected", "forwarded", "granted", "contested"):
            raise WrongState(f"upstream request {request_id} is already {request.status}")
        application_id = request.upstream_application_id
    if application_id is not None:  # where it stands upstairs now, whatever the last sync saw
        up = Upstream(hub)
        said = {"reason": f"下级部门撤回：{reason.strip()}"}
        application = up.json("GET", f"/applications/{application_id}")
        if application["status"] in ("review", "provider", "contested"):  # a contest: the refusal then stands
            up.json("POST", f"/applications/{application_id}/withdraw", json=said)
        elif application["status"] == "granted":
            grant_id = _grant_of(up, application_id)
            if grant_id is not None:
                try:
                    up.json("POST", f"/grants/{grant_id}/revoke", json=said)
                except Refused as exc:
                    if exc.status != 409:  # 409: revoked already, which is what the requester wants
                        raise
    now = utcnow()
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        request.status, request.decided_at, request.reason = "withdrawn", now, f"撤回：{reason.strip()}"
        _settle(s, request, now)
    audit.record(hub, "upstream_withdraw", caller, request.resource_id, result="withdrawn", detail=f"#{request_id}")
    return request


def contest(hub: Hub, caller: Caller, request_id: int, reason: str) -> UpstreamRequest:
    """The requester disagrees with the upper level's refusal: the platform office's application upstairs
    is contested there, naming the department and its reasons, and the office is told. A contest that
    reached the upper level but was not recorded here is found there again (409), not made twice."""
    if caller.role != "consumer":
        raise Forbidden("only the consumer that made a request contests its refusal")
    if len(reason.strip()) < 4:
        raise GrantError("a contest states why the refusal is wrong")
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        if request.status != "refused" or request.upstream_application_id is None:
            raise WrongState(
                f"upstream request {request_id} is {request.status}: only a refusal by the upper level is contested"
            )
        application_id = request.upstream_application_id
        said = {"reason": f"{hub.catalogue.departments[request.department].name}：{reason.strip()}"}
    up = Upstream(hub)
    try:
        application = up.json("POST", f"/applications/{application_id}/contest", json=said)
    except Refused as exc:
        application = up.json("GET", f"/applications/{application_id}") if exc.status == 409 else {}
        if not application.get("contest"):
            raise
    now = utcnow()
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        request.status, request.upstream_status, request.synced_at = "contested", str(application["status"]), now
        tell(
            s,
            kind="upstream_request",
            department=PLATFORM,
            resource_id=request.resource_id,
            subject=(
                f"[sharehub] 跨层级共享申请 #{request.id}（{request.resource_id}）："
                f"{request.department} 对上级不予同意提出异议"
            ),
            body=(
                f"平台管理部门：\n\n{request.department} 对{up.name}就上级申请 #{application_id} 的不予同意有异议，"
                f"已以本平台名义向{up.name}提出，理由：{reason.strip()}。协商结果由同步带回。"
            ),
            recipient=hub.settings.platform_email,
        )
    audit.record(hub, "upstream_contest", caller, request.resource_id, result="contested", detail=f"#{request_id}")
    return request


def _follow(hub: Hub, up: Upstream, request: UpstreamRequest, application: dict[str, Any], now: datetime) -> None:
    """Take in where the upper-level application stands (and, once granted, its grant)."""
    request.upstream_status = str(application["status"])
    deadline = application.get("step_deadline")
    request.upstream_step_deadline = datetime.fromisoformat(deadline) if deadline else None
    request.synced_at = now
    if application["status"] == "granted":
        if request.upstream_grant_id is None:
            request.upstream_grant_id = _grant_of(up, int(application["id"]))
        if request.status in ("collected", "forwarded", "contested"):
            request.status, request.decided_at = "granted", now
    elif application["status"] in ("refused", "withdrawn") and request.status in ("collected", "forwarded"):
        request.status, request.decided_at = "refused", now
        request.reason = application.get("decision_reason") or application.get("review_reason") or "上级未予同意"
    elif request.status == "contested" and application["status"] in ("refused", "referred"):
        settled = application.get("contest") or {}
        request.status, request.decided_at = str(application["status"]), now
        request.reason = str(settled.get("outcome_reason") or "上级维持不予同意")
        if application["status"] == "referred":
            request.reason = f"已提请{settled.get('referred_to')}协调：{request.reason}"


def _marker(request_id: int) -> str:
    """What ends the purpose of the application made upstairs for a request: its number here."""
    return f"（下级平台申请 #{request_id}）"


def _find(up: Upstream, path: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The newest entry of one of the upper level's lists (this platform office's own applications or
    grants) that matches, following its pages."""
    params: dict[str, Any] = {"limit": 200}
    for _ in range(50):
        response = up.checked(up.call("GET", path, params=params))
        found = next((entry for entry in response.json() if match(entry)), None)
        if found is not None:
            return dict(found)
        following = response.headers.get("link", "")
        if "before=" not in following:
            return None
        params["before"] = following.split("before=", 1)[1].split(">", 1)[0].split("&", 1)[0]
    return None


def _grant_of(up: Upstream, application_id: int) -> int | None:
    """The upper-level grant made for an application (newest first: a fresh one is on the first page)."""
    grant = _find(up, "/grants", lambda g: g["application_id"] == application_id)
    return None if grant is None else int(grant["id"])


@dataclass
class Synced:
    """What a sync found changed upstairs: requests decided or ended, and objections answered."""

    requests: list[UpstreamRequest]
    objections: list[UpstreamObjection]


def sync(hub: Hub, caller: Caller) -> Synced:
    """Follow every forwarded, granted or contested request, and every open objection, upstairs; what changed (each
    department told). One that the upper level refuses to show (a 4xx) stays as it was and is logged, by
    id; an upper level that does not answer stops the sync (Unreachable), to be run again."""
    if caller.role != "platform":
        raise Forbidden("only the platform office follows its applications at the upper level")
    up = Upstream(hub)
    with hub.db() as s:
        open_ids = list(
            s.scalars(
                select(UpstreamRequest.id).where(UpstreamRequest.status.in_(("forwarded", "granted", "contested")))
            )
        )
    changed = []
    for request_id in open_ids:
        with hub.db() as s:
            request = s.get(UpstreamRequest, request_id)
            if request is None or request.upstream_application_id is None:
                continue
            before = request.status
            try:
                application = up.json("GET", f"/applications/{request.upstream_application_id}")
                now = utcnow()
                _follow(hub, up, request, application, now)
                grant = up.json("GET", f"/grants/{request.upstream_grant_id}") if request.upstream_grant_id else {}
            except Refused as exc:
                log.warning("upstream request %d: the upper level refused to show it (HTTP %d)", request_id, exc.status)
                continue
            if request.status == "granted" and grant:
                # What the upper level granted is what is relayed: no more than it agreed (after a contest,
                # perhaps fewer fields or modes than were asked for).
                request.fields = [f for f in request.fields if f in grant["fields"]]
                request.modes = [m for m in request.modes if m in grant["modes"]]
                if grant.get("revoked_at") or datetime.fromisoformat(grant["valid_until"]) <= now:
                    request.status, request.decided_at = "ended", now
                    request.reason = "上级已撤销授权" if grant.get("revoked_at") else "上级授权已到期"
            if request.status != before:
                changed.append(request)
                outcome = {
                    "granted": f"{up.name}已同意，可经本平台调用（/upstream/verify、query、bulk）",
                    "refused": f"{up.name}不予同意，理由：{request.reason}",
                    "referred": f"{up.name}协商未能一致，{request.reason}",
                    "ended": f"{up.name}的授权已终止：{request.reason}",
                }[request.status]
                _tell_requester(hub, s, request, outcome)
        if request is not None and request.status != before:
            audit.record(
                hub, "upstream_sync", caller, request.resource_id, result=request.status, detail=f"#{request_id}"
            )
    return Synced(changed, _sync_objections(hub, up, caller))


def _sync_objections(hub: Hub, up: Upstream, caller: Caller) -> list[UpstreamObjection]:
    """Bring down the upper-level providers' answers to the objections raised through this platform."""
    with hub.db() as s:
        waiting = list(s.scalars(select(UpstreamObjection.id).where(UpstreamObjection.status == "open")))
    answered = []
    for objection_id in waiting:
        with hub.db() as s:
            objection = s.get(UpstreamObjection, objection_id)
            if objection is None:
                continue
            try:
                there = up.json("GET", f"/objections/{objection.upstream_objection_id}")
            except Refused as exc:
                log.warning(
                    "upstream objection %d: the upper level refused to show it (HTTP %d)", objection_id, exc.status
                )
                continue
            objection.synced_at = utcnow()
            if there["status"] == "open":
                continue
            objection.status, objection.answer = str(there["status"]), there.get("answer")
            answered_at = there.get("answered_at")
            objection.answered_at = datetime.fromisoformat(answered_at) if answered_at else objection.synced_at
            answered.append(objection)
            dept = hub.catalogue.departments[objection.department]
            outcome = "已更正" if objection.status == "corrected" else "经核实无误"
            tell(
                s,
                kind="upstream_objection",
                department=objection.department,
                resource_id=objection.resource_id,
                subject=f"[sharehub] 上级数据疑义 #{objection.id}（{objection.resource_id}）：{outcome}",
                body=(
                    f"{dept.name}：\n\n您经本平台向{up.name}提出的数据疑义 #{objection.id}"
                    f"（{objection.resource_id}，字段 {', '.join(objection.fields)}）已答复：{outcome}。"
                    f"\n说明：{objection.answer or '-'}"
                ),
                recipient=dept.contact_email,
            )
        audit.record(
            hub,
            "upstream_sync",
            caller,
            objection.resource_id,
            record_key=objection.record_key,
            result=objection.status,
            detail=f"objection #{objection_id}",
        )
    return answered


def _tell_requester(hub: Hub, s: Session, request: UpstreamRequest, outcome: str) -> Notice:
    dept = hub.catalogue.departments[request.department]
    return tell(
        s,
        kind="upstream_request",
        department=request.department,
        resource_id=request.resource_id,
        subject=f"[sharehub] 跨层级共享申请 #{request.id}（{request.resource_id}）：{outcome[:40]}",
        body=f"{dept.name}：\n\n您对上级资源 {request.resource_id} 的申请 #{request.id}：{outcome}。",
        recipient=dept.contact_email,
    )


def list_requests(
    hub: Hub,
    caller: Caller,
    limit: int | None = None,
    before: int | None = None,
    *,
    status: str | None = None,
    only: int | None = None,
) -> Page[UpstreamRequest]:
    """Newest first: a consumer's own, or every one for the platform office (departments as providers
    have none: these are requests for the upper level's data)."""
    if caller.role == "provider":
        raise Forbidden("upstream requests are the platform office's and the requesting consumers' business")
    q = select(UpstreamRequest)
    if caller.role == "consumer":
        q = q.where(UpstreamRequest.consumer_id == caller.id)
    if status is not None:
        q = q.where(UpstreamRequest.status == status)
    with hub.db() as s:
        return newest_first(s, q, UpstreamRequest.id, limit, before, only)


def _requests_of(hub: Hub, caller: Caller, resource_id: str) -> tuple[list[UpstreamRequest], list[UpstreamRequest]]:
    """A consumer's requests for an upper-level resource, and those of them granted and still valid."""
    Upstream(hub)  # NotConfigured when there is no upper level
    now = utcnow()
    with hub.db() as s:
        mine = select(UpstreamRequest).where(
            UpstreamRequest.consumer_id == caller.id, UpstreamRequest.resource_id == resource_id
        )
        rows = list(s.scalars(mine.order_by(UpstreamRequest.id)))
    return rows, [r for r in rows if r.status == "granted" and as_utc(r.valid_until) > now]


def object_upstairs(
    hub: Hub, caller: Caller, resource_id: str, key: dict[str, str], fields: list[str], reason: str
) -> UpstreamObjection:
    """An objection (疑义) on an upper-level record the consumer uses under a granted request, raised
    upstairs by this platform office, naming the department; the upper level's provider answers it there
    within its own deadline, and sync brings the answer down to the department."""
    if caller.role != "consumer":
        raise Forbidden("objections are raised by the consumer that uses the data")
    _, live = _requests_of(hub, caller, resource_id)
    if not live:
        raise Forbidden(f"no upstream grant for {resource_id}: only data you use can be objected to")
    granted = {f for r in live for f in r.fields}
    outside = sorted(set(fields) - granted)
    if not fields or outside:
        raise GrantError(
            f"{resource_id}: name the granted fields you dispute" + (f"; not granted: {outside}" if outside else "")
        )
    if len(reason.strip()) < 4:
        raise GrantError("say what is wrong with the record")
    up = Upstream(hub)
    dept = hub.catalogue.departments[caller.department]
    body = {
        "resource_id": resource_id,
        "key": key,
        "fields": sorted(set(fields)),
        "reason": f"{dept.name}（{caller.name}）经本级平台提出：{reason.strip()}",
    }
    there = up.json("POST", "/objections", json=body)
    with hub.db() as s:
        objection = UpstreamObjection(
            request_id=live[-1].id,
            consumer_id=caller.id,
            department=caller.department,
            resource_id=resource_id,
            record_key=record_key(hub, resource_id, there.get("key") or key),
            fields=sorted(set(fields)),
            reason=reason.strip(),
            upstream_objection_id=int(there["id"]),
            status=str(there["status"]),
            deadline=datetime.fromisoformat(there["deadline"]),
            created_at=utcnow(),
        )
        s.add(objection)
    audit.record(
        hub,
        "upstream_objection",
        caller,
        resource_id,
        record_key=objection.record_key,
        result="open",
        detail=f"#{objection.id} as upstream objection {objection.upstream_objection_id}",
    )
    return objection


def list_objections(
    hub: Hub, caller: Caller, limit: int | None = None, before: int | None = None, *, only: int | None = None
) -> Page[UpstreamObjection]:
    """Objections raised upstairs, newest first: a consumer's own, or every one for the platform office."""
    if caller.role == "provider":
        raise Forbidden("objections on upper-level data are the platform office's and the requesting consumers'")
    q = select(UpstreamObjection)
    if caller.role == "consumer":
        q = q.where(UpstreamObjection.consumer_id == caller.id)
    with hub.db() as s:
        return newest_first(s, q, UpstreamObjection.id, limit, before, only)


def reach(hub: Hub, caller: Caller, resource_id: str, mode: str) -> Reach:
    """What this consumer's granted requests let it do with an upper-level resource in this mode, or
    Forbidden saying why not: the grant check of every relayed call."""
    if caller.role != "consumer":
        raise Forbidden("serving calls are made by consumers under a grant")
    rows, live = _requests_of(hub, caller, resource_id)
    usable = [(r, grant) for r in live if mode in r.modes and (grant := r.upstream_grant_id) is not None]
    if not usable:
        if any(mode in r.modes and r.status == "granted" for r in rows):
            raise Forbidden(f"your upstream grant for {resource_id} ({mode}) has expired")
        if any(mode in r.modes and r.status == "ended" for r in rows):
            raise Forbidden(f"your upstream grant for {resource_id} ({mode}) was ended at the upper level")
        raise Forbidden(f"no upstream grant for {resource_id} in mode {mode} (POST /upstream/requests)")
    chosen, grant_id = usable[-1]
    return Reach(
        chosen.id,
        grant_id,
        frozenset(chosen.fields),
        frozenset(m for r in live for m in r.modes),
        chosen.purpose,
    )


def relay_verify(hub: Hub, reach: Reach, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A verification passed up; the answer as this consumer may see it (`found` only with query)."""
    outside = sorted(set(body.get("claims", {})) - reach.fields)
    if outside:
        raise Forbidden(f"{resource_id}: field {outside[0]} is not in your upstream grant")
    answer: dict[str, Any] = Upstream(hub).json("POST", f"/verify/{resource_id}", json=body, grant=reach.grant_id)
    if "query" not in reach.modes:
        answer.pop("found", None)
    return answer


def relay_query(hub: Hub, reach: Reach, resource_id: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    """A query passed up; only the fields this consumer's requests cover come back."""
    answer: dict[str, Any] = Upstream(hub).json("GET", f"/query/{resource_id}", params=params, grant=reach.grant_id)
    answer["record"] = {k: v for k, v in answer.get("record", {}).items() if k in reach.fields}
    answer["under_objection"] = [f for f in answer.get("under_objection", []) if f in reach.fields]
    return answer


def relay_bulk(hub: Hub, reach: Reach, resource_id: str, incremental: bool) -> dict[str, Any]:
    """A bulk extract made upstairs under the request's own grant (its columns only, masked; incremental
    from that grant's last extract); its short-lived download link is the upper level's, issued to this
    consumer through this platform."""
    up = Upstream(hub)
    answer: dict[str, Any] = up.json(
        "POST", f"/bulk/{resource_id}", json={"incremental": incremental}, grant=reach.grant_id
    )
    if not set(answer.get("columns", [])) <= reach.fields:  # the grant upstairs is this request's: never wider
        raise Refused(502, f"{up.name}: the extract holds columns outside upstream request #{reach.request_id}")
    return answer


def record_key(hub: Hub, resource_id: str, key: dict[str, Any]) -> str:
    """The key asked for, as the audit chain records it: the resource's key fields joined by `|`."""
    names = _resource(hub, resource_id)["key"]
    return "|".join(str(key.get(n, "")) for n in names)
