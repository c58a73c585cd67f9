"""Live controls: undo of every live action, what next/finish say, going live early,
pronunciation notes, where presenters land (issue 12, sections 1, 4 and 6)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from phonein.extensions import db
from phonein.live import calls
from phonein.models import Forum, LiveAction, Message, Signup
from phonein.sms import outbox
from phonein.times import rfc3339, utcnow

from .conftest import login, make_forum, make_signup


def live_forum(**values):  # type: ignore[no-untyped-def]
    now = utcnow()
    return make_forum(starts_at=now - timedelta(minutes=5), now=now, **values)


def waiting(client, forum, headers) -> list[int]:  # type: ignore[no-untyped-def]
    body = client.get(f"/api/v1/forums/{forum.slug}/queue", headers=headers).get_json()
    return [s["id"] for s in body["waiting"]]


def board(client, forum, headers):  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/forums/{forum.slug}/queue", headers=headers).get_json()


def statuses(*signups) -> list[str]:  # type: ignore[no-untyped-def]
    db.session.expire_all()
    return [db.session.get(Signup, s.id).status for s in signups]


def texts(**where) -> list[Message]:  # type: ignore[no-untyped-def]
    db.session.expire_all()
    stmt = sa.select(Message).order_by(Message.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(Message, key) == value)
    return list(db.session.scalars(stmt))


def test_undo_of_a_mis_clicked_next_restores_who_is_on_air_and_the_order(client, producer):
    forum = live_forum()
    a, b, c, d = (make_signup(forum, status="queued") for _ in range(4))
    url = f"/api/v1/forums/{forum.slug}"
    first = client.post(f"{url}/queue/next", headers=producer).get_json()
    assert first["on_air"]["id"] == a.id and first["action"]["kind"] == "next"
    keys_before = {s.id: db.session.get(Signup, s.id).queue_key for s in (b, c, d)}
    # The mis-click: a is cut off, b goes on air, c is texted "you're next".
    step = client.post(f"{url}/queue/next", headers=producer).get_json()
    assert step["done"]["id"] == a.id and step["on_air"]["id"] == b.id
    assert step["message"].startswith(f"{a.name} is done; {b.name} is on air.")
    assert [m.signup_id for m in texts(kind="next_up", status="pending")][-1] == c.id
    action = step["action"]
    assert action["expires_at"] > rfc3339(utcnow())
    # The log keeps what changed, not the whole queue: a and b, by id, with no names.
    kept = db.session.get(LiveAction, action["id"]).before
    assert set(kept["signups"]) == {str(a.id), str(b.id)}
    assert a.name not in repr(kept)
    assert board(client, forum, producer)["undo"]["id"] == action["id"]

    undone = client.post(f"{url}/actions/{action['id']}/undo", headers=producer)
    assert undone.status_code == 200, undone.get_json()
    assert undone.get_json()["already"] is False
    assert statuses(a, b, c, d) == ["on_air", "queued", "queued", "queued"]
    assert waiting(client, forum, producer) == [b.id, c.id, d.id]
    db.session.expire_all()
    assert {s.id: db.session.get(Signup, s.id).queue_key for s in (b, c, d)} == keys_before
    assert db.session.get(Signup, a.id).done_at is None
    # c's "you're next" had not gone out: it never will (b is first again).
    assert [m.status for m in texts(kind="next_up", signup_id=c.id)] == ["cancelled"]
    # Idempotent: a second undo changes nothing and says so.
    again = client.post(f"{url}/actions/{action['id']}/undo", headers=producer).get_json()
    assert again["already"] is True
    assert statuses(a, b, c, d) == ["on_air", "queued", "queued", "queued"]
    assert board(client, forum, producer)["undo"] is None


def test_undo_of_a_next_that_picked_a_caller_further_back_restores_the_queue(client, producer):
    forum = live_forum()
    a, b, c, d, e = (make_signup(forum, status="queued") for _ in range(5))
    url = f"/api/v1/forums/{forum.slug}"
    client.post(f"{url}/queue/next", headers=producer)  # a on air, b told
    db.session.expire_all()
    keys_before = {s.id: db.session.get(Signup, s.id).queue_key for s in (b, c, d, e)}
    told_before = [m.id for m in texts(kind="next_up")]
    # The producer picks d, fourth in line: a is done, b is still next (told already).
    step = client.post(f"{url}/queue/next", json={"signup_id": d.id}, headers=producer)
    body = step.get_json()
    assert (body["done"]["id"], body["on_air"]["id"], body["next_up"]["id"]) == (a.id, d.id, b.id)
    assert [m.id for m in texts(kind="next_up")] == told_before  # nobody new is told
    kept = db.session.get(LiveAction, body["action"]["id"]).before
    assert set(kept["signups"]) == {str(a.id), str(d.id)} and kept["written"] == []
    assert waiting(client, forum, producer) == [b.id, c.id, e.id]

    undone = client.post(f"{url}/actions/{body['action']['id']}/undo", headers=producer)
    assert undone.status_code == 200, undone.get_json()
    assert statuses(a, b, c, d, e) == ["on_air", "queued", "queued", "queued", "queued"]
    assert waiting(client, forum, producer) == [b.id, c.id, d.id, e.id]
    db.session.expire_all()
    assert {s.id: db.session.get(Signup, s.id).queue_key for s in (b, c, d, e)} == keys_before
    stored = db.session.get(Signup, d.id)
    assert stored.on_air_at is None and stored.done_at is None
    # A caller who is not waiting, or not in this forum, cannot be picked.
    assert (
        client.post(f"{url}/queue/next", json={"signup_id": a.id}, headers=producer).status_code
        == 409
    )
    other = make_signup(live_forum(), status="queued")
    assert (
        client.post(f"{url}/queue/next", json={"signup_id": other.id}, headers=producer).status_code
        == 404
    )
    assert statuses(a, d) == ["on_air", "queued"]


def test_a_next_that_picks_one_of_the_first_two_reads_each_caller_once(client, producer):
    # The step reads the first two waiting and the chosen one in one statement: when the
    # chosen one is among the first two, the same row comes back twice.
    forum = live_forum()
    a, b, c, d = (make_signup(forum, status="queued") for _ in range(4))
    url = f"/api/v1/forums/{forum.slug}"
    first = client.post(f"{url}/queue/next", json={"signup_id": a.id}, headers=producer)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert (body["done"], body["on_air"]["id"], body["next_up"]["id"]) == (None, a.id, b.id)
    # The second in line picked: the first stays next.
    body = client.post(f"{url}/queue/next", json={"signup_id": c.id}, headers=producer).get_json()
    assert (body["done"]["id"], body["on_air"]["id"], body["next_up"]["id"]) == (a.id, c.id, b.id)
    assert waiting(client, forum, producer) == [b.id, d.id]
    assert statuses(a, b, c, d) == ["done", "queued", "on_air", "queued"]


def test_undo_of_a_next_that_hung_up_a_line_says_to_call_back(client, producer):
    forum = live_forum()
    a, b = (make_signup(forum, status="queued") for _ in range(2))
    calls.record_inbound(forum, a, "CA" + "2" * 32, a.phone, utcnow())
    db.session.commit()
    url = f"/api/v1/forums/{forum.slug}"
    first = client.post(f"{url}/queue/next", headers=producer).get_json()
    assert first["message"] == f"{a.name} is on air."  # on the line: nothing to call back
    assert db.session.get(LiveAction, first["action"]["id"]).before["on_the_line"] == [a.id]
    # a is done: their line is hung up once the step commits; b has no line.
    step = client.post(f"{url}/queue/next", headers=producer).get_json()
    assert db.session.get(LiveAction, step["action"]["id"]).before["on_the_line"] == [a.id]
    assert calls.live_call_of(a.id) is None
    undone = client.post(f"{url}/actions/{step['action']['id']}/undo", headers=producer)
    assert f"{a.name}'s call had ended: call them back." in undone.get_json()["message"]
    assert statuses(a, b) == ["on_air", "queued"]


def test_undo_says_a_you_are_next_already_sent_is_not_unsent(client, producer):
    forum = live_forum()
    a, b, c = (make_signup(forum, status="queued") for _ in range(3))
    url = f"/api/v1/forums/{forum.slug}"
    client.post(f"{url}/queue/next", headers=producer)
    action = client.post(f"{url}/queue/next", headers=producer).get_json()["action"]
    [sent] = texts(kind="next_up", signup_id=c.id)
    sent.status = "sent"
    db.session.commit()
    body = client.post(f"{url}/actions/{action['id']}/undo", headers=producer).get_json()
    assert f"{c.name} was already texted" in body["message"]
    assert "not un-sent" in body["message"]
    assert texts(kind="next_up", signup_id=c.id)[0].status == "sent"
    assert statuses(a, b, c) == ["on_air", "queued", "queued"]


def test_undo_is_refused_once_expired_or_after_a_later_change(client, producer):
    forum = live_forum()
    a, b, c = (make_signup(forum, status="queued") for _ in range(3))
    url = f"/api/v1/forums/{forum.slug}"
    action = client.post(f"{url}/queue/next", headers=producer).get_json()["action"]
    db.session.execute(
        sa.update(LiveAction)
        .where(LiveAction.id == action["id"])
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    late = client.post(f"{url}/actions/{action['id']}/undo", headers=producer)
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "undo_expired"
    assert statuses(a) == ["on_air"]
    # A later change (b moved) makes the next action's undo dishonest: refused.
    action = client.post(f"{url}/queue/next", headers=producer).get_json()["action"]
    client.post(f"{url}/queue", json={"signup_id": c.id, "position": 1}, headers=producer)
    changed = client.post(f"{url}/actions/{action['id']}/undo", headers=producer)
    assert changed.status_code == 409 and changed.get_json()["error"]["code"] == "changed_since"
    assert statuses(a, b) == ["done", "on_air"]
    # Unknown actions, and another forum's, are 404.
    other = live_forum()
    assert client.post(f"{url}/actions/999999/undo", headers=producer).status_code == 404
    assert (
        client.post(
            f"/api/v1/forums/{other.slug}/actions/{action['id']}/undo", headers=producer
        ).status_code
        == 404
    )


def test_presenters_cannot_undo_or_see_the_undo(client, producer, presenter):
    forum = live_forum()
    make_signup(forum, status="queued")
    url = f"/api/v1/forums/{forum.slug}"
    action = client.post(f"{url}/queue/next", headers=producer).get_json()["action"]
    assert client.post(f"{url}/actions/{action['id']}/undo", headers=presenter).status_code == 403
    assert board(client, forum, presenter)["undo"] is None


def test_next_and_finish_say_what_happened(client, producer):
    forum = live_forum()
    url = f"/api/v1/forums/{forum.slug}/queue"
    empty = client.post(f"{url}/finish", headers=producer).get_json()
    assert empty["message"] == "Nobody was on air: nothing changed." and empty["action"] is None
    nothing = client.post(f"{url}/next", headers=producer).get_json()
    assert nothing["message"].startswith("Nobody was waiting and nobody was on air")
    assert nothing["action"] is None
    on_the_line, off_the_line = (make_signup(forum, status="queued") for _ in range(2))
    calls.record_inbound(forum, on_the_line, "CA" + "1" * 32, on_the_line.phone, utcnow())
    db.session.commit()
    step = client.post(f"{url}/next", headers=producer).get_json()
    assert step["message"] == f"{on_the_line.name} is on air."
    step = client.post(f"{url}/next", headers=producer).get_json()
    assert f"{off_the_line.name} is not on the line: call them back." in step["message"]
    last = client.post(f"{url}/next", headers=producer).get_json()
    assert last["message"] == (
        f"Nobody was waiting: {off_the_line.name} is done, and nobody is on air."
    )
    # Undoing that brings the caller back on air.
    client.post(
        f"/api/v1/forums/{forum.slug}/actions/{last['action']['id']}/undo", headers=producer
    )
    assert statuses(off_the_line) == ["on_air"]


def test_a_done_caller_goes_back_in_the_queue_and_that_can_be_undone(client, producer):
    forum = live_forum()
    a, b = (make_signup(forum, status="queued") for _ in range(2))
    url = f"/api/v1/forums/{forum.slug}"
    client.post(f"{url}/queue/next", headers=producer)
    client.post(f"{url}/queue/finish", headers=producer)
    assert statuses(a) == ["done"]
    back = client.post(f"{url}/queue", json={"signup_id": a.id, "position": 1}, headers=producer)
    assert back.status_code == 200, back.get_json()
    assert back.get_json()["action"]["kind"] == "requeue"
    assert waiting(client, forum, producer) == [a.id, b.id]
    client.post(f"{url}/actions/{back.get_json()['action']['id']}/undo", headers=producer)
    assert statuses(a, b) == ["done", "queued"]
    assert waiting(client, forum, producer) == [b.id]
    # Taking someone out of the queue is undone the same way, back in their place.
    c = make_signup(forum, status="queued")
    removed = client.delete(f"{url}/queue/{b.id}", headers=producer).get_json()
    client.post(f"{url}/actions/{removed['action']['id']}/undo", headers=producer)
    assert waiting(client, forum, producer) == [b.id, c.id]


def test_close_and_its_undo_bring_back_the_queue_and_the_show(client, producer):
    forum = live_forum()
    a, b, c = (make_signup(forum, status="queued") for _ in range(3))
    url = f"/api/v1/forums/{forum.slug}"
    client.post(f"{url}/queue/next", headers=producer)
    closed = client.post(f"{url}/live", json={"status": "closed"}, headers=producer).get_json()
    assert closed["status"] == "closed" and closed["action"]["kind"] == "close"
    assert statuses(a, b, c) == ["done", "dropped", "dropped"]
    assert board(client, forum, producer)["status"] == "closed"
    client.post(f"{url}/actions/{closed['action']['id']}/undo", headers=producer)
    assert statuses(a, b, c) == ["on_air", "queued", "queued"]
    assert waiting(client, forum, producer) == [b.id, c.id]
    db.session.expire_all()
    stored = db.session.get(Forum, forum.id)
    assert stored.status_at(utcnow()) == "live" and stored.closed_at is None


def test_going_live_days_early_keeps_the_announced_start_and_every_reminder(client, producer):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(days=2), now=now)
    announced, planned_end = forum.starts_at, forum.ends_at
    make_signup(forum)
    url = f"/api/v1/forums/{forum.slug}"
    live = client.post(f"{url}/live", json={"status": "live"}, headers=producer)
    assert live.status_code == 200, live.get_json()
    body = live.get_json()
    assert body["status"] == "live" and body["starts_at"] == rfc3339(announced)
    assert body["ends_at"] == rfc3339(planned_end)
    assert "keep the announced start" in body["message"]
    assert texts(kind="rescheduled") == []
    # The reminder waves still come, before the announced start.
    due = outbox.due_waves(announced - timedelta(hours=1), timedelta(0))
    assert [(f.id, offset) for f, offset, _ in due] == [(forum.id, 3600)]
    # The public forum says the announced start too.
    page = client.get(f"/api/v1/forums/{forum.slug}").get_json()
    assert page["starts_at"] == rfc3339(announced)
    # Undo: open again, as it was.
    client.post(f"{url}/actions/{body['action']['id']}/undo", headers=producer)
    db.session.expire_all()
    assert db.session.get(Forum, forum.id).status == "open"


def test_going_live_early_can_text_listeners_and_undo_restores_their_reminders(client, producer):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(minutes=30), now=now)
    announced = forum.starts_at
    listener = make_signup(forum, now=now - timedelta(hours=1))
    # The 1-hour wave is already written and waits to be sent.
    for f, offset, due in outbox.due_waves(now, timedelta(0)):
        outbox.fan_out_wave(f, offset, due, now)
    db.session.commit()
    [reminder] = texts(kind="reminder", status="pending")
    url = f"/api/v1/forums/{forum.slug}"
    body = client.post(
        f"{url}/live", json={"status": "live", "announce": "text"}, headers=producer
    ).get_json()
    assert body["starts_at"] != rfc3339(announced) and "texted" in body["message"]
    [moved] = texts(kind="rescheduled", signup_id=listener.id)
    assert moved.status == "pending"
    assert texts(kind="reminder")[0].status == "cancelled"
    client.post(f"{url}/actions/{body['action']['id']}/undo", headers=producer)
    db.session.expire_all()
    assert db.session.get(Forum, forum.id).starts_at == announced
    assert db.session.get(Message, reminder.id).status == "pending"
    assert db.session.get(Message, moved.id).status == "cancelled"


def test_cancel_is_undone_with_its_texts_while_they_wait(client, producer):
    forum = make_forum()
    make_signup(forum)
    url = f"/api/v1/forums/{forum.slug}"
    body = client.post(f"{url}/live", json={"status": "cancelled"}, headers=producer).get_json()
    [cancellation] = texts(kind="cancelled")
    undone = client.post(f"{url}/actions/{body['action']['id']}/undo", headers=producer)
    assert undone.status_code == 200
    db.session.expire_all()
    assert db.session.get(Forum, forum.id).status == "open"
    assert db.session.get(Message, cancellation.id).status == "cancelled"
    assert client.post(f"{url}/live", json={"status": "later"}, headers=producer).status_code == 422


def test_pronunciation_is_written_by_producers_and_shown_to_presenters(client, producer, presenter):
    forum = live_forum()
    signup = make_signup(forum, name="山田 花子", status="queued")
    url = f"/api/v1/signups/{signup.id}/pronunciation"
    r = client.put(url, json={"pronunciation": "  YAH-ma-dah\nHAH-na-ko "}, headers=producer)
    assert r.status_code == 200 and r.get_json()["pronunciation"] == "YAH-ma-dah HAH-na-ko"
    client.post(f"/api/v1/signups/{signup.id}/screen", json={"stance": "against"}, headers=producer)
    [shown] = board(client, forum, presenter)["waiting"]
    assert shown["pronunciation"] == "YAH-ma-dah HAH-na-ko" and shown["stance"] == "against"
    assert "phone" not in shown
    assert client.put(url, json={"pronunciation": "x"}, headers=presenter).status_code == 403
    assert client.put(url, json={"pronunciation": "x" * 201}, headers=producer).status_code == 422
    cleared = client.put(url, json={"pronunciation": None}, headers=producer).get_json()
    assert cleared["pronunciation"] is None


def test_a_presenter_lands_on_the_board_of_the_live_or_next_forum(client, app):
    now = utcnow()
    make_forum(title="Later", starts_at=now + timedelta(days=3), now=now)
    soon = make_forum(title="Soon", starts_at=now + timedelta(hours=1), now=now)
    user = login(client, "presenter")
    assert user.role == "presenter"
    landing = client.get("/board")
    assert landing.status_code == 302 and landing.location.endswith(f"/board/{soon.slug}")
    live = live_forum(title="On now")
    assert client.get("/board").location.endswith(f"/board/{live.slug}")
    page = client.get(f"/board/{live.slug}").get_data(as_text=True)
    assert 'id="board-show"' in page


def test_presenter_login_goes_to_the_board(client, app):
    from .conftest import make_user

    user, _ = make_user("presenter")
    r = client.post(
        "/producer/login", data={"email": user.email, "password": "correct horse battery"}
    )
    assert r.status_code == 302 and r.location.endswith("/board")
    assert "No show on air" in client.get("/board").get_data(as_text=True)


def test_the_queue_page_offers_undo_and_the_forms_work_without_javascript(client, app):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(days=1), now=now)
    login(client, "producer")
    page = client.get(f"/producer/forums/{forum.slug}/queue").get_data(as_text=True)
    assert 'name="announce" value="keep" checked' in page and "<kbd>N</kbd>" in page
    went = client.post(
        f"/producer/forums/{forum.slug}/live", data={"status": "live", "announce": "keep"}
    )
    assert went.status_code == 302
    page = client.get(f"/producer/forums/{forum.slug}/queue").get_data(as_text=True)
    assert "keep the announced start" in page
    action = db.session.scalars(sa.select(LiveAction)).one()
    assert f'data-action-id="{action.id}"' in page and "Went live." in page
    undone = client.post(f"/producer/forums/{forum.slug}/actions/{action.id}/undo")
    assert undone.status_code == 302
    page = client.get(undone.location).get_data(as_text=True)
    assert "Undone: Went live." in page
    db.session.expire_all()
    assert db.session.get(Forum, forum.id).status == "open"
    again = client.post(f"/producer/forums/{forum.slug}/actions/{action.id}/undo")
    assert "Already undone" in client.get(again.location).get_data(as_text=True)


def test_the_forum_pages_status_buttons_are_undoable_live_actions(client, app):
    forum = live_forum()
    signup = make_signup(forum, status="queued")
    login(client, "producer")
    closed = client.post(f"/producer/forums/{forum.slug}/status", data={"status": "closed"})
    assert closed.status_code == 302 and closed.location.endswith(f"/forums/{forum.slug}/queue")
    page = client.get(closed.location).get_data(as_text=True)
    assert "The show is closed" in page and "Closed the show." in page
    assert statuses(signup) == ["dropped"]
    action = db.session.scalars(sa.select(LiveAction)).one()
    client.post(f"/producer/forums/{forum.slug}/actions/{action.id}/undo")
    assert statuses(signup) == ["queued"]
    # Publishing is no live action: it stays on the forum's page.
    refused = client.post(f"/producer/forums/{forum.slug}/status", data={"status": "published"})
    assert refused.location.endswith(f"/forums/{forum.slug}/edit")


def test_a_nul_in_the_path_is_a_404_not_a_database_error(client, producer):
    # PostgreSQL refuses NUL in text: it must never reach a query (the fuzz test found it).
    for method, url in [
        ("GET", "/api/v1/forums/%00/queue"),
        ("DELETE", "/api/v1/forums/%00/queue/1"),
        ("POST", "/api/v1/forums/%00/actions/1/undo"),
        ("POST", "/api/v1/forums/a%00b/live"),
    ]:
        assert client.open(url, method=method, headers=producer).status_code == 404, url
