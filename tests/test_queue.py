"""The caller queue: order, moves, next/finish, and consistency under concurrency."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from phonein.extensions import db
from phonein.live import queue
from phonein.models import Signup
from phonein.times import utcnow

from .conftest import bearer, make_forum, make_signup, make_user


def live_forum():  # type: ignore[no-untyped-def]
    now = utcnow()
    return make_forum(starts_at=now - timedelta(minutes=5), now=now)


def order(client, forum, headers) -> list[int]:  # type: ignore[no-untyped-def]
    body = client.get(f"/api/v1/forums/{forum.slug}/queue", headers=headers).get_json()
    positions = [s["queue_position"] for s in body["waiting"]]
    assert positions == list(range(1, len(positions) + 1))
    return [s["id"] for s in body["waiting"]]


def test_add_at_positions_move_and_remove(client, app, producer):
    forum = live_forum()
    a, b, c, d = (make_signup(forum, status="approved") for _ in range(4))
    url = f"/api/v1/forums/{forum.slug}/queue"
    assert client.post(url, json={"signup_id": a.id}, headers=producer).get_json()["position"] == 1
    client.post(url, json={"signup_id": b.id}, headers=producer)
    placed = client.post(url, json={"signup_id": c.id, "position": 1}, headers=producer)
    assert placed.get_json()["position"] == 1
    assert placed.get_json()["signup"]["status"] == "queued"
    client.post(url, json={"signup_id": d.id, "position": 2}, headers=producer)
    assert order(client, forum, producer) == [c.id, d.id, a.id, b.id]
    # Move: to the end (past the end means last), to the front, to the middle.
    client.post(url, json={"signup_id": c.id, "position": 99}, headers=producer)
    assert order(client, forum, producer) == [d.id, a.id, b.id, c.id]
    client.post(url, json={"signup_id": b.id, "position": 1}, headers=producer)
    assert order(client, forum, producer) == [b.id, d.id, a.id, c.id]
    client.post(url, json={"signup_id": c.id, "position": 2}, headers=producer)
    assert order(client, forum, producer) == [b.id, c.id, d.id, a.id]
    removed = client.delete(f"{url}/{d.id}", headers=producer)
    assert removed.status_code == 200
    assert removed.get_json()["signup"]["status"] == "approved"
    assert order(client, forum, producer) == [b.id, c.id, a.id]


def test_next_puts_the_head_on_air_and_finishes_the_last(client, app, producer, presenter):
    forum = live_forum()
    first, second = (make_signup(forum, status="queued") for _ in range(2))
    url = f"/api/v1/forums/{forum.slug}/queue"
    step = client.post(f"{url}/next", headers=producer).get_json()
    assert step["on_air"]["id"] == first.id and step["done"] is None
    assert step["next_up"]["id"] == second.id
    snapshot = client.get(url, headers=presenter).get_json()
    assert snapshot["on_air"]["id"] == first.id
    assert [s["id"] for s in snapshot["waiting"]] == [second.id]
    step = client.post(f"{url}/next", headers=producer).get_json()
    assert step["done"]["id"] == first.id and step["done"]["status"] == "done"
    assert step["on_air"]["id"] == second.id and step["next_up"] is None
    step = client.post(f"{url}/finish", headers=producer).get_json()
    assert step["done"]["id"] == second.id
    snapshot = client.get(url, headers=presenter).get_json()
    assert snapshot["on_air"] is None and snapshot["waiting"] == []
    # Next on an empty queue is harmless.
    assert client.post(f"{url}/next", headers=producer).get_json()["on_air"] is None


def test_presenters_see_the_queue_without_phone_email_or_notes(client, presenter, producer):
    f = make_forum(starts_at=utcnow() - timedelta(minutes=5), status="live")
    s = make_signup(f, email="dana@example.org", status="queued")
    screened = client.post(
        f"/api/v1/signups/{s.id}/screen",
        json={"notes": "sounded drunk on the phone"},
        headers=producer,
    )
    assert screened.status_code == 200, screened.get_json()
    r = client.get(f"/api/v1/forums/{f.slug}/queue", headers=presenter)
    w = r.get_json()["waiting"][0]
    assert "phone" not in w and "email" not in w and "notes" not in w


def test_version_changes_with_every_queue_change(client, app, producer):
    forum = live_forum()
    signup = make_signup(forum, status="approved")
    url = f"/api/v1/forums/{forum.slug}/queue"
    v0 = client.get(url, headers=producer).get_json()["version"]
    client.post(url, json={"signup_id": signup.id}, headers=producer)
    v1 = client.get(url, headers=producer).get_json()["version"]
    client.post(f"{url}/next", headers=producer)
    v2 = client.get(url, headers=producer).get_json()["version"]
    assert v0 < v1 < v2


def test_queue_refuses_what_the_state_forbids(client, app, producer, presenter):
    forum = live_forum()
    pending = make_signup(forum)
    url = f"/api/v1/forums/{forum.slug}/queue"
    refused = client.post(url, json={"signup_id": pending.id}, headers=producer)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "not_approved"
    assert client.post(url, json={"signup_id": 999999}, headers=producer).status_code == 404
    assert client.delete(f"{url}/{pending.id}", headers=producer).status_code == 409
    bad = client.post(url, json={"signup_id": pending.id, "position": 0}, headers=producer)
    assert bad.status_code == 422
    assert client.post(url, json={"signup_id": "x"}, headers=producer).status_code == 422
    assert client.post(f"{url}/next", headers=presenter).status_code == 403
    other = make_signup(live_forum(), status="approved")
    assert client.post(url, json={"signup_id": other.id}, headers=producer).status_code == 404


def test_a_huge_queue_position_is_an_invalid_field(client, producer):
    f = make_forum(starts_at=utcnow() - timedelta(minutes=5), status="live")
    s = make_signup(f, status="approved")
    make_signup(f, status="queued")
    r = client.post(
        f"/api/v1/forums/{f.slug}/queue",
        json={"signup_id": s.id, "position": 2**64},
        headers=producer,
    )
    assert r.status_code == 422, r.get_json()
    assert "position" in r.get_json()["error"]["fields"]


def test_next_needs_a_live_forum_and_closed_queues_are_frozen(client, app, producer):
    upcoming = make_forum()
    approved = make_signup(upcoming, status="approved")
    url = f"/api/v1/forums/{upcoming.slug}/queue"
    # Queues can be built before the show, but nobody goes on air before it is live.
    assert client.post(url, json={"signup_id": approved.id}, headers=producer).status_code == 200
    refused = client.post(f"{url}/next", headers=producer)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "forum_not_live"
    closed = make_forum()
    late = make_signup(closed, status="approved")
    closed.status = "closed"
    db.session.commit()
    url = f"/api/v1/forums/{closed.slug}/queue"
    assert client.post(url, json={"signup_id": late.id}, headers=producer).status_code == 409


def test_rebalance_keeps_order_when_keys_run_out(app, monkeypatch):
    monkeypatch.setattr(queue, "GAP", 2)
    forum = live_forum()
    signups = [make_signup(forum, status="approved") for _ in range(12)]
    now = utcnow()
    expected: list[int] = []
    for s in signups:
        # Always insert in second place: halves the same gap until it is gone.
        position = min(2, len(expected) + 1)
        queue.place(forum.slug, s.id, position, now)
        expected.insert(position - 1, s.id)
        db.session.commit()
    snap = queue.snapshot(forum)
    assert [s.id for s in snap.waiting] == expected


@pytest.mark.parametrize("gap", [queue.GAP, 4])
def test_random_moves_keep_the_order_a_list_would(app, monkeypatch, gap):
    """Moves, adds (at a place and last) and removes against a plain list, with tight
    keys too (gap 4: rebalances on the way)."""
    monkeypatch.setattr(queue, "GAP", gap)
    rng = random.Random(gap)
    forum = live_forum()
    signups = [make_signup(forum, status="approved").id for _ in range(12)]
    expected: list[int] = []
    now = utcnow()
    for _ in range(80):
        signup_id = rng.choice(signups)
        if signup_id in expected and rng.random() < 0.15:
            queue.remove(forum.slug, signup_id, now)
            expected.remove(signup_id)
        else:
            others = [i for i in expected if i != signup_id]
            position = rng.choice([None, 1, len(others) + 1, len(others) + 5, rng.randint(1, 13)])
            _, _, placed = queue.place(forum.slug, signup_id, position, now)
            at = len(others) if position is None else min(position, len(others) + 1) - 1
            others.insert(at, signup_id)
            expected = others
            assert placed == at + 1
        db.session.commit()
        assert [s.id for s in queue.snapshot(forum).waiting] == expected


def test_only_a_new_head_is_texted_that_they_are_next(client, app, producer):
    from phonein.models import Message

    forum = live_forum()
    first, second, third = (make_signup(forum, status="queued") for _ in range(3))
    url = f"/api/v1/forums/{forum.slug}/queue"

    def told() -> list[int]:
        db.session.rollback()
        return list(
            db.session.scalars(
                sa.select(Message.signup_id).where(Message.kind == "next_up").order_by(Message.id)
            )
        )

    assert told() == [first.id]
    client.post(url, json={"signup_id": third.id, "position": 2}, headers=producer)
    assert told() == [first.id]  # the head did not change: nobody new is told
    client.post(url, json={"signup_id": first.id, "position": 3}, headers=producer)
    assert told() == [first.id, third.id]  # the head moved away: the new head is told
    client.post(url, json={"signup_id": second.id, "position": 1}, headers=producer)
    assert told() == [first.id, third.id, second.id]


def sent(client, headers, method: str, path: str, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    """The statements one request sent (it must answer 200)."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = client.open(path, method=method, headers=headers, **kwargs)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.get_json()
    return statements


