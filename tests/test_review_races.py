"""Races found in review: decisions are taken on the row as it is under the lock."""

import pytest
import sqlalchemy as sa

from phonein import signups as S
from phonein.errors import Conflict
from phonein.extensions import db
from phonein.models import Signup
from phonein.times import utcnow

from .conftest import make_forum, make_signup, manage_token


def _other(sql_values, sid):
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(Signup.__table__).where(Signup.__table__.c.id == sid).values(**sql_values)
        )


def test_approve_overwrites_concurrent_withdraw(app):
    f = make_forum()
    s = make_signup(f)
    sid = s.id
    db.session.commit()
    signup = S.get(sid)
    _other({"status": "withdrawn"}, sid)
    with pytest.raises(Conflict):  # decided on the row as it is now, not as it was read
        S.screen(signup, {"decision": "approve"}, utcnow())
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Signup, sid).status == "withdrawn"


def test_listener_edit_lands_on_queued_signup_unscreened(app):
    f = make_forum()
    s = make_signup(f)
    sid = s.id
    signup = S.by_manage_token(manage_token(f, s))  # listener's POST loads it (pending)
    _other({"status": "queued", "queue_key": 1 << 20}, sid)  # producer approves + queues meanwhile
    values = S.validate_listener(
        {
            "name": s.name,
            "location": s.location,
            "question": "UNSCREENED TEXT",
            "sms_consent": True,
            "publish_consent": True,
        },
        default_region="GB",
    )
    with pytest.raises(Conflict):  # queued meanwhile: the edit is refused, not slipped in
        S.change_by_listener(signup, values, utcnow())
    db.session.rollback()
    db.session.expire_all()
    row = db.session.get(Signup, sid)
    assert (row.status, row.question) == ("queued", s.question)
