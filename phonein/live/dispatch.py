"""What phonein wants done with calls, and making those requests of Twilio.

``Call.wanted`` is written in the same transaction as its cause (the producer's "next",
the forum closing) and acted on only after that commits: right away by the request that
caused it (``database.after_commit``), and again by the scheduler's tick for anything a
crash or a Twilio error left undone. A request is claimed with a conditional UPDATE
before it is made, so two processes never make it twice at once; ``retry_stale`` makes
it again when the call did not follow.

Every claim adds one to ``Call.fence``. Just before each Twilio request the claimer proves,
with a conditional UPDATE on that number, that the claim is still its own, and makes the
request only within ``SEND_WINDOW`` of the proof (its monotonic clock, which runs on while
a process is paused): a process paused or cut off after its claim, whose request was
since claimed again by another, never makes it a second time. Times that decide (backoff
due, retry after) are the database's.

Nothing here commits except ``apply_pending``/``apply_one``, which run outside the
transactions of their causes.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .. import database, links
from ..database import Write, after_commit, changed, upsert_insert
from ..extensions import db
from ..models import (
    CALL_LIVE,
    CALL_WAITING,
    Call,
    CallCommand,
    CallDirection,
    CallState,
    Forum,
    ForumStatus,
    Signup,
    SignupStatus,
)
from ..sms import outbox
from ..times import utcnow
from ..twilio import TwilioFailure
from . import backends, calls, twiml

log = logging.getLogger("phonein.live")

# A request Twilio accepted that the call has not followed after this long is made again.
RETRY_AFTER = timedelta(seconds=15)
MAX_ATTEMPTS = 5
BACKOFF_MAX = 30
DIAL_FAILED = "dial_failed"
# A request is made only this soon after its claim was last proved (monotonic clock); it
# stays well below RETRY_AFTER less Twilio's timeout, so a retry never overlaps it.
SEND_WINDOW = 2.0


class ClaimLost(Exception):
    """Another process claimed this call's request since this one did."""


class _Proof:
    """Prove a claim just before a Twilio request; again if the last proof is stale."""

    def __init__(self, call_id: int, fence: int, command: CallCommand):
        self.call_id, self.fence, self.command = call_id, fence, command
        self.at = float("-inf")

    def __call__(self) -> None:
        if time.monotonic() - self.at < SEND_WINDOW:
            return
        asked = time.monotonic()
        table = Call.__table__
        proved = changed(
            sa.update(table)
            .where(
                table.c.id == self.call_id,
                table.c.fence == self.fence,
                table.c.applied == self.command,
            )
            .values(applied_at=database.clock())
        )
        db.session.commit()
        if not proved:
            raise ClaimLost(
                f"call {self.call_id}: {self.command} claimed again (fence {self.fence})"
            )
        self.at = asked


def soon(forum_id: int) -> None:
    """Make the forum's wanted requests once the current unit of work commits."""
    after_commit(("live", forum_id), functools.partial(apply_pending, forum_id, IN_REQUEST))


def make_soon(call: Call) -> None:
    """Make the request wanted of ``call`` once the current unit of work commits."""
    after_commit(("call", call.id), functools.partial(apply_one, call.id))


