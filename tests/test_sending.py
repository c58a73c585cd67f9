"""Sending through the real Twilio SDK to a fake Twilio: faults, rate, recovery."""

from __future__ import annotations

import collections
import itertools
import time
from datetime import timedelta
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from phonein import links
from phonein.extensions import db
from phonein.models import EarlyStatus, Message, OptOut
from phonein.sms import backends, codes, dispatch, outbox, recovery, sender, wanted
from phonein.sms import status as delivery
from phonein.sms.sender import Sender
from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .fake_twilio import FakeTwilio, Faults, settings, signed
from .processes import drain


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(dispatch, "backoff", lambda attempts: timedelta(milliseconds=20))


def statuses(app) -> collections.Counter:  # type: ignore[no-untyped-def]
    with app.app_context():
        return collections.Counter(db.session.scalars(sa.select(Message.status)))


def test_messages_go_out_through_the_sdk_and_record_the_sid(make_app):
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=1000))
        with app.app_context():
            forum = make_forum()
            listeners = [make_signup(forum) for _ in range(5)]
        drain(app)
        assert sorted(m["to"] for m in fake.messages) == sorted(s.phone for s in listeners)
        with app.app_context():
            rows = db.session.scalars(sa.select(Message)).all()
            assert {r.status for r in rows} == {"queued"}
            assert {r.provider_sid for r in rows} == {m["sid"] for m in fake.messages}
            assert all(r.attempts == 1 for r in rows)


def test_a_code_text_goes_out_with_its_code_which_is_not_kept(make_app):
    """The code reaches Twilio, retried through transient failures; once sent, the stored
    body no longer holds it. Other texts are kept as written."""
    with FakeTwilio(faults=Faults(transient_rate=0.3, seed=3)) as fake:
        app = make_app(**settings(fake, SMS_RATE=1000))
        with app.app_context():
            forum = make_forum()
            listener = make_signup(forum)  # its confirmation
            sent_codes = {f"+4477009006{n:02d}": f"{314159 + n * 7919:06d}" for n in range(12)}
            for number, code in sent_codes.items():
                codes.enqueue(number, codes.text(code), f"code-{number}", utcnow())
            db.session.commit()
        drain(app)
        assert len(fake.rejected) > 0  # some codes were tried more than once
        received = collections.defaultdict(list)
        for message in fake.messages:
            received[message["to"]].append(message["body"])
        for number, code in sent_codes.items():
            assert len(received[number]) == 1 and code in received[number][0]
        with app.app_context():
            rows = db.session.scalars(sa.select(Message)).all()
            kept = {r.to: r.body for r in rows if r.kind == "code"}
            assert kept == dict.fromkeys(sent_codes, dispatch.SENT_CODE_BODY)
            [confirmation] = [r for r in rows if r.to == listener.phone]
            assert confirmation.status == "queued"
            assert confirmation.body == received[listener.phone][0]


def test_a_fifth_of_sends_failing_transiently_still_delivers_each_once(make_app):
    with FakeTwilio(faults=Faults(transient_rate=0.2, seed=7)) as fake:
        app = make_app(**settings(fake, SMS_RATE=1000))
        with app.app_context():
            forum = make_forum()
            listeners = [make_signup(forum) for _ in range(60)]
        drain(app)
        assert len(fake.rejected) > 5  # the faults really happened
        per_number = collections.Counter(m["to"] for m in fake.messages)
        assert per_number == {s.phone: 1 for s in listeners}
        assert statuses(app) == {"queued": 60}


