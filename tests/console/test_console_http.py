"""The console's sign-in over HTTP, without a browser: the redirect to sign in, the login form's own CSRF
token, attempts limited per username, failures audited, and a session ended by signing out."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.app import create_app
from sharehub.access.consumers import add_consumer
from sharehub.access.sessions import set_password
from tests.support.audit import audit_rows


def _login_form(client: TestClient) -> str:
    form = client.get("/console/login")
    assert form.status_code == 200 and "HttpOnly" in form.headers["set-cookie"]
    (token,) = set(re.findall(r'name="login_csrf" value="([^"]+)"', form.text))  # one per sign-in form
    return token


def test_signing_in_is_guarded(make_hub, use_env) -> None:
    hub = make_hub()
    use_env(hub)
    consumer, _ = add_consumer(hub, "人社局 数据管理", "rsj", "provider")
    set_password(hub, consumer.id, "rsj.clerk", "a long enough password")
    client = TestClient(create_app(), follow_redirects=False)

    first = client.get("/console/notices")
    assert first.status_code == 303 and first.headers["location"].startswith("/console/login")

    token = _login_form(client)
    forged = client.post("/console/login", data={"login_csrf": "other", "username": "rsj.clerk", "password": "x"})
    assert "error" in forged.headers["location"] and "sharehub_console=" not in forged.headers.get("set-cookie", "")

    for _ in range(10):
        wrong = client.post(
            "/console/login", data={"login_csrf": token, "username": "rsj.clerk", "password": "wrong one"}
        )
        assert wrong.status_code == 303 and "error" in wrong.headers["location"]
    limited = client.post(
        "/console/login", data={"login_csrf": token, "username": "rsj.clerk", "password": "a long enough password"}
    )
    assert "%E9%A2%91%E7%B9%81" in limited.headers["location"]  # 频繁: even the right password waits
    results = [r for (r,) in audit_rows(hub, "result", "console_sign_in")]
    assert results.count("refused") == 10 and "rate_limited" in results

    other = TestClient(create_app(), follow_redirects=False)
    other_token = _login_form(other)
    consumer2, _ = add_consumer(hub, "税务局", "swj", "provider")
    set_password(hub, consumer2.id, "swj.clerk", "another long password")
    signed = other.post(
        "/console/login", data={"login_csrf": other_token, "username": "swj.clerk", "password": "another long password"}
    )
    assert signed.headers["location"] == "/console" and "SameSite=lax" in signed.headers["set-cookie"]
    assert other.get("/console/notices").status_code == 200
    page = other.get("/console").text
    (csrf,) = set(re.findall(r'name="csrf" value="([^"]+)"', page))
    assert other.post("/console/logout", data={"csrf": "wrong"}).status_code == 403
    assert other.post("/console/logout", data={"csrf": csrf}).status_code == 303
    assert other.get("/console/notices").status_code == 303  # signed out: back to the sign-in page


def test_the_platform_office_gives_a_caller_a_console_password(make_hub, use_env) -> None:
    from typer.testing import CliRunner

    from sharehub.cli import app as cli

    hub = make_hub()
    use_env(hub)
    consumer, _ = add_consumer(hub, "民政局 低保核对", "mzj", "consumer")
    runner = CliRunner()
    short = runner.invoke(
        cli, ["consumers", "password", str(consumer.id), "--username", "mzj.clerk"], input="short\nshort\n"
    )
    assert short.exit_code == 1 and "at least 10" in short.stderr
    made = runner.invoke(
        cli,
        ["consumers", "password", str(consumer.id), "--username", "mzj.clerk"],
        input="long enough!\nlong enough!\n",
    )
    assert made.exit_code == 0, made.output
    client = TestClient(create_app(), follow_redirects=False)
    token = _login_form(client)
    signed = client.post(
        "/console/login", data={"login_csrf": token, "username": "mzj.clerk", "password": "long enough!"}
    )
    assert signed.headers["location"] == "/console"
    assert "long enough!" not in str(audit_rows(hub, "detail", "console_password", "console_sign_in"))
