"""GET /metrics: Prometheus text behind PHONEIN_METRICS_TOKEN, parsed by prometheus-client's
own parser; database gauges read at scrape time; provider calls counted per process and
added up across processes in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from phonein.extensions import db
from phonein.models import Call, Lease, Message, Worker
from phonein.sms import dispatch
from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .fake_twilio import FakeTwilio, Faults, settings
from .processes import drain

TOKEN = "metrics-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    """Return every sample as (name, sorted labels) -> value, parsed by prometheus-client."""
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:  # type: ignore[no-untyped-def]
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_are_hidden_without_a_token_and_refused_with_a_wrong_one(make_app):
    assert make_app().test_client().get("/metrics", headers=AUTH).status_code == 404
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["code"] == "unauthorized"


def test_database_gauges_are_read_when_scraped(make_app):
    app = make_app(METRICS_TOKEN=TOKEN)
    client = app.test_client()
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
        signup = make_signup(forum)  # its confirmation waits in the outbox: no sender runs
        db.session.add_all(
            [
                Lease(name="scheduler", holder="worker-a", expires_at=now + timedelta(seconds=20)),
                Worker(id="worker-a", heartbeat_at=now - timedelta(seconds=3), started_at=now),
                Call(forum_id=forum.id, signup_id=signup.id, direction="inbound", state="holding"),
                # A reminder that went out 3 s after its due time.
                Message(
                    forum_id=forum.id,
                    signup_id=signup.id,
                    kind="reminder",
                    key="600",
                    to=signup.phone,
                    body="Reminder",
                    send_at=now - timedelta(minutes=1),
                    sent_at=now - timedelta(minutes=1) + timedelta(seconds=3),
                    status="sent",
                    attempts=2,
                ),
            ]
        )
        db.session.commit()
    samples = scrape(client)
    confirmation = {"kind": "confirmation", "status": "pending"}
    assert value(samples, "phonein_outbox_messages", **confirmation) == 1
    assert value(samples, "phonein_outbox_due_messages", **confirmation) == 1
    assert value(samples, "phonein_outbox_oldest_age_seconds", **confirmation) >= 0
    assert value(samples, "phonein_outbox_messages", kind="reminder", status="sending") == 0
    assert value(samples, "phonein_lease_holder", lease="scheduler", holder="worker-a") == 1
    assert 0 < value(samples, "phonein_lease_expires_in_seconds", lease="scheduler") <= 20
    if hasattr(Lease, "fence"):  # the fencing number, once the lease carries one
        assert value(samples, "phonein_lease_fence", lease="scheduler") == 0
    assert 3 <= value(samples, "phonein_worker_heartbeat_age_seconds", worker="worker-a") < 60
    assert value(samples, "phonein_calls", state="holding") == 1
    assert value(samples, "phonein_calls", state="on_air") == 0
    late = "phonein_reminder_lateness_seconds_bucket"
    assert value(samples, late, le="2.0") == 0
    assert value(samples, late, le="5.0") == 1
    assert value(samples, "phonein_reminder_lateness_seconds_gcount") == 1


def test_requests_are_timed_by_endpoint(make_app):
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    assert client.get("/healthz").status_code == 200
    samples = scrape(client)
    found = [
        (dict(labels)["method"], dict(labels)["status"], v)
        for (name, labels), v in samples.items()
        if name == "phonein_http_request_duration_seconds_count"
        and dict(labels)["endpoint"].endswith("healthz")
    ]
    assert found == [("GET", "200", 1)]


def test_provider_calls_are_counted_by_outcome(make_app, monkeypatch):
    monkeypatch.setattr(dispatch, "backoff", lambda attempts: timedelta(milliseconds=20))
    with FakeTwilio(faults=Faults(transient_rate=0.3, seed=3)) as fake:
        app = make_app(**settings(fake, SMS_RATE=1000, METRICS_TOKEN=TOKEN))
        with app.app_context():
            forum = make_forum()
            listeners = [make_signup(forum) for _ in range(12)]
        fake.faults.permanent = {listeners[0].phone: 21211, listeners[1].phone: 21610}
        drain(app)
        samples = scrape(app.test_client())
    sends = {
        o: value(samples, "phonein_sms_sends_total", outcome=o)
        for o in ("accepted", "retryable", "refused", "opted_out")
    }
    assert sends["accepted"] == len(fake.messages) == 10
    assert sends["retryable"] == len(fake.rejected) - 2 > 0
    assert (sends["refused"], sends["opted_out"]) == (1, 1)


CHILD = textwrap.dedent(
    """
    import sys
    from phonein import create_app
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sys.argv[1],
                      "SECRET_KEY": "x" * 40, "SMS_BACKEND": "memory",
                      "METRICS_TOKEN": "t", "RATELIMIT_ENABLED": False})
    with app.app_context():
        if sys.argv[2] == "send":
            app.extensions["phonein_sms"].send("+447400123456", "hello")
        else:
            answer = app.test_client().get("/metrics", headers={"Authorization": "Bearer t"})
            print(answer.get_data(as_text=True))
    """
)


def test_multiprocess_mode_adds_up_every_processs_sends(app, tmp_path: Path):
    url = str(db.engine.url.render_as_string(hide_password=False))
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def child(what: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, url, what],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    child("send")
    child("send")
    text = child("scrape")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    accepted = [
        s.value
        for s in families["phonein_sms_sends"].samples
        if s.name == "phonein_sms_sends_total" and s.labels == {"outcome": "accepted"}
    ]
    assert accepted == [2]
    assert "phonein_outbox_messages" in families  # and the database's figures beside them
