"""The monthly statistics bulletin (Lichuan 26: 定期公布授权办理、数据调用和数据可用性等情况统计信息;
Zhejiang 35 and Hengyang 25: 评估并公布结果).

A bulletin covers one calendar month in China time and holds:
  - authorizations (授权办理): the applications made in the month, by share type and by where they
    stand now, and the application steps that ran past their deadline in the month, by department;
    and the open-data requests (依申请开放) filed in the month, by where they stand now, with those
    answered (or still unanswered) past their deadline, by department;
  - calls (数据调用): serving calls on each resource, by mode, answered or refused (audit chain);
  - availability (数据可用性): each resource's runs, deliveries, update periods due and on time, rows
    landed and passed, and its last delivery in the month;
  - scores: each provider department's score for the month (`sharehub.reporting.scores`).
`publish` freezes it as `bulletins/<YYYY-MM>.json` in the object store; the monthly DAG publishes the
month just ended, and `GET /bulletins/{month}` serves what was published to every department. Each
scored department is told its own score, rank and parts by a notice (e-mailed like every notice), and
what it must rectify as the bulletin is published; once per month, however often publishing is retried.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from sharehub.access.callers import PLATFORM
from sharehub.access.openrequests import late
from sharehub.hub import Hub
from sharehub.metadata.models import Application, AuditEntry, Notice, OpenRequest, utcnow
from sharehub.notices import tell
from sharehub.reporting.scores import as_dict, department_scores, resource_figures, window
from sharehub.reporting.stats import REFUSED, SERVING, UPSTREAM_SERVING, department_stats
from sharehub.seal import seal
from sharehub.workdays import CHINA

PREFIX = "bulletins"
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def month_of(text: str | None, now: datetime | None = None) -> date:
    """The first day of a month given as YYYY-MM; by default the month before the current one (China
    time), the last complete month. ValueError on anything else."""
    if text is None:
        today = (now or utcnow()).astimezone(CHINA).date().replace(day=1)
        return date(today.year - (today.month == 1), 12 if today.month == 1 else today.month - 1, 1)
    if not MONTH.match(text):
        raise ValueError(f"a month is written YYYY-MM, e.g. 2026-10, not {text!r}")
    return date(int(text[:4]), int(text[5:]), 1)


def _month_end(first: date) -> date:
    """The last day of the month that starts on `first`."""
    following = date(first.year + (first.month == 12), 1 if first.month == 12 else first.month + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def bulletin(hub: Hub, month: date, now: datetime | None = None) -> dict[str, Any]:
    """The bulletin of one month, computed now; `complete` is false for a month not over yet."""
    now = now or utcnow()
    last = _month_end(month)
    start, end = window(month, last, now)
    with hub.db() as s:
        made = s.execute(
            select(Application.share_type, Application.status, func.count())
            .where(Application.created_at >= start, Application.created_at < end)
            .group_by(Application.share_type, Application.status)
        ).all()
        late_steps: dict[str, int] = {
            str(d): n
            for d, n in s.execute(
                select(Application.overdue_department, func.count())
                .where(Application.overdue_at >= start, Application.overdue_at < end)
                .group_by(Application.overdue_department)
            )
        }
        # Applicants not told within the profile's notify_applicant limit: the platform office's step.
        untold = s.scalar(
            select(func.count()).where(Application.told_overdue_at >= start, Application.told_overdue_at < end)
        )
        if untold:
            late_steps[PLATFORM] = late_steps.get(PLATFORM, 0) + untold
        opened = list(
            s.scalars(select(OpenRequest).where(OpenRequest.created_at >= start, OpenRequest.created_at < end))
        )
        calls = s.execute(
            select(AuditEntry.resource_id, AuditEntry.action, AuditEntry.result, func.count())
            .where(AuditEntry.action.in_(SERVING + UPSTREAM_SERVING), AuditEntry.at >= start, AuditEntry.at < end)
            .group_by(AuditEntry.resource_id, AuditEntry.action, AuditEntry.result)
        ).all()
    by_type: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    for share_type, status, n in made:
        by_type[share_type] += n
        by_status[status] += n
    open_status: Counter[str] = Counter(r.status for r in opened)
    open_late: Counter[str] = Counter(r.provider for r in opened if late(r, now))
    served: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"answered": 0, "refused": 0})
    )
    relayed: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"answered": 0, "refused": 0})
    )
    for rid, action, result, n in calls:
        if action in UPSTREAM_SERVING:  # the upper level's resources, called through this platform
            relayed[rid or "-"][action.removeprefix("upstream_")][
                "refused" if result in (*REFUSED, "failed") else "answered"
            ] += n
        else:
            served[rid or "-"][action]["refused" if result in REFUSED else "answered"] += n
    return {
        "month": f"{month:%Y-%m}",
        "from": start.astimezone(CHINA).isoformat(),
        "to": end.astimezone(CHINA).isoformat(),
        "complete": end.astimezone(CHINA).date() > last,
        "made_at": now.astimezone(CHINA).isoformat(),
        "authorizations": {
            "applications": sum(by_type.values()),
            "by_share_type": dict(sorted(by_type.items())),
            "by_status_now": dict(sorted(by_status.items())),
            "steps_overdue": dict(sorted(late_steps.items())),
            "open_data_requests": len(opened),
            "open_data_by_status_now": dict(sorted(open_status.items())),
            "open_data_answered_late": dict(sorted(open_late.items())),
        },
        "calls": {rid: {mode: dict(v) for mode, v in sorted(modes.items())} for rid, modes in sorted(served.items())},
        "calls_upstream": {
            rid: {mode: dict(v) for mode, v in sorted(modes.items())} for rid, modes in sorted(relayed.items())
        },
        "availability": [
            {
                **{k: v for k, v in vars(f).items() if k != "last_delivered"},
                "last_delivered": f.last_delivered.astimezone(CHINA).isoformat() if f.last_delivered else None,
            }
            for f in resource_figures(hub, start, end)
        ],
        "scores": [as_dict(score) for score in department_scores(hub, month, last, now)],
    }


def publish(hub: Hub, month: date, now: datetime | None = None) -> tuple[str, dict[str, Any]]:
    """Compute the month's bulletin, seal it and freeze it in the object store, and tell each department
    its score; (its path, the sealed bulletin). A month not over yet is refused, and a month published
    already keeps what was published (a retried task, or a second `--publish`, gets it back unchanged,
    and tells only the departments not told yet)."""
    path = f"{PREFIX}/{month:%Y-%m}.json"
    if hub.store.exists(path):
        made = read(hub, f"{month:%Y-%m}")
    else:
        made = bulletin(hub, month, now)
        if not made["complete"]:
            raise ValueError(f"{made['month']} is not over yet: a bulletin is published once its month has ended")
        made = seal(hub, made)
        hub.store.write_bytes(path, json.dumps(made, ensure_ascii=False, indent=2).encode())
    tell_scores(hub, made)
    return path, made


PART_NAMES = {"quantity": "数量", "timeliness": "更新时效", "quality": "质量", "use": "使用情况"}


def tell_scores(hub: Hub, made: dict[str, Any]) -> list[int]:
    """A notice to each scored department with its score, rank and parts for the month, and what it must
    rectify now; departments told of this month already are not told again. The notices made."""
    about = f"{PREFIX}/{made['month']}"
    ranked = sum(1 for row in made["scores"] if row["rank"] is not None)
    with hub.db() as s:
        told = set(s.scalars(select(Notice.department).where(Notice.kind == "bulletin", Notice.resource_id == about)))
    waiting = [row for row in made["scores"] if row["department"] in hub.catalogue.departments]
    waiting = [row for row in waiting if row["department"] not in told]
    if not waiting:  # a retried publication: everyone was told
        return []
    rectify_now = {row["department"]: row["rectify"] for row in department_stats(hub)}
    with hub.db() as s:
        made_ids = []
        for row in waiting:
            dept = hub.catalogue.departments[row["department"]]
            score = "无可评分项" if row["score"] is None else f"{row['score']:.1f} 分，第 {row['rank']}/{ranked} 名"
            parts = "；".join(
                f"{name} {'—' if row[part] is None else format(row[part], '.1f')}" for part, name in PART_NAMES.items()
            )
            rectify = "、".join(rectify_now.get(dept.id, [])) or "无"
            notice = tell(
                s,
                kind="bulletin",
                department=dept.id,
                resource_id=about,
                subject=f"[sharehub] {made['month']} 月度通报：{dept.name} {score}",
                body=(
                    f"{dept.name}：\n\n平台已发布 {made['month']} 月度通报（依据：{hub.profile.cite('bulletin')}）。"
                    f"贵部门得分：{score}。\n"
                    f"分项：{parts}。\n发布时仍需整改：{rectify}。\n"
                    f"全文：GET /bulletins/{made['month']}，或 sharehub bulletin --month {made['month']}"
                ),
                recipient=dept.contact_email,
            )
            made_ids.append(notice.id)
    return made_ids


def published(hub: Hub) -> list[str]:
    """The months published, newest first."""
    names = (p.removeprefix(f"{PREFIX}/").removesuffix(".json") for p in hub.store.list(PREFIX))
    return sorted((n for n in names if MONTH.match(n)), reverse=True)


def read(hub: Hub, month: str) -> dict[str, Any]:
    """A published bulletin; LookupError if that month was not published."""
    if not MONTH.match(month):
        raise LookupError(f"a month is written YYYY-MM, not {month!r}")
    path = f"{PREFIX}/{month}.json"
    if not hub.store.exists(path):  # asked first: S3 and a local folder report a missing file differently
        raise LookupError(f"no bulletin published for {month}")
    found: dict[str, Any] = json.loads(hub.store.read_bytes(path))
    return found
