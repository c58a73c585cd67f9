"""The undo log of live actions: what an action changed, kept for a while, and its undo.

A live action (remove, requeue, go live, close, cancel) runs between ``capture`` and
``record``: ``capture`` reads what the action may change (the forum's times and status,
the signups queued or on air and the ones it names, the forum's pending texts, who is on
the line) and ``record`` keeps, in a ``LiveAction`` row, the part that did change as it
was before. Next and finish, the busiest, go through ``step``, which keeps the same from
what the step's own statements read and return (no reads of its own). ``undo`` puts it
back exactly (queue keys included, so the order is the same) while the row has not expired
(the database's clock) and the queue has not changed since (``queue_version``): undoing
over someone else's later change would not restore what the producer saw.

What undo cannot take back, it says: a text already handed to the provider is not
un-sent (one still pending is cancelled, and texts the action cancelled are pending
again); a line the action hung up stays hung up (the caller is back where they were, to
call back). The row holds ids and times only, no names or numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from ..database import changed, clock, dialect, per_dialect
from ..errors import Conflict, NotFound
from ..extensions import db
from ..models import (
    CALL_LIVE,
    MAX_ID,
    Call,
    CallCommand,
    CallDirection,
    CallState,
    Forum,
    ForumStatus,
    LiveAction,
    Message,
    MessageKind,
    MessageStatus,
    Signup,
    SignupStatus,
)
from ..sms import outbox
from ..times import utcnow
from . import dispatch, queue

# How long an action can be undone: long enough to notice a mis-click and reach for it.
UNDO_WINDOW = timedelta(seconds=30)

FORUM_FIELDS = (
    "status",
    "starts_at",
    "duration_minutes",
    "ends_at",
    "signup_closes_at",
    "closed_at",
)
SIGNUP_FIELDS = queue.QUEUE_FIELDS
TIME_FIELDS = {"starts_at", "ends_at", "signup_closes_at", "closed_at", "on_air_at", "done_at"}


class Kind(StrEnum):
    NEXT = "next"
    FINISH = "finish"
    REMOVE = "remove"
    REQUEUE = "requeue"
    GO_LIVE = "go_live"
    CLOSE = "close"
    CANCEL = "cancel"


# What each action did, as the log says it (no names: the row outlives screening).
LABELS = {
    Kind.NEXT: "Next caller",
    Kind.FINISH: "Finish call",
    Kind.REMOVE: "Taken out of the queue",
    Kind.REQUEUE: "Put back in the queue",
    Kind.GO_LIVE: "Went live",
    Kind.CLOSE: "Closed the show",
    Kind.CANCEL: "Cancelled the show",
}


@dataclass
class Before:
    """What an action may change, read just before it."""

    forum: dict[str, Any]
    signups: dict[int, dict[str, Any]]
    pending: set[int]
    on_the_line: set[int]
    # Set for a queue action: ``pending`` holds only texts written since then.
    since: datetime | None = None


@dataclass
class Undone:
    """What an undo did, and what it could not take back."""

    action: LiveAction
    forum: Forum
    already: bool = False
    # Names of restored callers whose line the action ended: to call back.
    lines_ended: list[str] = field(default_factory=list)
    # Names of callers back in the queue whose line is still in the on-air conference.
    still_on_air: list[str] = field(default_factory=list)
    # (kind, name) of texts the action wrote that had already gone out.
    texts_sent: list[tuple[str, str]] = field(default_factory=list)
    # Texts the action had cancelled that are pending again.
    texts_restored: int = 0

    @property
    def message(self) -> str:
        if self.already:
            return f"Already undone: {self.action.message}."
        parts = [f"Undone: {self.action.message}."]
        parts += [f"{name}'s call had ended: call them back." for name in self.lines_ended]
        parts += [
            f"{name} is still in the on-air conference: hold or drop their line."
            for name in self.still_on_air
        ]
        for kind, name in self.texts_sent:
            parts.append(f"{name} was already texted ({_kind_text(kind)}); a text is not un-sent.")
        if self.texts_restored:
            parts.append(f"{self.texts_restored} text(s) it had cancelled will go out after all.")
        return " ".join(parts)


def _kind_text(kind: str) -> str:
    texts: dict[str, str] = {
        MessageKind.NEXT_UP: "\u201cyou're next\u201d",
        MessageKind.RESCHEDULED: "the new time",
        MessageKind.CANCELLED: "the cancellation",
        MessageKind.GOODBYE: "the goodbye",
    }
    return texts.get(kind, kind)


def _dump(name: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _load(name: str, value: Any) -> Any:
    if name in TIME_FIELDS and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _signup_rows(forum_id: int, ids: set[int], *, whole: bool = False) -> dict[int, dict[str, Any]]:
    """Read the queue fields of the signups ``ids``, of whoever is on air, and of the head
    of the queue, or (``whole``) of everyone queued: a next or finish reads a few rows,
    however long the queue."""
    columns = [getattr(Signup, name) for name in SIGNUP_FIELDS]
    touched: sa.ColumnElement[bool]
    if whole:
        touched = Signup.status.in_([SignupStatus.QUEUED, SignupStatus.ON_AIR])
    else:
        head = (
            sa.select(sa.func.min(Signup.queue_key))
            .where(Signup.forum_id == forum_id)
            .scalar_subquery()
        )
        touched = sa.or_(Signup.status == SignupStatus.ON_AIR, Signup.queue_key == head)
    where = sa.or_(touched, Signup.id.in_(ids)) if ids else touched
    rows = db.session.execute(
        sa.select(Signup.id, *columns).where(Signup.forum_id == forum_id, where)
    ).all()
    return {
        row.id: {name: _dump(name, getattr(row, name)) for name in SIGNUP_FIELDS} for row in rows
    }


def _pending(forum_id: int, since: datetime | None) -> set[int]:
    """The forum's pending texts; with ``since``, only the "you're next" texts written
    since then (all a queue action writes: an indexed range, not the whole outbox)."""
    stmt = sa.select(Message.id).where(
        Message.forum_id == forum_id, Message.status == MessageStatus.PENDING
    )
    if since is not None:
        stmt = stmt.where(Message.created_at >= since, Message.kind == MessageKind.NEXT_UP)
    return set(db.session.scalars(stmt))


def _on_the_line(forum_id: int) -> set[int]:
    return {
        signup_id
        for signup_id in db.session.scalars(
            sa.select(Call.signup_id).where(
                Call.forum_id == forum_id, Call.state.in_(CALL_LIVE), Call.signup_id.is_not(None)
            )
        )
        if signup_id is not None
    }


def capture(forum: Forum, now: datetime, *signup_ids: int, whole: bool = False) -> Before:
    """Read what an action on ``forum`` at ``now`` may change (after the forum's lock).

    A queue action (remove, requeue; next and finish go through ``step``) changes the
    signups it names, the one on air and the head of the queue, and writes at most a
    "you're next"; ``whole`` (go live, close, cancel) may change every queued signup and
    any pending text.
    """
    db.session.flush()
    # An id past the database's integers names no signup (and must not reach SQL).
    ids = {i for i in signup_ids if 0 < i <= MAX_ID}
    return Before(
        forum={name: _dump(name, getattr(forum, name)) for name in FORUM_FIELDS},
        signups=_signup_rows(forum.id, ids, whole=whole),
        pending=_pending(forum.id, None if whole else now),
        on_the_line=_on_the_line(forum.id),
        since=None if whole else now,
    )


def record(
    before: Before, forum: Forum, kind: Kind, now: datetime, user_id: int | None = None
) -> LiveAction | None:
    """Keep what the action changed as it was before; None when it changed nothing."""
    db.session.flush()
    after = _signup_rows(forum.id, set(before.signups))
    signups = {
        str(signup_id): values
        for signup_id, values in before.signups.items()
        if after.get(signup_id) != values
    }
    forum_now = {name: _dump(name, getattr(forum, name)) for name in FORUM_FIELDS}
    forum_was = {k: v for k, v in before.forum.items() if forum_now[k] != v}
    pending = _pending(forum.id, before.since)
    cancelled = sorted(before.pending - pending)
    written = sorted(pending - before.pending)
    if not (signups or forum_was or cancelled or written):
        return None
    version = db.session.scalar(
        sa.update(Forum)
        .where(Forum.id == forum.id)
        .values(queue_version=Forum.queue_version + 1)
        .returning(Forum.queue_version)
        .execution_options(synchronize_session=False)
    )
    assert version is not None
    # What the UPDATE just wrote: set as loaded, so that no second UPDATE follows.
    set_committed_value(forum, "queue_version", version)
    return _write(
        forum,
        kind,
        now,
        user_id,
        {
            "forum": forum_was,
            "signups": signups,
            "cancelled": cancelled,
            "written": written,
            "on_the_line": sorted(before.on_the_line & {int(i) for i in signups}),
        },
    )


def _write(
    forum: Forum, kind: Kind, now: datetime, user_id: int | None, before: dict[str, Any]
) -> LiveAction:
    """Insert the log row; the action's version is the forum's as it stands now."""
    params = _write_params(forum, kind, now, user_id, before)
    action: LiveAction = db.session.scalars(_write_statement(), params).one()
    return action


def _write_params(
    forum: Forum, kind: Kind, now: datetime, user_id: int | None, before: dict[str, Any]
) -> dict[str, Any]:
    params = {
        "a_forum": forum.id,
        "a_user": user_id,
        "a_kind": kind.value,
        "a_message": LABELS[kind],
        "a_before": before,
        "a_version": forum.queue_version,
        "a_now": now,
    }
    if dialect() != "postgresql":
        params["a_expires"] = utcnow() + UNDO_WINDOW  # what ``clock`` reads there
    return params


@functools.cache
def _step_statement(on_air: Any, text: Any, lines: Any) -> Any:
    """``_write_step``'s statement (PostgreSQL), built once per process for each shape
    (which of the three writes there are: they are built once too).

    WITH step_up AS (UPDATE signups …), step_texted AS (INSERT INTO messages … RETURNING
    id), step_lines AS (UPDATE calls … RETURNING signup_id), step_action AS (INSERT INTO
    live_actions … RETURNING *) SELECT step_action.*, the texts' ids, the lines' signups.
    """
    table = LiveAction.__table__
    texted = text.cte("step_texted") if text is not None else None
    lines_cte = lines.cte("step_lines") if lines is not None else None

    def ids(cte: Any, name: str) -> Any:
        if cte is None:
            return sa.cast(sa.literal("[]"), JSONB)
        column = cte.c[name]
        found = sa.select(sa.func.jsonb_agg(aggregate_order_by(column, column))).scalar_subquery()
        return sa.func.coalesce(found, sa.cast(sa.literal("[]"), JSONB))

    def array(cte: Any, name: str) -> Any:
        if cte is None:
            return sa.null()
        return sa.select(sa.func.array_agg(cte.c[name])).scalar_subquery()

    before = sa.cast(sa.bindparam("a_before", type_=JSONB), JSONB).op("||")(
        sa.func.jsonb_build_object(
            "written", ids(texted, "id"), "on_the_line", ids(lines_cte, "signup_id")
        )
    )
    values = _log_values(sa.cast(before, sa.JSON), clock(UNDO_WINDOW))
    logged = (
        sa.insert(table)
        .from_select(list(values), sa.select(*values.values()))
        .returning(*table.c)
        .cte("step_action")
    )
    statement = sa.select(
        aliased(LiveAction, logged), array(texted, "id"), array(lines_cte, "signup_id")
    )
    if on_air is not None:
        statement = statement.add_cte(on_air.cte("step_up"))
    return statement


def _log_values(before: Any, expires: Any) -> dict[str, Any]:
    """The log row's columns as the INSERTs write them: bind parameters ``a_…`` (as
    ``_write_params`` gives them), and the two that differ between the statements."""
    table = LiveAction.__table__
    named = {
        "forum_id": "a_forum",
        "user_id": "a_user",
        "kind": "a_kind",
        "message": "a_message",
        "version_after": "a_version",
        "created_at": "a_now",
    }
    values: dict[str, Any] = {
        column: sa.bindparam(name, type_=table.c[column].type) for column, name in named.items()
    }
    return {**values, "before": before, "expires_at": expires}


# The log row's INSERT … RETURNING, built once per dialect with bind parameters and loaded
# into a LiveAction: built anew for every "next", it and its cache key (and the ORM's
# bulk-INSERT path) cost more CPU than running it.
@per_dialect
def _write_statement() -> Any:
    table = LiveAction.__table__
    expires: Any = (
        clock(UNDO_WINDOW)
        if dialect() == "postgresql"
        else sa.bindparam("a_expires", type_=table.c.expires_at.type)
    )
    before = sa.bindparam("a_before", type_=table.c.before.type)
    insert = sa.insert(table).values(_log_values(before, expires)).returning(*table.c)
    return sa.select(LiveAction).from_statement(insert)


def step(
    slug: str,
    kind: Kind,
    now: datetime,
    chosen: int | None = None,
    user_id: int | None = None,
    *,
    taken: Forum | None = None,
) -> tuple[queue.Step, LiveAction | None]:
    """Next (``chosen``: that waiting caller rather than the head) or finish, as a live
    action; None for the action when it changed nothing.

    One queue lock, and no reads of its own: the step reads the rows it changes before
    changing them, and its statements say which texts they wrote and which lines they
    asked. The lock's version is the action's (nothing after it writes the version), and
    a step cancels no text and changes nothing of the forum's own. ``taken``: the forum,
    locked already (``queue.lock_ride``).
    """
    forum = queue.lock(slug, now, live_only=True, taken=taken)
    if kind == Kind.NEXT:
        step = queue.plan_next(forum, now, chosen)
    else:
        step = queue.plan_finish(forum, now)
    if not step.was:
        return step, None  # nobody on air and nobody to put there: nothing changed
    before: dict[str, Any] = {
        "forum": {},
        "signups": {
            str(signup_id): {name: _dump(name, value) for name, value in values.items()}
            for signup_id, values in step.was.items()
        },
        "cancelled": [],
    }
    if dialect() == "postgresql":
        return step, _write_step(step, kind, now, user_id, before)
    queue.write(step, now)
    before["written"] = sorted(step.texted)
    before["on_the_line"] = sorted(step.on_the_line & set(step.was))
    return step, _write(forum, kind, now, user_id, before)


def _write_step(
    step: queue.Step, kind: Kind, now: datetime, user_id: int | None, before: dict[str, Any]
) -> LiveAction:
    """On PostgreSQL: the rest of the step and its log row in one statement.

    The caller going on air, the "you're next" text, the lines and the log row are
    data-modifying CTEs of one statement: a round trip each was most of a next's time.
    The log row's ``written`` and ``on_the_line`` come from the texts and lines CTEs'
    RETURNING, in SQL. (Finishing the one on air comes before, with the step's read: the
    one-on-air index checks each row as it is written, in no set order within one
    statement.)
    """
    writes = queue.step_writes(step, now)
    folded = (writes.on_air, writes.text, writes.lines)
    statement = _step_statement(*(write and write.statement for write in folded))
    params = _write_params(step.forum, kind, now, user_id, before)
    for write in folded:
        params.update(write.params if write is not None else {})
    action, texted, lines = db.session.execute(statement, params).one()
    queue.written(step, writes, now, sorted(texted or ()), list(lines or ()))
    return cast(LiveAction, action)


def latest(forum: Forum, now: datetime) -> LiveAction | None:
    """The forum's last action if it can still be undone at ``now`` (for the boards)."""
    action = db.session.scalars(
        sa.select(LiveAction)
        .where(LiveAction.forum_id == forum.id)
        .order_by(LiveAction.id.desc())
        .limit(1)
    ).first()
    if action is None or action.undone_at is not None or action.expires_at <= now:
        return None
    if action.version_after != forum.queue_version:
        return None
    return action


