"""The nightly clean-up forgets what has outlived its use, even where the station keeps
old forums' personal data (PHONEIN_PURGE_AFTER_DAYS=0)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from phonein import worker
from phonein.extensions import db
from phonein.models import Verification, WebhookReceipt
from phonein.times import utcnow

from .conftest import make_forum


@pytest.mark.parametrize("days", [90, 0])
def test_old_verifications_and_webhook_receipts_are_forgotten(make_app, days: int) -> None:  # type: ignore[no-untyped-def]
    app = make_app(PURGE_AFTER_DAYS=days)
    with app.app_context():
        now = utcnow()
        forum = make_forum()
        for name, expires in (
            ("old", now - timedelta(days=2)),
            ("fresh", now + timedelta(minutes=5)),
        ):
            db.session.add(
                Verification(
                    id=name,
                    forum_id=forum.id,
                    phone="+447400123456",
                    channel="sms",
                    values={"name": "A would-be listener"},
                    created_at=expires - timedelta(minutes=10),
                    expires_at=expires,
                )
            )
        db.session.add(WebhookReceipt(key="old", received_at=now - timedelta(days=3)))
        db.session.add(WebhookReceipt(key="fresh", received_at=now - timedelta(hours=1)))
        db.session.commit()

        worker.purge(app, "nightly-test")

        db.session.expire_all()
        assert [v.id for v in db.session.query(Verification)] == ["fresh"]
        assert [r.key for r in db.session.query(WebhookReceipt)] == ["fresh"]