def test_permanent_errors_fail_without_retry_and_21610_opts_out(make_app):
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=1000))
        with app.app_context():
            forum = make_forum()
            invalid = make_signup(forum)
            unsubscribed = make_signup(forum)
            fine = make_signup(forum)
        fake.faults.permanent = {invalid.phone: 21211, unsubscribed.phone: 21610}
        drain(app)
        with app.app_context():
            rows = {m.to: m for m in db.session.scalars(sa.select(Message))}
            assert (rows[invalid.phone].status, rows[invalid.phone].error_code) == ("failed", 21211)
            assert rows[unsubscribed.phone].status == "failed"
            assert rows[invalid.phone].attempts == 1
            assert db.session.get(OptOut, unsubscribed.phone) is not None
            assert db.session.get(OptOut, fine.phone) is None
            # Nothing further goes to the number that opted out.
            outbox.forum_cancelled(forum, utcnow())
            db.session.commit()
        drain(app)
        assert [m["to"] for m in fake.messages].count(unsubscribed.phone) == 0
        assert [m["to"] for m in fake.messages].count(fine.phone) == 2


def test_rate_cap_holds_in_every_second(make_app):
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=20))
        with app.app_context():
            forum = make_forum()
            for _ in range(50):
                make_signup(forum)
        sender = Sender(app, "rate-test", threads=8)
        sender.start()
        try:
            deadline = time.monotonic() + 20
            while len(fake.messages) < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            sender.close()
        times = sorted(fake.created_times())
        assert len(times) == 50
        busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
        assert busiest <= 20
        assert times[-1] - times[0] >= 49 / 20 * 0.9  # and the cap was not evaded


def test_rate_cap_holds_in_every_second_across_database_stalls(make_app, monkeypatch):
    """Counted at the fake: with more senders than slots each second, a sender sleeps
    towards a far slot and checks its claim again just before it; a database stall there
    would send it late, on top of that second's slots. A stale slot is given up instead."""
    real_unwanted = wanted.unwanted
    calls = itertools.count()
    stalled = []

    def stalling(ids, now):  # type: ignore[no-untyped-def]
        if 20 <= next(calls) < 26:
            stalled.append(ids)
            time.sleep(1.2)
        return real_unwanted(ids, now)

    monkeypatch.setattr(wanted, "unwanted", stalling)
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=5))
        with app.app_context():
            forum = make_forum()
            for _ in range(30):
                make_signup(forum)
        sender = Sender(app, "stall-test", threads=16)
        sender.start()
        try:
            deadline = time.monotonic() + 40
            while len(fake.messages) < 30 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            sender.close()
        times = sorted(fake.created_times())
        assert len(stalled) == 6  # the stalls happened
        assert len(times) == 30
        assert set(collections.Counter(m["to"] for m in fake.messages).values()) == {1}
        busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
        assert busiest <= 5


def test_a_crashed_send_that_reached_twilio_is_recorded_not_resent(make_app):
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=1000, WORKER_DEAD_SECONDS=1))
        with app.app_context():
            forum = make_forum()
            reached, lost = make_signup(forum), make_signup(forum)
            # A worker claimed both, sent one, and died before recording anything.
            claimed = dispatch.claim("dead-worker", utcnow(), 10)
        [first] = [c for c in claimed if c.to == reached.phone]
        with app.app_context():  # sent as the worker sends it: with the private link in
            backends.backend(app).send(first.to, links.fill(first.body, first.id))
        with app.app_context():
            later = utcnow() + timedelta(seconds=5)
            assert recovery.recover(app, later, timedelta(seconds=1)) == 2
        drain(app)
        per_number = collections.Counter(m["to"] for m in fake.messages)
        assert per_number == {reached.phone: 1, lost.phone: 1}
        assert statuses(app) == {"queued": 2}


def test_recovery_does_not_resend_while_twilio_cannot_say_what_it_sent(app, monkeypatch):
    f = make_forum()
    make_signup(f)  # one confirmation pending
    backend = backends.backend(app)
    t0 = utcnow()
    claimed = dispatch.claim("dead-worker", t0, 10)
    assert len(claimed) == 1
    backend.send(claimed[0].to, claimed[0].body)  # Twilio got it; then the worker died

    def boom(*a, **k):
        raise RuntimeError("Twilio list API timed out")

    monkeypatch.setattr(backend, "find", boom)
    recovery.recover(app, t0 + timedelta(seconds=30), timedelta(seconds=5))
    again = dispatch.claim("w2", t0 + timedelta(seconds=31), 10)
    for c in again:
        dispatch.deliver(app, c, "w2")
    assert len(backend.sent) == 1


