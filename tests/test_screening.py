"""Bulk screening (``signups.screen_many``): one transaction, skips reported, idempotent.

The same tests run on SQLite and, with PHONEIN_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from phonein import signups
from phonein.errors import Conflict, Invalid
from phonein.extensions import db
from phonein.live import queue
from phonein.models import Message, Signup
from phonein.times import utcnow

from .conftest import make_forum, make_signup


def _statuses(*ids: int) -> list[str]:
    """Read the statuses as committed, from a connection of its own."""
    table = Signup.__table__
    with db.engine.connect() as conn:
        rows = dict(
            conn.execute(sa.select(table.c.id, table.c.status).where(table.c.id.in_(ids))).all()
        )
    return [rows[i] for i in ids]


def _waiting_ids(forum) -> list[int]:  # type: ignore[no-untyped-def]
    return [s.id for s in queue.snapshot(forum).waiting]


def test_approve_and_queue_queues_the_selection_in_order_and_repeats_safely(app):
    forum = make_forum()
    already = make_signup(forum, status="queued")
    a, b, c = (make_signup(forum) for _ in range(3))
    b.status = "approved"
    db.session.commit()

    result = signups.screen_many(
        forum, [c.id, a.id, b.id, already.id], "approve", utcnow(), and_queue=True
    )
    db.session.commit()

    assert [s.id for s in result.changed] == [c.id, a.id, b.id]
    assert [(s.signup_id, s.reason) for s in result.skipped] == [(already.id, "already_queued")]
    assert _statuses(a.id, b.id, c.id) == ["queued"] * 3
    # Added at the end, in the order the producer gave them.
    assert _waiting_ids(forum) == [already.id, c.id, a.id, b.id]
    assert a.screened_at is not None

    texts = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
    again = signups.screen_many(forum, [c.id, a.id, b.id], "approve", utcnow(), and_queue=True)
    db.session.commit()
    assert again.changed == []
    assert {s.reason for s in again.skipped} == {"already_queued"}
    assert _waiting_ids(forum) == [already.id, c.id, a.id, b.id]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == texts


def test_every_skip_is_reported_with_its_reason(app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
    other_forum = make_forum(title="Another forum")
    pending = make_signup(forum)
    approved = make_signup(forum, status="approved")
    rejected = make_signup(forum, status="rejected")
    queued = make_signup(forum, status="queued")
    on_air = make_signup(forum, status="on_air")
    withdrawn = make_signup(forum, status="withdrawn")
    elsewhere = make_signup(other_forum)
    ids = [pending.id, approved.id, rejected.id, queued.id, on_air.id, withdrawn.id]

    result = signups.screen_many(forum, [*ids, elsewhere.id, 999_999], "approve", now)
    db.session.commit()

    assert [s.id for s in result.changed] == [pending.id, rejected.id]
    reasons = {s.signup_id: s.reason for s in result.skipped}
    assert reasons == {
        approved.id: "already_approved",
        queued.id: "already_queued",
        on_air.id: "not_screenable",
        withdrawn.id: "not_screenable",
        elsewhere.id: "not_found",
        999_999: "not_found",
    }
    messages = {s.signup_id: s.message for s in result.skipped}
    assert (
        messages[on_air.id]
        == f"{on_air.name} is on air: only signups not yet on air can be screened."
    )
    assert messages[queued.id] == f"{queued.name} is already queued."
    assert _statuses(*ids) == ["approved", "approved", "approved", "queued", "on_air", "withdrawn"]
    assert _statuses(elsewhere.id) == ["pending"]


def test_rejecting_a_selection_takes_queued_callers_out_and_repeats_safely(app):
    forum = make_forum()
    queued = make_signup(forum, status="queued")
    pending = make_signup(forum)

    result = signups.screen_many(forum, [queued.id, pending.id], "reject", utcnow())
    db.session.commit()
    assert len(result.changed) == 2 and result.skipped == []
    assert _statuses(queued.id, pending.id) == ["rejected", "rejected"]
    assert _waiting_ids(forum) == []

    again = signups.screen_many(forum, [queued.id, pending.id], "reject", utcnow())
    assert again.changed == []
    assert [s.reason for s in again.skipped] == ["already_rejected", "already_rejected"]


def test_a_bulk_decision_is_one_transaction(app, monkeypatch):
    forum = make_forum()
    first, second, third = (make_signup(forum) for _ in range(3))

    # Nothing shows to anyone else until the caller commits.
    signups.screen_many(forum, [first.id, second.id], "approve", utcnow())
    assert _statuses(first.id, second.id) == ["pending", "pending"]
    db.session.rollback()

    # A failure part way (here: queueing the second) undoes the first as well.
    place = queue.place
    calls = []

    def failing_place(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return place(*args, **kwargs)

    monkeypatch.setattr(queue, "place", failing_place)
    with pytest.raises(RuntimeError):
        signups.screen_many(
            forum, [first.id, second.id, third.id], "approve", utcnow(), and_queue=True
        )
    db.session.rollback()
    assert _statuses(first.id, second.id, third.id) == ["pending"] * 3
    assert _waiting_ids(forum) == []


def test_queueing_in_a_closed_forum_changes_nothing(app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(hours=3), now=now)
    signup = make_signup(forum, status="approved", now=now - timedelta(hours=4))
    with pytest.raises(Conflict):
        signups.screen_many(forum, [signup.id], "approve", now, and_queue=True)
    db.session.rollback()
    assert _statuses(signup.id) == ["approved"]


@pytest.mark.parametrize(
    ("ids", "decision", "and_queue", "field"),
    [
        ([], "approve", False, "signup_ids"),
        (list(range(1, signups.BULK_MAX + 2)), "approve", False, "signup_ids"),
        (["1"], "approve", False, "signup_ids"),
        ([True], "approve", False, "signup_ids"),
        ([0], "approve", False, "signup_ids"),
        ([2**63], "approve", False, "signup_ids"),
        ([1], "maybe", False, "decision"),
        ([1], "reject", True, "queue"),
    ],
)
def test_bad_bulk_requests_are_refused_with_the_field(app, ids, decision, and_queue, field):
    forum = make_forum()
    with pytest.raises(Invalid) as refused:
        signups.screen_many(forum, ids, decision, utcnow(), and_queue=and_queue)
    assert field in refused.value.fields


def test_the_api_screens_a_selection_and_reports_skips(client, app, producer, presenter):
    forum = make_forum()
    queued = make_signup(forum, status="queued")
    first, second = make_signup(forum), make_signup(forum)
    url = f"/api/v1/forums/{forum.slug}/signups/screen"
    body = {"signup_ids": [first.id, second.id, queued.id], "decision": "approve", "queue": True}

    answer = client.post(url, json=body, headers=producer)
    assert answer.status_code == 200, answer.get_json()
    out = answer.get_json()
    assert [(s["id"], s["status"], s["queue_position"]) for s in out["changed"]] == [
        (first.id, "queued", 2),
        (second.id, "queued", 3),
    ]
    assert out["skipped"] == [
        {
            "signup_id": queued.id,
            "reason": "already_queued",
            "message": f"{queued.name} is already queued.",
        }
    ]
    again = client.post(url, json=body, headers=producer).get_json()
    assert again["changed"] == [] and len(again["skipped"]) == 3

    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers=presenter).status_code == 403
    for bad in (
        {"signup_ids": [], "decision": "approve"},
        {"signup_ids": ["1"], "decision": "approve"},
        {"signup_ids": [first.id]},
        {"signup_ids": [first.id], "decision": "reject", "queue": True},
        {"signup_ids": list(range(1, 300)), "decision": "approve"},
    ):
        refused = client.post(url, json=bad, headers=producer)
        assert refused.status_code == 422, bad
        assert refused.get_json()["error"]["fields"], bad
    missing = client.post("/api/v1/forums/nope/signups/screen", json=body, headers=producer)
    assert missing.status_code == 404
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/api/v1/forums/{slug}/signups/screen"]


def test_the_api_refuses_to_queue_in_a_closed_forum(client, app, producer):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(hours=3), now=now)
    signup = make_signup(forum, now=now - timedelta(hours=4))
    answer = client.post(
        f"/api/v1/forums/{forum.slug}/signups/screen",
        json={"signup_ids": [signup.id], "decision": "approve", "queue": True},
        headers=producer,
    )
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "forum_closed"
    assert _statuses(signup.id) == ["pending"]
