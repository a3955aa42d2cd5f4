"""The platform office's monthly bulletin in the console: the month's figures (live for a month not over,
as published for one that is), charts per department over the last months, and a PDF set as an official
通报. Nothing here computes a figure of its own: `sharehub.reporting.bulletin` does, as for the API."""

from __future__ import annotations

import io
from datetime import date
from html import escape
from typing import Any

from markupsafe import Markup

from sharehub.hub import Hub
from sharehub.reporting.bulletin import MONTH, PART_NAMES, bulletin, published, read

MONTHS_CHARTED = 6
COLOURS = ("#a4161a", "#1d4e89", "#2a7f3f", "#b8860b", "#6a3d9a", "#d35400", "#00838f", "#5d4037", "#455a64")


def month_of(text: str | None, today: date) -> date:
    """The first day of the month named `YYYY-MM` (this month when none): ValueError for anything else."""
    if not text:
        return today.replace(day=1)
    if not MONTH.match(text):
        raise ValueError(f"a month is written YYYY-MM, not {text!r}")
    return date(int(text[:4]), int(text[5:]), 1)


def months_back(first: date, n: int) -> list[date]:
    """The `n` months ending with `first`'s, oldest first."""
    out = [first]
    while len(out) < n:
        prev = out[-1]
        out.append(date(prev.year - (prev.month == 1), 12 if prev.month == 1 else prev.month - 1, 1))
    return out[::-1]


def the_bulletin(hub: Hub, first: date) -> dict[str, Any]:
    """The month's bulletin: as published when it was, else computed now (`complete` says whether the month
    is over)."""
    name = f"{first:%Y-%m}"
    return read(hub, name) if name in published(hub) else bulletin(hub, first)


def series(hub: Hub, made: list[dict[str, Any]]) -> dict[str, dict[str, list[float | None]]]:
    """Per figure, per department, one value per month: on-time delivery (%), quarantined rows (%), and
    calls answered by mode."""
    owner = {r.id: r.provider for r in hub.catalogue.resources.values()}
    departments = sorted({r.provider for r in hub.catalogue.resources.values()})
    out: dict[str, dict[str, list[float | None]]] = {
        "on_time": {d: [] for d in departments},
        "quarantined": {d: [] for d in departments},
        **{f"calls_{m}": {d: [] for d in departments} for m in ("verification", "query", "extract")},
    }
    for month in made:
        figures = {row["department"]: row["figures"] for row in month["scores"]}
        calls: dict[str, dict[str, float]] = {d: {} for d in departments}
        for rid, modes in month["calls"].items():
            for mode, counted in modes.items():
                d = owner.get(rid)
                if d in calls:
                    calls[d][mode] = calls[d].get(mode, 0) + counted.get("answered", 0)
        for d in departments:
            f = figures.get(d, {})
            due, landed = f.get("periods_due", 0), f.get("rows_landed", 0)
            out["on_time"][d].append(round(100 * f["periods_on_time"] / due, 1) if due else None)
            out["quarantined"][d].append(round(100 * (landed - f["rows_passed"]) / landed, 2) if landed else None)
            for m in ("verification", "query", "extract"):
                out[f"calls_{m}"][d].append(calls[d].get(m, 0))
    return out


def line_chart(title: str, months: list[str], lines: dict[str, list[float | None]], unit: str) -> Markup:
    """An SVG line chart, one line per department, labelled for screen readers (the table beside it has
    the same numbers)."""
    width, height, left, top, bottom = 640, 220, 48, 16, 36
    values = [v for vs in lines.values() for v in vs if v is not None]
    peak = max([*values, 1.0])
    step = (width - left - 40) / max(1, len(months) - 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - v / peak)

    parts = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height + 20 * ((len(lines) + 3) // 4)}"'
        ' class="chart" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{y(0)}" x2="{width - 8}" y2="{y(0)}" stroke="#888"/>',
        f'<text x="4" y="{top + 4}">{peak:g}{escape(unit)}</text><text x="4" y="{y(0)}">0</text>',
    ]
    parts += [f'<text x="{x(i) - 18}" y="{height - 14}">{escape(m)}</text>' for i, m in enumerate(months)]
    for k, (name, vs) in enumerate(lines.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs) if v is not None)
        if points:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
            parts += [
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>'
                for i, v in enumerate(vs)
                if v is not None
            ]
        lx, ly = left + (k % 4) * 145, height + 6 + 20 * (k // 4)
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16}" y="{ly}">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def pdf(hub: Hub, made: dict[str, Any]) -> bytes:
    """The month's bulletin as a PDF set as a 通报: red title and rule, the issuing office, the article it
    rests on, the scores, the authorizations and the steps overdue. Chinese text uses the standard CID
    font STSong-Light, which every PDF reader supplies."""
    from reportlab.lib import colors  # only the PDF needs reportlab: imported when one is made
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import HRFlowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    font = "STSong-Light"
    red = colors.HexColor("#c00000")
    title = ParagraphStyle("title", fontName=font, fontSize=22, leading=30, alignment=1, textColor=red)
    heading = ParagraphStyle("heading", fontName=font, fontSize=14, leading=20, spaceBefore=8)
    body = ParagraphStyle("body", fontName=font, fontSize=11, leading=17)
    names = {d: dept.name for d, dept in hub.catalogue.departments.items()}
    month = made["month"]
    story: list[Any] = [
        Paragraph("政务数据共享工作通报", title),
        Paragraph(f"{month[:4]}年第{int(month[5:])}期", ParagraphStyle("no", parent=body, alignment=1)),
        HRFlowable(width="100%", thickness=2, color=red, spaceBefore=4, spaceAfter=10),
        Paragraph(
            f"依据{escape(hub.profile.cite('bulletin'))}，现将 {month} 各部门政务数据共享情况通报如下。"
            + ("" if made["complete"] else "（本月尚未结束，以下为截至通报生成时的数据。）"),
            body,
        ),
        Paragraph("一、各部门考核得分", heading),
    ]
    rows = [["名次", "部门", "综合", *PART_NAMES.values()]]
    for s in made["scores"]:
        rows.append(
            [
                str(s["rank"] or "—"),
                names.get(s["department"], s["department"]),
                "—" if s["score"] is None else f"{s['score']:.1f}",
                *("—" if s[p] is None else f"{s[p]:.1f}" for p in PART_NAMES),
            ]
        )
    table = Table(rows, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f4f1ea")),
            ]
        )
    )
    auth = made["authorizations"]
    late = "；".join(f"{names.get(d, d)} {n} 件" for d, n in auth["steps_overdue"].items()) or "无"
    story += [
        table,
        Paragraph("二、授权办理情况", heading),
        Paragraph(
            f"本月数据申请 {auth['applications']} 件；办理环节逾期：{late}；依申请开放请求 "
            f"{auth['open_data_requests']} 件。",
            body,
        ),
        Paragraph("三、数据调用情况", heading),
        Paragraph(
            "；".join(
                f"{rid}：" + "，".join(f"{m} {c['answered']} 次" for m, c in modes.items())
                for rid, modes in made["calls"].items()
            )
            or "本月无调用。",
            body,
        ),
        Spacer(1, 12 * mm),
        Paragraph(f"{escape(hub.profile.regulation.split('（')[0])}实施单位 · 平台管理部门", body),
        Paragraph(f"生成时间：{made['made_at'][:16].replace('T', ' ')}（北京时间）", body),
    ]
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=f"{month} 月度通报", author="sharehub").build(story)
    return out.getvalue()