def test_stop_then_start_restores_reminders(make_app):
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=1000))
        with app.app_context():
            now = utcnow()
            forum = make_forum(starts_at=now + timedelta(hours=3), now=now)
            listener = make_signup(forum, now=now)
            url = "http://phonein.test/webhooks/twilio/sms"
            client = app.test_client()
            # Both answered in the listener's language (where Twilio's own opt-out handling
            # is on, it drops the STOP reply and sends its own).
            for word, reply in (("stop", "no more texts"), ("START", "again")):
                form = {"From": listener.phone, "Body": word, "MessageSid": "SM1"}
                response = client.post(url, data=form, headers=signed(url, form))
                assert response.status_code == 200
                root = ElementTree.fromstring(response.data)
                assert root.tag == "Response"
                texts = [m.text for m in root.findall("Message")]
                assert (reply in texts[0]) if reply else texts == []
                if word == "stop":
                    assert db.session.get(OptOut, listener.phone) is not None
            due = utcnow()  # a wave due now (the listener signed up before it)
            assert outbox.fan_out_wave(forum, 3600, due, due) == 1
            db.session.commit()
        drain(app)
        kinds = [m["body"].split(":")[0] for m in fake.sent_to(listener.phone)]
        assert "Reminder" in kinds


def test_a_stop_that_arrives_after_a_text_is_claimed_still_stops_it(app):
    f = make_forum()
    s = make_signup(f)
    backend = backends.backend(app)
    claimed = dispatch.claim("w", utcnow(), 10)
    # the sender now waits for its rate slot (up to threads/rate seconds); meanwhile STOP arrives
    outbox.opt_out(s.phone, utcnow())
    db.session.commit()
    for c in claimed:
        dispatch.deliver(app, c, "w")
    assert len(backend.sent) == 0


@pytest.mark.parametrize(
    "word", ["STOP", "stopall", " Unsubscribe ", "CANCEL", "end", "QUIT", "Stop.", "«STOP!»"]
)
def test_every_stop_word_opts_out(client, app, word):
    listener = make_signup(make_forum())
    url = "http://phonein.test/webhooks/twilio/sms"
    form = {"From": listener.phone, "Body": word}
    assert client.post(url, data=form, headers=signed(url, form)).status_code == 200
    assert db.session.get(OptOut, listener.phone) is not None


def test_help_answers_with_twiml(client, app):
    url = "http://phonein.test/webhooks/twilio/sms"
    form = {"From": "+447400123456", "Body": "help", "MessageSid": "SMhelp"}
    response = client.post(url, data=form, headers=signed(url, form))
    [message] = ElementTree.fromstring(response.data).findall("Message")
    assert "STOP" in message.text and "START" in message.text
    assert db.session.scalars(sa.select(Message.kind)).all() == ["help"]


def test_webhooks_refuse_missing_or_wrong_signatures(client, app):
    url = "http://phonein.test/webhooks/twilio/sms"
    form = {"From": "+447400123456", "Body": "STOP"}
    assert client.post(url, data=form).status_code == 403
    tampered = {**form, "From": "+447400999999"}
    assert client.post(url, data=tampered, headers=signed(url, form)).status_code == 403
    other_url = "http://evil.example/webhooks/twilio/sms"
    assert client.post(url, data=form, headers=signed(other_url, form)).status_code == 403
    # A value added beside a signed one (a repeated field) is a tampered request too.
    repeated = MultiDict([("From", "+447400123456"), ("Body", "STOP"), ("Body", "START")])
    assert client.post(url, data=repeated, headers=signed(url, form)).status_code == 403
    assert db.session.scalars(sa.select(OptOut)).all() == []


