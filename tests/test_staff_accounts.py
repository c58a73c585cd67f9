"""Staff sessions end server-side; accounts and tokens can be withdrawn; passwords are strong."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from phonein import accounts
from phonein.extensions import db
from phonein.models import ApiToken
from phonein.times import utcnow

from .conftest import bearer, login, make_forum, make_signup, make_user

PASSWORD = "correct horse battery"


def _copy_session(app, client):  # type: ignore[no-untyped-def]
    """A second client holding the same session cookie, as a thief with a copy would."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_logout_ends_the_session_server_side(client, app):
    login(client)
    thief = _copy_session(app, client)
    assert thief.get("/producer/").status_code == 200
    assert client.post("/producer/logout").status_code == 302
    # The copy made before logout logs in nobody any more.
    response = thief.get("/producer/")
    assert response.status_code == 302 and "/producer/login" in response.headers["Location"]


def test_an_idle_staff_session_expires(make_app):
    app = make_app(STAFF_IDLE_MINUTES=30)
    client = app.test_client()
    with app.app_context():
        login(client)
    assert client.get("/producer/").status_code == 200
    with client.session_transaction() as session:
        session["_seen"] -= 29 * 60  # idle, but not long enough
    assert client.get("/producer/").status_code == 200
    with client.session_transaction() as session:
        session["_seen"] -= 31 * 60
    response = client.get("/producer/")
    assert response.status_code == 302 and "/producer/login" in response.headers["Location"]


def test_disabling_a_user_ends_sessions_and_tokens_at_once(client, app, runner):
    user = login(client)
    token = accounts.create_token(user)
    db.session.commit()
    assert client.get("/api/v1/forums/x", headers=bearer(token)).status_code == 404
    result = runner.invoke(args=["users", "disable", user.email])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert client.get("/producer/").status_code == 302
    assert client.get("/api/v1/forums/x/signups", headers=bearer(token)).status_code == 401
    listed = runner.invoke(args=["users", "list"])
    assert f"{user.email}\tproducer\tdisabled\t0 token(s)" in listed.output
    assert runner.invoke(args=["users", "enable", user.email]).exit_code == 0
    db.session.expire_all()
    # Enabled again: the revoked token stays revoked; logging in works.
    assert client.get("/api/v1/forums/x/signups", headers=bearer(token)).status_code == 401
    login_again = client.post("/producer/login", data={"email": user.email, "password": PASSWORD})
    assert login_again.status_code == 302


def test_set_password_asks_again_and_ends_sessions(make_app):
    app = make_app()
    client, runner = app.test_client(), app.test_cli_runner()
    with app.app_context():
        user = login(client)
    assert client.get("/producer/").status_code == 200
    result = runner.invoke(
        args=["users", "set-password", user.email],
        input="aaaaaaaaaa\naaaaaaaaaa\nplum tractor lantern 9\nplum tractor lantern 9\n",
    )
    assert result.exit_code == 0, result.output
    assert "too weak" in result.output and "Try again" in result.output
    assert client.get("/producer/").status_code == 302
    with app.app_context():
        assert accounts.check_login(user.email, PASSWORD) is None
        assert accounts.check_login(user.email, "plum tractor lantern 9") is not None


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short", "at least 10"),
        ("aaaaaaaaaa", "too weak"),
        ("password12", "most common"),
        ("1234567890", "most common"),
        ("qwertyuiop", "most common"),
        ("anna@example.org", "too weak"),
    ],
)
def test_weak_passwords_are_refused(app, password, why):
    problem = accounts.password_problem(password, "anna@example.org")
    assert problem is not None and why in problem


def test_the_cli_refuses_a_weak_password_on_stdin(app, runner):
    args = ["users", "add", "admin@example.org", "--role", "admin", "--password-stdin"]
    result = runner.invoke(args=args, input="aaaaaaaaaa\n")
    assert result.exit_code != 0 and "too weak" in result.output
    assert accounts.user_by_email("admin@example.org") is None


