"""What every console page shares: the templates, the Chinese names of states, rendering with the
signed-in caller and CSRF token, redirecting after a form, and working days left."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.console.signin import SignedIn
from sharehub.hub import Hub
from sharehub.serving.copies import SEP
from sharehub.serving.masking import mask_field
from sharehub.workdays import CHINA, china_time, due_text

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["beijing"] = lambda moment, form="%Y-%m-%d %H:%M": (
    "" if moment is None else china_time(moment, form)
)
templates.env.filters["due"] = lambda moment: "" if moment is None else due_text(moment)  # as notices write it
PAGE = 20
ROLE_NAMES = {"platform": "平台管理部门", "provider": "数据提供部门", "consumer": "数据使用部门"}
STATUS_NAMES = {
    "open": "待处理",
    "acknowledged": "已签收",
    "overdue": "已逾期",
    "resolved": "已办结",
    "disputed": "有异议",
    "review": "平台审核中",
    "provider": "待提供部门授权",
    "granted": "已授权",
    "refused": "未同意",
    "contested": "协商中",
    "referred": "已提请协调",
    "withdrawn": "已撤回",
    "verifying": "核实中",
    "decided": "已裁定",
    "closed": "已关闭",
}
SHARE_NAMES = {"unconditional": "无条件共享", "conditional": "有条件共享", "not_shared": "不予共享"}
MODE_NAMES = {"verification": "比对验证", "query": "查询引用", "bulk": "批量复制"}
templates.env.globals.update(STATUS=STATUS_NAMES, SHARE=SHARE_NAMES, MODES=MODE_NAMES, ROLE_NAMES=ROLE_NAMES)


def page(request: Request, name: str, who: SignedIn | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with who is signed in, the session's CSRF token for its forms, and what the form
    before it did (`back`'s `done` or `error`)."""
    context.setdefault("done", request.query_params.get("done", ""))
    context.setdefault("error", request.query_params.get("error", ""))
    context.update(request=request, who=who, caller=who.caller if who else None, csrf=who.csrf if who else "")
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def back(url: str, message: str = "", error: str = "") -> RedirectResponse:
    """After a form: back to a page (303, so a reload does not post again), saying what happened."""
    query = urlencode({k: v for k, v in (("done", message), ("error", error)) if v})
    return RedirectResponse(f"{url}{'&' if '?' in url else '?'}{query}" if query else url, status_code=303)


def working_days_left(who: SignedIn, deadline: datetime | None) -> int | None:
    """Working days from today (Beijing) to a deadline: negative when it has passed."""
    if deadline is None:
        return None
    today = datetime.now(CHINA).date()
    end = deadline.astimezone(CHINA).date()
    if end >= today:
        return who.hub.calendar.working_days_between(today, end)
    return -who.hub.calendar.working_days_between(end, today)


def masked_key(hub: Hub, resource_id: str | None, key: str) -> str:
    """A row or record key as the platform sees it: each part masked by its field's classification."""
    res = hub.catalogue.resources.get(resource_id or "")
    if res is None:
        return "〈已不在目录中〉"
    parts = key.split(SEP)
    return " / ".join(mask_field(part, res.field(name)) for part, name in zip(parts, res.source.key, strict=False))
