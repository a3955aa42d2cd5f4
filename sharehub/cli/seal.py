"""`sharehub seal …`: the platform's electronic seal, and checking a sealed document (Zhejiang 23–24)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

import typer

from sharehub.cli.console import err, out
from sharehub.cli.console import hub as _hub

seal_app = typer.Typer(help="The platform's electronic seal (电子印章) on what it hands out.", no_args_is_help=True)


@seal_app.command("show")
def seal_show() -> None:
    """The public key that checks the platform's seal, and its id."""
    from sharehub.seal import key_id, public_pem

    public = public_pem(_hub())
    out.print(f"key id: {key_id(public)}\n{public}", highlight=False)


@seal_app.command("verify")
def seal_verify(
    document: Annotated[Path, typer.Argument(help="A sealed JSON document: a manifest.json or a bulletin.")],
    data: Annotated[Path | None, typer.Option(help="The file a manifest describes: its sha256 must match.")] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="A PEM public key (from GET /seal); default: this hub's own.")
    ] = None,
) -> None:
    """Check a document's seal, and the data it describes; exit 1 saying what does not hold."""
    from sharehub.seal import public_pem, verify

    try:
        sealed = json.loads(document.read_text(encoding="utf-8"))
        public = public_key.read_text() if public_key else public_pem(_hub())
    except (OSError, ValueError) as exc:
        err.print(f"cannot read {exc}")
        raise typer.Exit(code=1) from None
    problem = verify(sealed, public) if isinstance(sealed, dict) else "the document is not a JSON object"
    if problem is None and data is not None:
        digest = hashlib.sha256(data.read_bytes()).hexdigest()
        if digest != sealed.get("sha256"):
            problem = f"{data} has sha256 {digest}, the sealed manifest says {sealed.get('sha256')}"
    if problem is not None:
        err.print(f"[red]{document}: {problem}[/red]")
        raise typer.Exit(code=1)
    out.print(f"{document}: seal valid (key {sealed['seal']['key_id']})" + (f"; {data} matches it" if data else ""))