def undoable(forum: Forum, now: datetime) -> sa.ScalarSelect[int]:
    """The id of the action ``latest`` would answer, as a scalar subquery (NULL: none),
    for a board to read with a query it makes anyway.

    The one action whose ``version_after`` is the forum's version is the last one: every
    action and every undo takes the queue lock, which moves the version on.
    """
    return (
        sa.select(LiveAction.id)
        .where(
            LiveAction.forum_id == forum.id,
            LiveAction.version_after == forum.queue_version,
            LiveAction.undone_at.is_(None),
            LiveAction.expires_at > now,
        )
        .order_by(LiveAction.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def undoable_action(forum: Forum, now: datetime, action_id: int | None) -> LiveAction | None:
    """Load what ``undoable`` found (None: nothing to undo; no query)."""
    if action_id is None:
        return None
    action = db.session.get(LiveAction, action_id)
    if action is None or action.undone_at is not None or action.expires_at <= now:
        return None
    return action if action.version_after == forum.queue_version else None


def undo(slug: str, action_id: int, now: datetime) -> Undone:
    """Undo the action ``action_id`` of forum ``slug``; undoing it twice changes nothing."""
    forum = queue.take_lock(slug)  # whatever its status: an undo may reopen it
    action = None
    if 0 < action_id <= MAX_ID:
        action = db.session.scalars(
            sa.select(LiveAction)
            .where(LiveAction.id == action_id, LiveAction.forum_id == forum.id)
            .execution_options(populate_existing=True)
        ).one_or_none()
    if action is None:
        raise NotFound(f"There is no action {action_id} on this forum.")
    if action.undone_at is not None:
        return Undone(action, forum, already=True)
    if forum.queue_version - 1 != action.version_after:
        raise Conflict(
            "The queue has changed since; undoing this now would not restore what you saw.",
            code="changed_since",
        )
    # The claim, on the database's clock: an expired action, or one another producer has
    # just undone, is refused here, whatever the clocks of the web processes say.
    table = LiveAction.__table__
    claimed = changed(
        sa.update(table)
        .where(table.c.id == action.id, table.c.undone_at.is_(None), table.c.expires_at > clock())
        .values(undone_at=clock())
    )
    if not claimed:
        raise Conflict("Too late to undo this: the undo window has passed.", code="undo_expired")
    db.session.refresh(action)
    result = Undone(action, forum)
    before = action.before
    _restore_forum(forum, before.get("forum", {}), now)
    restored = _restore_signups(forum, before.get("signups", {}), now)
    _restore_texts(result, before, now)
    # Lines: a caller the action hung up is back in the queue (or on air), not on the line.
    lines = _on_the_line(forum.id)
    for signup_id in before.get("on_the_line", []):
        if signup_id not in lines and signup_id in restored:
            result.lines_ended.append(restored[signup_id].name)
    on_air_lines = set(
        db.session.scalars(
            sa.select(Call.signup_id).where(
                Call.forum_id == forum.id, Call.state == CallState.ON_AIR
            )
        )
    )
    for signup in restored.values():
        if signup.status == SignupStatus.QUEUED and signup.id in on_air_lines:
            result.still_on_air.append(signup.name)
    if forum.status_at(now) == ForumStatus.LIVE:
        outbox.notify_head(forum, now)
    return result


def _restore_forum(forum: Forum, values: dict[str, Any], now: datetime) -> None:
    if not values:
        return
    was_live = forum.status_at(now) == ForumStatus.LIVE
    for name, value in values.items():
        setattr(forum, name, _load(name, value))
    db.session.flush()
    if was_live and forum.status_at(now) != ForumStatus.LIVE:
        # Went live by mistake: the studio line dialled for the show hangs up again.
        dispatch.want(forum.id, CallCommand.END, Call.direction == CallDirection.STUDIO)


def _restore_signups(
    forum: Forum, values: dict[str, dict[str, Any]], now: datetime
) -> dict[int, Signup]:
    """Put the signups' queue fields back, in two steps so that no unique index (one on
    air per forum, one key per place) sees two rows at once."""
    ids = [int(i) for i in values]
    if not ids:
        return {}
    table = Signup.__table__
    db.session.flush()
    db.session.execute(
        sa.update(table)
        .where(table.c.id.in_(ids), table.c.forum_id == forum.id)
        .values(status=SignupStatus.APPROVED, queue_key=None, updated_at=now)
    )
    for signup_id, saved in values.items():
        db.session.execute(
            sa.update(table)
            .where(table.c.id == int(signup_id), table.c.forum_id == forum.id)
            .values(**{k: _load(k, v) for k, v in saved.items()}, updated_at=now)
        )
    rows = db.session.scalars(
        sa.select(Signup).where(Signup.id.in_(ids)).execution_options(populate_existing=True)
    )
    return {signup.id: signup for signup in rows}


def _restore_texts(result: Undone, before: dict[str, Any], now: datetime) -> None:
    written = before.get("written", [])
    if written:
        outbox.cancel_pending(Message.id.in_(written), now=now, reason="live action undone")
        gone = db.session.execute(
            sa.select(Message.kind, Signup.name)
            .join(Signup, Signup.id == Message.signup_id)
            .where(Message.id.in_(written), Message.status != MessageStatus.CANCELLED)
            .order_by(Message.id)
        ).all()
        result.texts_sent = [(kind, name) for kind, name in gone]
    cancelled = before.get("cancelled", [])
    if cancelled:
        result.texts_restored = changed(
            sa.update(Message)
            .where(Message.id.in_(cancelled), Message.status == MessageStatus.CANCELLED)
            .values(status=MessageStatus.PENDING, error_message=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