def test_next_finish_and_a_move_are_few_statements(client, app, producer):
    forum = live_forum()
    waiting = [make_signup(forum, status="queued") for _ in range(5)]
    url = f"/api/v1/forums/{forum.slug}/queue"
    client.post(f"{url}/next", headers=producer)  # the token's last use is written once

    def count(method: str, path: str, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
        return sent(client, producer, method, path, **kwargs)

    moved = count("POST", url, json={"signup_id": waiting[4].id, "position": 3})
    # token and user; lock; the signup with its neighbours' keys; its update.
    assert len(moved) == 4, moved
    advanced = count("POST", f"{url}/next")
    folded = db.engine.dialect.name == "postgresql"
    # token and user; one lock; who is on air and the first two waiting (what the undo
    # log keeps, read once); finish; then on air, text the new head (ids returned), ask
    # the lines (which are on the line, returned) and the undo log's row. On PostgreSQL
    # the token's check takes the lock, the read finishes the one on air, and the rest is
    # one statement (data-modifying CTEs all three).
    assert len(advanced) == (3 if folded else 8), advanced
    if folded:
        assert advanced[0].lstrip().upper().startswith("WITH LOCKED AS")
        assert "UPDATE FORUMS" in advanced[0].upper() and "API_TOKENS" in advanced[0].upper()
    else:
        assert advanced[1].lstrip().upper().startswith("UPDATE FORUMS")
    assert sum("UPDATE FORUMS" in s.upper() for s in advanced) == 1
    finished = count("POST", f"{url}/finish")
    # token and user; lock; who is on air; finish; ask the line; the undo log's row (on
    # PostgreSQL: the check takes the lock, the read finishes, the last two are one).
    assert len(finished) == (3 if folded else 6), finished


def test_a_remove_and_a_requeue_take_the_queue_lock_once(client, app, producer):
    forum = live_forum()
    first, second = (make_signup(forum, status="queued") for _ in range(2))
    url = f"/api/v1/forums/{forum.slug}/queue"
    client.post(f"{url}/next", headers=producer)  # first on air
    client.post(f"{url}/next", headers=producer)  # first done, second on air

    def locks(method: str, path: str, **kwargs) -> int:  # type: ignore[no-untyped-def]
        statements = sent(client, producer, method, path, **kwargs)
        return sum(s.lstrip().upper().startswith("UPDATE FORUMS") for s in statements)

    # Put the finished caller back: the place that refused (not approved) and the one lock
    # the capture and the requeue share; then the undo log's version.
    assert locks("POST", url, json={"signup_id": first.id}) == 3
    # Take them out again: one lock, and the undo log's version.
    assert locks("DELETE", f"{url}/{first.id}") == 2
    db.session.expire_all()
    assert db.session.get(Signup, first.id).status == "approved"
    assert db.session.get(Signup, second.id).status == "on_air"


def test_the_boards_page_is_few_statements(client, app, producer):
    forum = live_forum()
    waiting = [make_signup(forum, status="queued") for _ in range(5)]
    url = f"/api/v1/forums/{forum.slug}/queue"
    client.post(url, json={"signup_id": waiting[4].id, "position": 1}, headers=producer)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    def page() -> dict:  # type: ignore[type-arg]
        statements.clear()
        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = client.get(f"{url}?limit=3", headers=producer)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        assert response.status_code == 200
        return response.get_json()  # type: ignore[no-any-return]

    body = page()
    # token, user, forum and tag; who is on air, how many wait and the undo's id;
    # the first three; the forum's lines; the average call.
    assert len(statements) == 5, statements
    assert body["undo"] is None and body["total_waiting"] == 5
    assert [s["id"] for s in body["waiting"]] == [waiting[4].id, waiting[0].id, waiting[1].id]
    step = client.post(f"{url}/next", headers=producer).get_json()
    body = page()
    # ... and the action that can be undone, loaded only when there is one.
    assert len(statements) == 6, statements
    assert body["undo"]["id"] == step["action"]["id"] and body["total_waiting"] == 4
    assert body["on_air"]["id"] == waiting[4].id


def _queue_invariants(forum_id: int) -> tuple[list[int], int]:
    keys = db.session.scalars(
        sa.select(Signup.queue_key).where(Signup.forum_id == forum_id, Signup.status == "queued")
    ).all()
    assert len(keys) == len(set(keys)), "duplicate queue positions"
    on_air = db.session.scalar(
        sa.select(sa.func.count()).where(Signup.forum_id == forum_id, Signup.status == "on_air")
    )
    assert on_air <= 1
    return keys, on_air


@pytest.mark.parametrize("rounds", [40])
def test_two_producers_at_once_lose_nobody(make_app, rounds):
    """Producers moving, adding, removing and advancing at once keep a consistent queue.

    Runs on SQLite too; on PostgreSQL this is the proof the issue asks for.
    """
    app = make_app()
    with app.app_context():
        forum = live_forum()
        ids = [make_signup(forum, status="queued").id for _ in range(20)]
        ids += [make_signup(forum, status="approved").id for _ in range(10)]
        headers = bearer(make_user("producer")[1])
        slug, forum_id = forum.slug, forum.id
    errors: list[str] = []
    barrier = threading.Barrier(4)

    def producer_thread(seed: int) -> None:
        rng = random.Random(seed)
        client = app.test_client()
        url = f"/api/v1/forums/{slug}/queue"
        barrier.wait()
        for _ in range(rounds):
            action = rng.random()
            if action < 0.6:
                response = client.post(
                    url,
                    json={"signup_id": rng.choice(ids), "position": rng.randint(1, 25)},
                    headers=headers,
                )
            elif action < 0.8:
                response = client.delete(f"{url}/{rng.choice(ids)}", headers=headers)
            else:
                response = client.post(f"{url}/next", headers=headers)
            if response.status_code not in (200, 404, 409):
                errors.append(f"{response.status_code} {response.get_data(as_text=True)}")

    threads = [threading.Thread(target=producer_thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    with app.app_context():
        keys, on_air = _queue_invariants(forum_id)
        statuses = dict(
            db.session.execute(
                sa.select(Signup.status, sa.func.count())
                .where(Signup.forum_id == forum_id)
                .group_by(Signup.status)
            ).all()
        )
        # Nobody lost: every signup is still somewhere, in a status the queue gives.
        assert sum(statuses.values()) == 30
        assert set(statuses) <= {"queued", "approved", "on_air", "done"}
        client = app.test_client()
        snapshot = client.get(f"/api/v1/forums/{slug}/queue", headers=headers).get_json()
        assert len(snapshot["waiting"]) == len(keys) == snapshot["total_waiting"]
        assert (snapshot["on_air"] is not None) == (on_air == 1)


@pytest.mark.postgres
def test_concurrent_next_on_postgres_puts_each_caller_on_air_once(make_app):
    app = make_app()
    with app.app_context():
        forum = live_forum()
        ids = [make_signup(forum, status="queued").id for _ in range(30)]
        headers = bearer(make_user("producer")[1])
        slug = forum.slug
    seen: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def press_next() -> None:
        client = app.test_client()
        barrier.wait()
        for _ in range(5):
            body = client.post(f"/api/v1/forums/{slug}/queue/next", headers=headers).get_json()
            with lock:
                seen.append(body["on_air"]["id"])

    threads = [threading.Thread(target=press_next) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(seen) == sorted(ids), "each queued caller goes on air exactly once, in turn"
