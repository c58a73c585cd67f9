"""The phonein command: users, tokens, demo, purge."""

from __future__ import annotations

from datetime import timedelta

from phonein import accounts
from phonein.extensions import db
from phonein.models import Forum, Signup
from phonein.times import utcnow

from .conftest import bearer, make_forum, make_signup


def test_users_add_and_tokens_create(client, app, runner):
    result = runner.invoke(
        args=["users", "add", "Ed@Example.org", "--role", "producer", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    user = accounts.user_by_email("ed@example.org")
    assert user is not None and user.role == "producer"
    assert user.password_hash and "a long enough password" not in user.password_hash
    assert accounts.check_login("ed@example.org", "a long enough password") is user
    tokens = runner.invoke(args=["tokens", "create", "ed@example.org"])
    assert tokens.exit_code == 0
    token = tokens.stdout.strip()
    assert tokens.stdout == token + "\n"  # the token and nothing else
    assert client.get("/api/v1/forums/x/signups", headers=bearer(token)).status_code == 404


def test_users_add_refuses_duplicates_and_short_passwords(app, runner):
    args = ["users", "add", "a@example.org", "--role", "presenter", "--password-stdin"]
    assert runner.invoke(args=args, input="short\n").exit_code != 0
    assert runner.invoke(args=args, input="long enough pass\n").exit_code == 0
    again = runner.invoke(args=args, input="long enough pass\n")
    assert again.exit_code != 0 and "already has an account" in again.output
    bad_role = runner.invoke(args=["users", "add", "b@example.org", "--role", "boss"])
    assert bad_role.exit_code != 0


def test_tokens_create_for_unknown_user_fails(app, runner):
    result = runner.invoke(args=["tokens", "create", "ghost@example.org"])
    assert result.exit_code != 0 and "No staff account" in result.output


def test_demo_loads_forums_and_can_run_twice(client, app, runner):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "Producer login: producer@demo.phonein" in first.output
    second = runner.invoke(args=["demo"])  # recreates the demo forums, no second account
    assert second.exit_code == 0, second.output
    assert "Producer login" not in second.output
    upcoming = client.get("/api/v1/forums").get_json()["forums"]
    assert [f["slug"] for f in upcoming] == ["car-free-city-centres"]
    demo = db.session.query(Forum).filter_by(slug="car-free-city-centres").one()
    statuses = {s.status for s in demo.signups}
    assert {"pending", "approved", "queued", "rejected"} <= statuses
    page = client.get("/forums/four-day-week-verdict").get_data(as_text=True)
    assert "This debate is now closed" in page and "Bergen, Norway" in page


def test_purge_erases_old_forums_personal_data_keeping_published_names(app, runner):
    now = utcnow()
    old = make_forum(title="Old", starts_at=now - timedelta(days=40), now=now)
    recent = make_forum(title="Recent", starts_at=now - timedelta(days=2), now=now)
    for forum in (old, recent):
        forum.status = "open"
        forum.signup_closes_at = forum.ends_at
    db.session.commit()
    signup_time = {"now": old.starts_at - timedelta(hours=1)}
    kept = make_signup(
        old, name="Ingrid", location="Bergen", email="i@example.org", status="done", **signup_time
    )
    kept.published, kept.notes = True, "lovely"
    private = make_signup(old, name="Marcus", location="Glasgow", status="done", **signup_time)
    private.stance = "against"
    fresh = make_signup(recent, name="Aiko", now=recent.starts_at - timedelta(hours=1))
    db.session.commit()

    result = runner.invoke(args=["purge", "--older-than", "30"])
    assert result.exit_code == 0, result.output
    assert "2 signup(s)" in result.output
    db.session.expire_all()
    kept, private, fresh = (db.session.get(Signup, s.id) for s in (kept, private, fresh))
    assert (kept.name, kept.location, kept.phone, kept.email, kept.notes) == (
        "Ingrid",
        "Bergen",
        None,
        None,
        None,
    )
    assert kept.question and kept.published
    assert (private.name, private.location, private.phone, private.question) == ("", "", None, "")
    assert private.stance == "against"  # the balance of opinion survives
    assert fresh.phone is not None and fresh.name == "Aiko"
    again = runner.invoke(args=["purge", "--older-than", "30"])
    assert "0 signup(s)" in again.output
    assert runner.invoke(args=["purge", "--older-than", "-1"]).exit_code != 0


class _FakeServer:
    def run(self) -> None:
        pass


def test_serve_points_links_at_its_own_port(app, runner, monkeypatch):
    import waitress

    served = {}

    def create_server(app, **kw):
        served.update(kw, app=app)
        return _FakeServer()

    monkeypatch.delenv("PHONEIN_PUBLIC_URL", raising=False)
    monkeypatch.setattr(waitress, "create_server", create_server)
    result = runner.invoke(args=["serve", "--port", "5077"])
    assert result.exit_code == 0, result.output
    assert served["port"] == 5077 and served["host"] == "127.0.0.1"
    assert served["app"].config["PUBLIC_URL"] == "http://127.0.0.1:5077"
    assert "http://127.0.0.1:5077/producer/" in result.output
