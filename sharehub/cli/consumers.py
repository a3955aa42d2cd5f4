"""`sharehub consumers …`: API callers and their keys, with the same functions the API uses."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sharehub.access.consumers import operator
from sharehub.cli.console import err, out
from sharehub.cli.console import hub as _hub
from sharehub.workdays import china_time

consumers_app = typer.Typer(help="API callers (consumers, provider departments, the platform office) and keys.")


@consumers_app.command("add")
def consumers_add(
    name: Annotated[str, typer.Argument(help="The calling application, e.g. 'rsj 社保待遇资格认证'.")],
    department: Annotated[str, typer.Option(help="The caller's department id; 'platform' for the platform office.")],
    role: Annotated[str, typer.Option(help="consumer, provider or platform.")] = "consumer",
) -> None:
    """Register a caller and print its API key. The key is shown this once; only its hash is kept."""
    from sharehub.access.consumers import add_consumer

    try:
        consumer, key = add_consumer(_hub(), name, department, role, actor=operator())  # type: ignore[arg-type]
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    out.print(f"consumer {consumer.id} ({consumer.role} of {consumer.department}): {consumer.name}")
    out.print(f"API key (shown once): {key}", soft_wrap=True)


@consumers_app.command("list")
def consumers_list(department: Annotated[str | None, typer.Option(help="Only this department.")] = None) -> None:
    """Registered callers; keys are never shown again."""
    from sharehub.access.consumers import list_consumers

    t = Table("id", "name", "department", "role", "key prefix", "created", "revoked")
    for c in list_consumers(_hub(), department):
        revoked = china_time(c.revoked_at, "%Y-%m-%d %H:%M") if c.revoked_at else ""
        t.add_row(str(c.id), c.name, c.department, c.role, c.key_prefix, china_time(c.created_at), revoked)
    out.print(t)


@consumers_app.command("revoke")
def consumers_revoke(
    consumer_id: int,
    reason: Annotated[str, typer.Option(help="Why, as the ended grants will say.")] = "",
) -> None:
    """Revoke a caller at once: its key is refused, its grants end with the reason, its extracts are removed."""
    from sharehub.access.revocation import revoke_consumer

    try:
        c = revoke_consumer(_hub(), consumer_id, actor=operator(), reason=reason)
    except LookupError as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    out.print(f"consumer {c.id}: key revoked, its grants ended and its extracts removed")


@consumers_app.command("rotate")
def consumers_rotate(
    consumer_id: int,
    overlap_minutes: Annotated[
        int, typer.Option(min=0, max=7 * 24 * 60, help="Minutes the replaced key keeps working (0: none).")
    ] = 0,
) -> None:
    """Give a caller a new API key, shown this once; the old key stops working at once, or after the
    overlap. The caller keeps its id, applications and grants. A revoked caller is reinstated."""
    from datetime import timedelta

    from sharehub.access.consumers import rotate

    try:
        consumer, key = rotate(_hub(), consumer_id, actor=operator(), overlap=timedelta(minutes=overlap_minutes))
    except (LookupError, ValueError) as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    out.print(f"consumer {consumer.id} ({consumer.role} of {consumer.department}): {consumer.name}: new key")
    if consumer.previous_until is not None:
        out.print(f"the replaced key works until {china_time(consumer.previous_until, '%Y-%m-%d %H:%M')} (China time)")
    out.print(f"API key (shown once): {key}", soft_wrap=True)


@consumers_app.command("password")
def consumers_password(
    consumer_id: int,
    username: Annotated[str, typer.Option(help="The name to sign in to the web console with.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SHAREHUB_CONSOLE_PASSWORD",
            help="Asked for when not given (or SHAREHUB_CONSOLE_PASSWORD); at least 10 characters.",
        ),
    ],
) -> None:
    """Give a caller a username and password for the web console (/console); the password is kept as an
    argon2id hash. The caller signs in as its API key would, with the same rights."""
    from sharehub.access.sessions import set_password
    from sharehub.errors import SharehubError

    try:
        set_password(_hub(), consumer_id, username, password, actor=operator())
    except SharehubError as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    out.print(f"consumer {consumer_id} signs in to the console as {username!r}")
