from datetime import timedelta

from phonein import messaging, sending, sms
from phonein.extensions import db
from phonein.times import utcnow

from .conftest import make_forum, make_signup


def test_failed_lookup_in_recovery_resends(app, monkeypatch):
    f = make_forum()
    make_signup(f)  # one confirmation pending
    backend = sms.backend(app)
    t0 = utcnow()
    claimed = sending.claim("dead-worker", t0, 10)
    assert len(claimed) == 1
    backend.send(claimed[0].to, claimed[0].body)  # Twilio got it; then the worker died

    def boom(*a, **k):
        raise RuntimeError("Twilio list API timed out")

    monkeypatch.setattr(backend, "find", boom)
    sending.recover(app, t0 + timedelta(seconds=30), timedelta(seconds=5))
    again = sending.claim("w2", t0 + timedelta(seconds=31), 10)
    for c in again:
        sending.deliver(app, c, "w2")
    assert len(backend.sent) == 1


def test_opt_out_between_claim_and_slot_is_ignored(app):
    f = make_forum()
    s = make_signup(f)
    backend = sms.backend(app)
    claimed = sending.claim("w", utcnow(), 10)
    # the sender now waits for its rate slot (up to threads/rate seconds); meanwhile STOP arrives
    messaging.opt_out(s.phone, utcnow())
    db.session.commit()
    for c in claimed:
        sending.deliver(app, c, "w")
    assert len(backend.sent) == 0
