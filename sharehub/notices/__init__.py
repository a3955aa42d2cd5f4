"""Notices to provider departments and the platform office: what is asked, by when, and what was told.

One module per concern: `core` (filing, asking, telling, overdue and escalation), `quality` (quarantined
rows by key, masked samples, the rules in words), `disputes` (a row the department holds right),
`deliveries` (data not delivered in its period) and `outbox` (e-mail, sent once per recipient)."""

from sharehub.notices.core import (
    OPEN,
    acknowledge,
    addressee,
    ask,
    escalate,
    file_notice,
    get_notice,
    list_notices,
    mark_overdue,
    resolve,
    resolve_id,
    tell,
)
from sharehub.notices.deliveries import (
    check_deliveries,
    delivery_days,
    file_delivery,
    last_due_period_end,
    list_filings,
    period_start,
    previous_boundary,
    resolve_delivered,
)
from sharehub.notices.disputes import decide_dispute, dispute, list_disputes
from sharehub.notices.outbox import deliver
from sharehub.notices.quality import (
    SAMPLE_ROWS,
    Sample,
    expected,
    explained,
    notices_holding,
    notify,
    pending_reasons,
    raise_quality_notice,
    resolve_passed,
)

__all__ = [
    "OPEN",
    "SAMPLE_ROWS",
    "Sample",
    "acknowledge",
    "addressee",
    "ask",
    "check_deliveries",
    "decide_dispute",
    "deliver",
    "delivery_days",
    "dispute",
    "escalate",
    "expected",
    "explained",
    "file_delivery",
    "file_notice",
    "get_notice",
    "last_due_period_end",
    "list_disputes",
    "list_filings",
    "list_notices",
    "mark_overdue",
    "notices_holding",
    "notify",
    "pending_reasons",
    "period_start",
    "previous_boundary",
    "raise_quality_notice",
    "resolve",
    "resolve_delivered",
    "resolve_id",
    "resolve_passed",
    "tell",
]