def _want(
    forum_id: int,
    command: CallCommand | sa.ColumnElement[str],
    *conditions: sa.ColumnElement[bool],
) -> sa.Update:
    same = sa.and_(Call.wanted.is_not(None), Call.wanted == command)
    return (
        sa.update(Call)
        .where(Call.forum_id == forum_id, Call.state.in_(CALL_LIVE), *conditions)
        .values(
            wanted=command,
            attempts=sa.case((same, Call.attempts), else_=0),
            error=sa.case((same, Call.error), else_=None),
            applied_at=sa.case((same, Call.applied_at), else_=None),
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


def want(
    forum_id: int,
    command: CallCommand | sa.ColumnElement[str],
    *conditions: sa.ColumnElement[bool],
) -> int:
    """Ask for ``command`` (or a per-row expression of it) on the forum's live calls
    matching ``conditions``; make it once the unit of work commits, if any call matched.

    A new command starts with a clean slate: tries spent on the last one do not count.
    """
    asked = changed(_want(forum_id, command, *conditions))
    if asked:
        # Nothing matched, nothing new to make: requests wanted before are the
        # scheduler's (and the request that wanted them made them after its commit).
        soon(forum_id)
    return asked


def step_write(done: Signup | None, on_air_now: Signup | None) -> Write | None:
    """The queue moved: the finished caller's part ends, the new one goes on air.

    One UPDATE … RETURNING signup_id for both lines ("next" is the busiest thing a
    producer does), and its parameters, not yet run (None: nobody finished and nobody went
    on air). What it returns goes to ``stepped``: which of the two are on the line, the
    statement's own answer, no second query (the undo log and the producer's message need
    to know).
    """
    if done is None and on_air_now is None:
        return None
    forum_id = (done or on_air_now).forum_id  # type: ignore[union-attr]
    params = {"step_forum": forum_id, "step_now": utcnow()}
    if done is not None:
        params["step_done"] = done.id
    if on_air_now is not None:
        params["step_on_air"] = on_air_now.id
    return Write(_after_step_statement(done is not None, on_air_now is not None), params)


def stepped(forum_id: int, returned: list[int | None]) -> set[int]:
    """After ``step_write`` ran: which signups are on the line; their requests are made
    once the step commits."""
    lines = {signup_id for signup_id in returned if signup_id is not None}
    if lines:
        soon(forum_id)  # only when a line was asked something
    return lines


@functools.cache
def _after_step_statement(done: bool, on_air: bool) -> Any:
    """``step_write``'s UPDATE … RETURNING, built once per process for each of its three
    shapes with bind parameters: built anew for every "next", it and its cache key cost
    more CPU than running it. On the table (Core): the ORM's bulk-UPDATE path costs more
    than the round trip, and the step has no pending changes for it to flush."""
    calls = Call.__table__
    asked = [
        (sa.bindparam(name, type_=sa.Integer), command)
        for name, command, wanted in (
            ("step_done", CallCommand.END, done),
            ("step_on_air", CallCommand.ON_AIR, on_air),
        )
        if wanted
    ]
    command = sa.case(*((calls.c.signup_id == signup_id, value) for signup_id, value in asked))
    same = sa.and_(calls.c.wanted.is_not(None), calls.c.wanted == command)
    return (
        sa.update(calls)
        .where(
            calls.c.forum_id == sa.bindparam("step_forum", type_=sa.Integer),
            calls.c.state.in_(CALL_LIVE),
            calls.c.signup_id.in_([signup_id for signup_id, _ in asked]),
        )
        .values(
            wanted=command,
            attempts=sa.case((same, calls.c.attempts), else_=0),
            error=sa.case((same, calls.c.error), else_=None),
            applied_at=sa.case((same, calls.c.applied_at), else_=None),
            updated_at=sa.bindparam("step_now", type_=calls.c.updated_at.type),
        )
        .returning(calls.c.signup_id)
    )


def forum_live(forum: Forum, now: datetime) -> bool:
    """Dial the studio line into the on-air conference, once per forum.

    The partial unique index on live studio calls makes this a no-op when the studio is
    already on the line (or being dialled), however many processes try.
    """
    number = current_app.config.get("VOICE_STUDIO_NUMBER")
    if not number:
        return False
    inserted = changed(
        upsert_insert(Call.__table__)
        .values(
            forum_id=forum.id,
            direction=CallDirection.STUDIO,
            number=str(number),
            state=CallState.RINGING,
            wanted=CallCommand.DIAL,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
        .execution_options(preserve_rowcount=True)
    )
    if inserted:
        soon(forum.id)
    return bool(inserted)


def forum_over(forum: Forum, now: datetime) -> None:
    """The forum closed: callers still waiting hear a goodbye and get a text; the on-air
    caller is thanked; the studio line hangs up."""
    waiting = Call.state.in_(CALL_WAITING), Call.direction != CallDirection.STUDIO
    if forum.status != ForumStatus.CANCELLED:  # a cancelled forum has its own text
        for signup in db.session.scalars(
            sa.select(Signup)
            .join(Call, Call.signup_id == Signup.id)
            .where(Call.forum_id == forum.id, *waiting)
            .where(Signup.status.in_([SignupStatus.APPROVED, SignupStatus.QUEUED]))
            .distinct()
        ):
            outbox.goodbye(signup, now)
    want(forum.id, CallCommand.GOODBYE, *waiting)
    want(
        forum.id,
        CallCommand.END,
        sa.or_(Call.state == CallState.ON_AIR, Call.direction == CallDirection.STUDIO),
    )


# What goes first when several requests wait: what the listeners hear on air.
PRIORITY = sa.case(
    {CallCommand.END: 0, CallCommand.ON_AIR: 1, CallCommand.DIAL: 2}, value=Call.wanted, else_=3
)
# Requests a web request makes itself; the scheduler's tick makes the rest a moment later
# (closing a forum with a hundred callers holding must not keep the producer waiting).
IN_REQUEST = 6


def pending_ids(forum_id: int | None = None, limit: int | None = None) -> list[int]:
    stmt = sa.select(Call.id).where(
        Call.wanted.is_not(None),
        sa.or_(Call.applied.is_(None), Call.applied != Call.wanted),
        Call.state.in_(CALL_LIVE),
        # After a Twilio error, applied_at holds the time of the next try (backoff).
        sa.or_(Call.applied_at.is_(None), Call.applied_at <= database.clock()),
    )
    if forum_id is not None:
        stmt = stmt.where(Call.forum_id == forum_id)
    return list(db.session.scalars(stmt.order_by(PRIORITY, Call.id).limit(limit)))


def retry_stale(now: datetime) -> int:
    """Make again the requests a call has not followed (a crash, a lost request)."""
    hanging_up = Call.wanted.in_([CallCommand.END, CallCommand.GOODBYE])
    stale = (
        sa.update(Call)
        .where(
            Call.applied == Call.wanted,
            Call.applied_at < now - RETRY_AFTER,
            Call.state.in_(CALL_LIVE),
            sa.or_(
                sa.and_(
                    Call.attempts < MAX_ATTEMPTS,
                    sa.or_(
                        sa.and_(Call.wanted == CallCommand.DIAL, Call.sid.is_(None)),
                        sa.and_(Call.wanted == CallCommand.ON_AIR, Call.state == CallState.HOLDING),
                    ),
                ),
                # Nobody may be left on the line: hang-ups are tried every RETRY_AFTER
                # for as long as the call lasts.
                hanging_up,
            ),
        )
        .values(applied=None)
        .execution_options(synchronize_session=False)
    )
    retried = changed(stale)
    # A caller who rang in just as a producer put their signup on air was recorded after
    # the move was asked for: ask for it now.
    missed = (
        sa.update(Call)
        .where(
            Call.state == CallState.HOLDING,
            Call.direction != CallDirection.STUDIO,
            sa.or_(Call.wanted.is_(None), Call.wanted == CallCommand.DIAL),
            Call.signup_id.in_(sa.select(Signup.id).where(Signup.status == SignupStatus.ON_AIR)),
        )
        .values(wanted=CallCommand.ON_AIR, applied=None, attempts=0, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return retried + (changed(missed))


def apply_pending(forum_id: int | None = None, limit: int | None = None) -> int:
    """Make the Twilio requests wanted and not yet made; return how many were made."""
    done = 0
    for call_id in pending_ids(forum_id, limit):
        done += apply_one(call_id)
    db.session.commit()
    return done


def _claim(call_id: int, now: datetime) -> tuple[Call, int] | None:
    """Claim the request wanted of a call; return it with the claim's fencing number."""
    table = Call.__table__
    claimed = (
        sa.update(table)
        .where(
            table.c.id == call_id,
            table.c.wanted.is_not(None),
            sa.or_(table.c.applied.is_(None), table.c.applied != table.c.wanted),
        )
        .values(
            applied=table.c.wanted,
            applied_at=now,
            attempts=table.c.attempts + 1,
            fence=table.c.fence + 1,
        )
        .returning(*table.c)
    )
    call = db.session.scalars(
        sa.select(Call).from_statement(claimed).execution_options(populate_existing=True)
    ).one_or_none()
    fence = call.fence if call is not None else 0  # read before the commit expires it
    db.session.commit()
    return (call, fence) if call is not None else None


def apply_one(call_id: int) -> int:
    """Claim the request wanted of one call and make it; return 1 if this made it."""
    now = database.now()
    claimed = _claim(call_id, now)
    if claimed is None:
        return 0
    call, fence = claimed
    command = CallCommand(call.applied or "")
    try:
        _act(call, command, now, _Proof(call_id, fence, command))
    except ClaimLost as lost:
        db.session.rollback()
        log.warning("voice: %s", lost)
        return 0
    except TwilioFailure as error:
        reason = links.redact_numbers(str(error))  # a dial's error names the number
        log.warning("voice: %s for call %s failed: %s", command, call_id, reason)
        _failed(call, command, error, database.now(), fence)
    db.session.commit()
    return 1


def _act(call: Call, command: CallCommand, now: datetime, prove: _Proof) -> None:
    """Make the request; ``prove()`` goes right before each Twilio request (arguments
    are read before it: after its commit, reading the row would be a round trip)."""
    backend = backends.backend()
    forum = db.session.get(Forum, call.forum_id)
    assert forum is not None
    call_id, sid, state, number = call.id, call.sid, call.state, call.number
    if command == CallCommand.DIAL:
        if sid is not None:
            return  # a callback already told us it was placed
        sender = current_app.config.get("TWILIO_FROM_NUMBER")
        if not sender or not number:
            raise TwilioFailure("no number to call from or to: set TWILIO_FROM_NUMBER")
        if call.attempts > 1:
            # An earlier try may have been placed without phonein hearing back (a timeout,
            # a crash): ask Twilio before ringing the listener, or the studio, twice.
            since = call.created_at - timedelta(seconds=5)
            prove()
            placed = backend.find_call(number, since)
            if placed is not None:
                calls.adopt_sid(call, placed)
                return
        answer, status = twiml.url("/answer", call=call_id), twiml.url("/status", call=call_id)
        # A listener's voicemail must not be held for the show; the studio is staffed.
        detect = call.direction == CallDirection.CALLBACK
        prove()
        placed_sid = backend.dial(number, str(sender), answer, status, detect=detect)
        calls.adopt_sid(call, placed_sid)
    elif command == CallCommand.ON_AIR:
        # A call still ringing is put on air by the answer webhook, one on air already is.
        if state == CallState.HOLDING and sid:
            url = twiml.url("/on-air", call=call_id)
            prove()
            backend.redirect(sid, url)
    elif command in (CallCommand.END, CallCommand.GOODBYE):
        if sid is None:
            calls.ended(call, now, "cancelled")
            return
        if state == CallState.RINGING and call.direction != CallDirection.INBOUND:
            prove()
            backend.cancel(sid)
        else:
            farewell = twiml.farewell_twiml(command, forum, call)
            prove()
            backend.play(sid, farewell)
        # Told to hang up: the call is over for the show, whatever Twilio reports later.
        calls.ended(call, now, command.value)
    _error(call, None)


def _error(call: Call, message: str | None) -> None:
    db.session.execute(
        sa.update(Call)
        .where(Call.id == call.id)
        .values(error=message[:500] if message else None)
        .execution_options(synchronize_session=False)
    )


def _failed(
    call: Call, command: CallCommand, error: TwilioFailure, now: datetime, fence: int
) -> None:
    if error.gone:
        calls.ended(call, now, "gone")
        _error(call, None)
        return
    _error(call, f"Twilio: {error}" + (f" ({error.code})" if error.code else ""))
    hanging_up = command in (CallCommand.END, CallCommand.GOODBYE)
    if error.retryable and (call.attempts < MAX_ATTEMPTS or hanging_up):
        # Try again after a backoff: 1, 2, 4 … seconds, at most BACKOFF_MAX. Hang-ups are
        # never given up while the call lasts: nobody may be left on the line.
        delay = min(BACKOFF_MAX, 2 ** max(0, call.attempts - 1))
        db.session.execute(
            sa.update(Call)
            .where(Call.id == call.id, Call.applied == command, Call.fence == fence)
            .values(applied=None, applied_at=now + timedelta(seconds=delay))
            .execution_options(synchronize_session=False)
        )
    elif command == CallCommand.DIAL:
        calls.ended(call, now, DIAL_FAILED, failed=True)
