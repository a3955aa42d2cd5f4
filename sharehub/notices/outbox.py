"""The e-mail outbox: each notice sent over SMTP once per recipient, retried until it goes."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from sqlalchemy import select

from sharehub.hub import Hub
from sharehub.metadata.models import Notice, OutboxMessage, utcnow
from sharehub.settings import Settings

log = logging.getLogger(__name__)


# Refusals of one message; anything else is the server's (unreachable, refused, dropped) and ends the round.
_ONE_MESSAGE = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def deliver(hub: Hub) -> tuple[int, int]:
    """Send queued e-mails over SMTP; return (sent, still queued). Without an SMTP host nothing is sent.

    One connection carries every queued message. A message the server refuses stays queued with its
    error, and the others go on; a server that cannot be reached, or that drops the connection, ends the
    round at once (one timeout, not one per message), and what was not sent stays queued for the next.
    """
    settings = hub.settings
    with hub.db() as s:
        queued = list(s.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))))
        notices = {n.id: n for n in s.scalars(select(Notice).where(Notice.id.in_([m.notice_id for m in queued])))}
    if not queued or not settings.smtp_host:
        return 0, len(queued)
    sent: set[int] = set()
    failed: dict[int, str] = {}
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=15) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            for msg in queued:
                try:
                    smtp.send_message(_email(settings, notices[msg.notice_id], msg))
                except _ONE_MESSAGE as exc:
                    log.warning("notice %s not sent to its department yet: %s", msg.notice_id, type(exc).__name__)
                    failed[msg.id] = _error(exc)
                    continue
                _attempted(hub, [msg.id], sent=True)  # at once: a crash later must not send it twice
                sent.add(msg.id)
    except (OSError, smtplib.SMTPException) as exc:
        left = [m.id for m in queued if m.id not in sent and m.id not in failed]
        log.warning(
            "SMTP server %s:%s: %s; %d e-mail(s) stay queued",
            settings.smtp_host,
            settings.smtp_port,
            type(exc).__name__,
            len(left),
        )
        failed |= dict.fromkeys(left, _error(exc))
    for error in set(failed.values()):
        _attempted(hub, [i for i, e in failed.items() if e == error], sent=False, error=error)
    return len(sent), len(queued) - len(sent)


def _email(settings: Settings, notice: Notice, msg: OutboxMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = settings.smtp_sender, msg.recipient, notice.subject
    email["Message-ID"] = f"<sharehub-notice-{notice.id}-{msg.id}@sharehub>"
    email.set_content(notice.body)
    return email


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _attempted(hub: Hub, ids: list[int], *, sent: bool, error: str | None = None) -> None:
    """Count a delivery attempt on these outbox messages: sent now, or failed with this error."""
    with hub.db() as s:
        for row in s.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))):
            row.attempts += 1
            if sent:
                row.sent_at = utcnow()
            else:
                row.last_error = error
