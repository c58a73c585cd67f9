from datetime import timedelta

from phonein.extensions import db
from phonein.sms import backends, dispatch, outbox
from phonein.times import utcnow

from .conftest import make_forum, make_signup


def test_failed_lookup_in_recovery_resends(app, monkeypatch):
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
    dispatch.recover(app, t0 + timedelta(seconds=30), timedelta(seconds=5))
    again = dispatch.claim("w2", t0 + timedelta(seconds=31), 10)
    for c in again:
        dispatch.deliver(app, c, "w2")
    assert len(backend.sent) == 1


def test_opt_out_between_claim_and_slot_is_ignored(app):
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
