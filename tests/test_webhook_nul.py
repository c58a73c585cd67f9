"""A signed webhook carrying NUL (which Twilio never sends, and PostgreSQL refuses in text)
is ignored with an empty 204, as webhooks answer what they ignore: never a 500."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from phonein.extensions import db
from phonein.models import OptOut

from .conftest import make_forum, make_signup
from .fake_twilio import signed

HOOKS = [
    ("/webhooks/twilio/voice/wait?forum=%00", {"CallSid": "CA" + "1" * 32}),
    ("/webhooks/twilio/voice/status", {"CallSid": "+44\x00123", "CallStatus": "completed"}),
    ("/webhooks/twilio/status", {"MessageSid": "SM\x00", "MessageStatus": "delivered"}),
    # STOP from a listener's number, but with NUL: not an opt-out either.
    ("/webhooks/twilio/sms", {"From": "LISTENER", "Body": "STOP", "MessageSid": "SM\x00"}),
    ("/webhooks/twilio/voice", {"CallSid": "CA1", "From": "+44\x00", "To": "+15005550006"}),
]


@pytest.mark.parametrize(("path", "params"), HOOKS)
def test_a_signed_webhook_with_nul_is_ignored(app, client, path, params):
    forum = make_forum(status="live")
    listener = make_signup(forum, status="queued")
    params = {k: listener.phone if v == "LISTENER" else v for k, v in params.items()}
    headers = signed("http://phonein.test" + path, params)
    answer = client.post(path, data=params, headers=headers)
    assert answer.status_code == 204, answer.get_data(as_text=True)[:300]
    assert answer.data == b""
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OptOut)) == 0


def test_a_second_value_with_nul_counts_too(app, client):
    """Signed over every value (as Twilio signs a repeated field): a second value with NUL
    makes the whole request one to ignore, though the first values alone would act."""
    forum = make_forum(status="live")
    listener = make_signup(forum, status="queued")
    params = MultiDict(
        [
            ("From", listener.phone),
            ("Body", "STOP"),
            ("MessageSid", "SM1"),
            ("MessageSid", "SM\x00"),
        ]
    )
    headers = signed("http://phonein.test/webhooks/twilio/sms", params)
    answer = client.post("/webhooks/twilio/sms", data=params, headers=headers)
    assert answer.status_code == 204 and answer.data == b""
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OptOut)) == 0