def test_status_callbacks_only_move_forward(client, app):
    forum = make_forum()
    make_signup(forum)
    message = db.session.scalars(sa.select(Message)).one()
    message.status, message.provider_sid = "queued", "SM" + "a" * 32
    db.session.commit()
    url = "http://phonein.test/webhooks/twilio/status"
    for status, expected in (
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("sent", "delivered"),
        ("queued", "delivered"),
    ):
        form = {"MessageSid": message.provider_sid, "MessageStatus": status}
        assert client.post(url, data=form, headers=signed(url, form)).status_code == 204
        db.session.refresh(message)
        assert message.status == expected


def test_a_status_that_beats_the_sid_is_kept_and_applied(client, app):
    forum = make_forum()
    make_signup(forum)
    [claimed] = dispatch.claim("w", utcnow(), 10)
    url = "http://phonein.test/webhooks/twilio/status"
    sid = "SM" + "b" * 32
    for status in ("delivered", "sent"):  # out of order, and before the SID is recorded
        form = {"MessageSid": sid, "MessageStatus": status}
        assert client.post(url, data=form, headers=signed(url, form)).status_code == 204
    dispatch.record_sent(claimed, "w", backends.SendResult(sid=sid, status="queued"))
    message = db.session.scalars(sa.select(Message)).one()
    db.session.refresh(message)
    assert (message.provider_sid, message.status) == (sid, "delivered")
    assert db.session.scalars(sa.select(EarlyStatus)).all() == []


def test_webhooks_behind_a_tls_proxy_check_the_public_url(make_app):
    app = make_app(PUBLIC_URL="https://radio.example", PROXY_COUNT=1)
    with app.app_context():
        listener = make_signup(make_forum())
    url = "https://radio.example/webhooks/twilio/sms"
    form = {"From": listener.phone, "Body": "STOP"}
    response = app.test_client().post(
        "/webhooks/twilio/sms",
        data=form,
        headers={
            **signed(url, form),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    assert response.status_code == 200


def test_twilio_status_callbacks_reach_the_app_and_mark_delivery(make_app):
    """The fake posts signed callbacks to the URL phonein gave it, as Twilio does."""
    import threading

    from werkzeug.serving import make_server

    with FakeTwilio(callbacks=True) as fake:
        server = make_server("127.0.0.1", 0, None, threaded=True)  # type: ignore[arg-type]
        app = make_app(
            **settings(fake, SMS_RATE=1000, PUBLIC_URL=f"http://127.0.0.1:{server.server_port}")
        )
        server.app = app
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with app.app_context():
                listener = make_signup(make_forum())
            drain(app)
            [sent] = fake.sent_to(listener.phone)
            assert sent["_callback"].endswith("/webhooks/twilio/status")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and statuses(app) != {"delivered": 1}:
                time.sleep(0.05)
                with app.app_context():  # what a worker's recovery tick does
                    delivery.settle_early(utcnow(), timedelta(days=1))
                    db.session.commit()
            assert statuses(app) == {"delivered": 1}
        finally:
            server.shutdown()
            server.server_close()


def test_a_send_whose_recording_failed_is_reconciled_while_its_worker_lives(make_app, monkeypatch):
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=1000))
        with app.app_context():
            listener = make_signup(make_forum())
            [claimed] = dispatch.claim("alive-worker", utcnow(), 10)
            sender.heartbeat("alive-worker", utcnow())

        def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("database went away while recording")

        monkeypatch.setattr(dispatch, "record_sent", broken)
        dispatch.deliver(app, claimed, "alive-worker")  # sent, but not recorded
        monkeypatch.undo()
        with app.app_context():
            sender.heartbeat("alive-worker", utcnow())  # the worker is alive and well
            assert recovery.recover(app, utcnow() + timedelta(seconds=2), timedelta(seconds=1))
        assert len(fake.sent_to(listener.phone)) == 1
        assert statuses(app) == {"queued": 1}  # recorded from Twilio's list, not resent