def test_the_cli_asks_again_for_a_weak_password(app, runner):
    result = runner.invoke(
        args=["users", "add", "admin@example.org", "--role", "admin"],
        input="password12\npassword12\n" + f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "most common" in result.output
    assert accounts.user_by_email("admin@example.org") is not None


def test_the_cli_checks_a_duplicate_email_before_asking_for_a_password(app, runner):
    user, _ = make_user("producer")
    result = runner.invoke(args=["users", "add", user.email.upper(), "--role", "producer"])
    assert result.exit_code != 0 and "already has an account" in result.output
    assert "Password" not in result.output


def test_tokens_expire_are_listed_without_secret_and_can_be_revoked(client, app, runner):
    forum = make_forum()
    user, _ = make_user("producer")
    created = runner.invoke(args=["tokens", "create", user.email, "--expires", "7"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    row = db.session.query(ApiToken).filter(ApiToken.expires_at.is_not(None)).one()
    assert timedelta(days=6, hours=23) < row.expires_at - utcnow() <= timedelta(days=7)
    assert row.last_used_at is None

    # A GET commits nothing of its own; the token's last use is written all the same.
    listing = client.get(f"/api/v1/forums/{forum.slug}/signups", headers=bearer(token))
    assert listing.status_code == 200
    db.session.expire_all()
    assert row.last_used_at is not None

    listed = runner.invoke(args=["tokens", "list", user.email])
    assert listed.exit_code == 0
    assert token not in listed.output and row.token_hash not in listed.output
    line = next(ln for ln in listed.output.splitlines() if ln.startswith(f"{row.id}\t"))
    assert line.endswith("\tlive") and line.count("UTC") == 3  # created, expires, last used

    revoked = runner.invoke(args=["tokens", "revoke", str(row.id)])
    assert revoked.exit_code == 0, revoked.output
    db.session.expire_all()
    assert client.get("/api/v1/forums/x/signups", headers=bearer(token)).status_code == 401
    assert "\trevoked " in runner.invoke(args=["tokens", "list"]).output
    assert runner.invoke(args=["tokens", "revoke", "999999"]).exit_code != 0


def test_an_expired_token_is_refused(client, app):
    user, _ = make_user("producer")
    token = accounts.create_token(user, utcnow() - timedelta(seconds=1))
    db.session.commit()
    response = client.get("/api/v1/forums/x/signups", headers=bearer(token))
    assert response.status_code == 401


def test_a_failed_last_use_stamp_does_not_fail_the_answer(client, app, monkeypatch):
    forum = make_forum()
    _, token = make_user("producer")

    def refuse() -> None:
        raise sa.exc.OperationalError("UPDATE api_tokens", {}, Exception("database is locked"))

    monkeypatch.setattr(accounts, "commit", refuse)
    response = client.get(f"/api/v1/forums/{forum.slug}/signups", headers=bearer(token))
    assert response.status_code == 200 and response.get_json()["items"] == []


@pytest.mark.parametrize("asked", ["list", "next"])
def test_a_tokens_last_use_is_committed_after_the_request(make_app, asked):
    """A GET, which commits nothing of its own, and a next, whose queue lock rides the
    token's check on PostgreSQL: the last use is written after either. Read through a
    connection of its own: what the request's session merely flushed and then threw away
    would look written to that same session."""
    app = make_app()
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
        make_signup(forum, status="queued")
        _, token = make_user("producer")
        url = f"/api/v1/forums/{forum.slug}"
    client = app.test_client()
    if asked == "list":
        answer = client.get(f"{url}/signups", headers=bearer(token))
    else:
        answer = client.post(f"{url}/queue/next", headers=bearer(token))
    assert answer.status_code == 200
    with app.app_context(), db.engine.connect() as connection:
        used = connection.execute(sa.select(ApiToken.last_used_at)).scalar_one()
    assert used is not None
