"""Test fixtures: a fresh app per test on SQLite (default) or PostgreSQL.

Set PHONEIN_TEST_DATABASE_URL=postgresql+psycopg://… to run the whole suite on
PostgreSQL. The schema is built once per session by the real migrations; every test
starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from phonein import create_app
from phonein.extensions import db

# The live server and headless browser fixtures of the browser tests.
pytest_plugins = ["tests.headless"]

PG_URL = os.environ.get("PHONEIN_TEST_DATABASE_URL", "")
IN_CI = bool(os.environ.get("CI"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL.startswith("postgresql"):
        return
    postgres_only = [item for item in items if "postgres" in item.keywords]
    if not postgres_only:
        return
    if IN_CI:
        # CI runs the suite a second time on PostgreSQL, where these run; they are not
        # skipped there, only left out of the SQLite pass.
        config.hook.pytest_deselected(items=postgres_only)
        items[:] = [item for item in items if "postgres" not in item.keywords]
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set PHONEIN_TEST_DATABASE_URL")
    for item in postgres_only:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        return PG_URL
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "phonein-test.sqlite3")


def _config(url: str, instance: Path, **extra: Any) -> dict[str, Any]:
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-000",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "PUBLIC_URL": "http://phonein.test",
        "SMS_BACKEND": "memory",
        "TWILIO_AUTH_TOKEN": "fake-auth-token",
        # Most tests sign up and expect the signup at once; the proof of the number and
        # the challenge have their own tests (tests/test_verification*.py).
        "VERIFY": "off",
        "VERIFY_BACKEND": "memory",
        "CHALLENGE": "off",
        # Quiet hours move reminders by the wall clock's time of day: off, so that no test
        # depends on when it runs; tests/test_quiet_hours*.py turn them on.
        "QUIET_HOURS": "off",
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def schema(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the schema once with the real migrations."""
    from flask_migrate import upgrade

    instance = tmp_path_factory.mktemp("instance")
    app = create_app(_config(database_url, instance))
    with app.app_context():
        if database_url.startswith("postgresql"):
            try:
                db.session.execute(sa.text("SELECT 1"))
            except sa.exc.OperationalError as error:
                if IN_CI:
                    raise
                pytest.skip(f"PostgreSQL not reachable: {error}")
            db.session.rollback()
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()
    return database_url


@pytest.fixture
def make_app(schema: str, tmp_path: Path) -> Iterator[Any]:
    """Return a factory for apps bound to the test database (for extra settings)."""
    apps: list[Flask] = []

    def factory(**extra: Any) -> Flask:
        app = create_app(_config(schema, tmp_path, **extra))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            tables = reversed(db.metadata.sorted_tables)
            with db.engine.begin() as conn:
                for table in tables:
                    conn.execute(table.delete())
            db.engine.dispose()
            break
    for app in apps[1:]:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    app = make_app()
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


# Factories: plain functions.


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_forum(**values: Any):  # type: ignore[no-untyped-def]
    """Create and commit a forum starting in a day unless told otherwise."""
    from phonein import forums
    from phonein.times import utcnow

    now = values.pop("now", None) or utcnow()
    spec = {
        "title": "Should cities ban cars?",
        "question": "Should private cars be banned from city centres?",
        "correspondent": "A. Correspondent",
        "starts_at": now + timedelta(days=1),
        "timezone": "Europe/London",
    }
    spec.update(values)
    status = spec.pop("status", None)
    starts = spec["starts_at"]
    # forums.create refuses a start in the past; build those in the future and move them.
    if starts <= now:
        spec["starts_at"] = now + timedelta(days=1)
    forum = forums.create(
        spec, now, defaults={"duration_minutes": 60, "reminder_offsets": [86400, 3600, 600]}
    )
    if starts <= now:
        forum.starts_at = starts
        forum.ends_at = starts + forum.duration
        forum.signup_closes_at = forum.ends_at
    if status:
        forum.status = status
    db.session.commit()
    return forum


_phone_counter = iter(range(10**6))


def make_signup(forum: Any, **values: Any):  # type: ignore[no-untyped-def]
    """Register a listener through the real operation; optionally set status directly."""
    from phonein import signups
    from phonein.times import utcnow

    now = values.pop("now", None) or utcnow()
    n = next(_phone_counter)
    data = {
        "name": f"Listener {n}",
        "location": "Leeds, UK",
        "phone": f"+44 7400 {100000 + n:06d}",
        "question": f"Question number {n}?",
        "sms_consent": True,
        "publish_consent": True,
    }
    status = values.pop("status", None)
    data.update(values)
    signup = signups.register(forum, data, now, default_region="GB").signup
    if status == "queued":
        from phonein.live import queue

        signup.status = "approved"
        db.session.flush()
        queue.place(forum.slug, signup.id, None, now)
    elif status:
        signup.status = status
    db.session.commit()
    return signup


def manage_token(forum: Any, signup: Any) -> str:  # type: ignore[no-untyped-def]
    """Prove ``signup``'s number again, as its listener would, to get a new private link."""
    from phonein import signups
    from phonein.times import utcnow

    fields = ("name", "location", "phone", "question", "sms_consent", "publish_consent")
    result = signups.register(
        forum,
        {f: getattr(signup, f) for f in fields},
        utcnow(),
        default_region="GB",
        new_link=True,
    )
    db.session.commit()
    return result.manage_token


def make_user(role: str = "producer", email: str | None = None):  # type: ignore[no-untyped-def]
    """Create a user with a password 'correct horse battery' and return (user, token)."""
    from phonein import accounts

    user = accounts.create_user(
        email or f"{role}-{next(_phone_counter)}@example.org", role, "correct horse battery"
    )
    token = accounts.create_token(user)
    db.session.commit()
    return user, token


def change_signup_elsewhere(signup_id: int, **values: Any) -> None:
    """Change a signup's row in a connection of its own, as another request would meanwhile."""
    from phonein.models import Signup

    table = Signup.__table__
    with db.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == signup_id).values(**values))


def login(client: FlaskClient, role: str = "producer"):  # type: ignore[no-untyped-def]
    """Log ``client`` in to the producer pages as a new user with ``role``; return the user."""
    user, _ = make_user(role)
    response = client.post(
        "/producer/login", data={"email": user.email, "password": "correct horse battery"}
    )
    assert response.status_code == 302
    return user


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def producer(app: Flask) -> dict[str, str]:
    return bearer(make_user("producer")[1])


@pytest.fixture
def presenter(app: Flask) -> dict[str, str]:
    return bearer(make_user("presenter")[1])
