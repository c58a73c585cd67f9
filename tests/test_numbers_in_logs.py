"""No listener's phone number (nor what they wrote) in the logs on production paths.

The console backends print texts and codes on purpose (development); these are the paths a
deployment on Twilio and PostgreSQL takes: a refused send, a failing statement.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from phonein.cli import QUIET_LOGGERS, configure_logging
from phonein.extensions import db
from phonein.sms import backends
from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .fake_twilio import FakeTwilio, settings
from .processes import drain


def test_a_send_twilio_refuses_logs_no_number(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=1000))
        with app.app_context():
            refused = make_signup(make_forum())
        # Twilio's own message names the number ("The 'To' number +44… is not valid").
        fake.faults.permanent = {refused.phone: 21211}
        drain(app)
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failures, "the refusal is still logged"
    national = refused.phone.removeprefix("+44")
    assert refused.phone not in caplog.text and national not in caplog.text


def test_a_failing_statement_logs_no_parameters(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app()

    @app.get("/failing-statement")
    def failing_statement() -> str:
        db.session.execute(
            sa.text("SELECT phone FROM no_such_table WHERE phone = :phone"),
            {"phone": "+447700900123"},
        )
        return "unreachable"

    answer = app.test_client().get("/failing-statement")
    assert answer.status_code in (500, 503)  # SQLite says OperationalError, PostgreSQL not
    assert "no_such_table" in caplog.text  # the statement is logged, so it can be found
    assert "+447700900123" not in caplog.text


def test_serve_and_worker_logging_keeps_the_twilio_sdks_query_log_out(make_app, caplog):
    """The SDK logs each request's query string at INFO, the level serve and worker log at:
    a reconciliation asks Twilio for the messages To=+44…"""
    configure_logging()
    try:
        caplog.set_level(logging.INFO)  # the root's level, as configure_logging sets it
        with FakeTwilio() as fake:
            app = make_app(**settings(fake))
            with app.app_context():
                found = backends.backend(app).find("+447700900123", "Hello", utcnow())
        assert found is None
        assert "447700900123" not in caplog.text
    finally:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
