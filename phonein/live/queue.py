"""The caller queue of a forum: add, move, remove, next, finish.

Order is kept in ``Signup.queue_key``: sparse integers (set exactly while a signup is
queued), so that adding, moving or taking the head touches one row however long the queue;
1-based positions are computed on read.

Every operation starts with ``lock``: an UPDATE that bumps ``Forum.queue_version`` and
returns the forum. It takes the forum's row lock on PostgreSQL and the write lock on
SQLite, so operations on one forum run one at a time, each on the queue the previous one
left; the same statement loads the forum, and the version tells boards to redraw.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from ..database import Ride, Write, dialect
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import FORUM_ACTIVE, MAX_ID, Forum, ForumStatus, Signup, SignupStatus
from ..sms import outbox
from . import dispatch

GAP = 1 << 20
# What a queue change changes in a signup: what the undo log keeps (``live.actions``).
QUEUE_FIELDS = ("status", "queue_key", "on_air_at", "done_at")


@dataclass
class Snapshot:
    on_air: Signup | None
    waiting: list[Signup]
    version: int
    total_waiting: int
    extra: tuple[Any, ...] = ()


@dataclass
class Step:
    """What ``advance`` or ``finish`` did: who finished, who went on air, who is next."""

    forum: Forum
    done: Signup | None = None
    on_air: Signup | None = None
    next_up: Signup | None = None
    # For the undo log, from the step's own statements: the queue fields of the signups
    # it changed as they were, the "you're next" texts it wrote, and which of the
    # signups it changed have a call on the line.
    was: dict[int, dict[str, Any]] = field(default_factory=dict)
    texted: list[int] = field(default_factory=list)
    on_the_line: set[int] = field(default_factory=set)
    # Planned (``plan_next``), not yet written: who goes on air (``on_air`` once written).
    up: Signup | None = None


@dataclass(frozen=True)
class StepWrites:
    """What is left of a planned step to write, each statement with its parameters (None:
    nothing of that kind): ``up`` on air, the new head's "you're next", the two lines."""

    on_air: Write | None
    text: Write | None
    lines: Write | None


def lock(slug: str, now: datetime, *, live_only: bool = False, taken: Forum | None = None) -> Forum:
    """Lock the forum called ``slug`` for a queue change and return it, checked.

    ``taken``: the forum, locked already (``lock_ride``); None takes the lock here.
    """
    forum = taken if taken is not None else take_lock(slug)
    status = forum.status_at(now)
    if live_only and status != ForumStatus.LIVE:
        raise Conflict(
            f"The forum is {status.value}: callers go on air only while it is live.",
            code="forum_not_live",
        )
    if status not in FORUM_ACTIVE:
        raise Conflict(f"The forum is {status.value}; its queue is closed.", code="forum_closed")
    return forum


# The hot path's statements (lock, the step's read, its writes) are built once per process
# with bind parameters: built anew for every request, each and its cache key cost more CPU
# than running it (as the signup's INSERT did, ``signups._insert_signup``).
_FORUMS = Forum.__table__


def _lock_update(*allowed: sa.ColumnElement[bool]) -> sa.Update:
    """The queue lock: bump the version of forum ``lock_slug`` (if ``allowed``), return it."""
    return (
        sa.update(_FORUMS)
        .where(_FORUMS.c.slug == sa.bindparam("lock_slug", type_=sa.String), *allowed)
        .values(queue_version=_FORUMS.c.queue_version + 1)
        .returning(*_FORUMS.c)
    )


_TAKE_LOCK = (
    sa.select(Forum).from_statement(_lock_update()).execution_options(populate_existing=True)
)


def _ride_lock(stmt: sa.Select[Any], allowed: sa.ColumnElement[bool]) -> sa.Select[Any]:
    forum = aliased(Forum, _lock_update(allowed).cte("locked"))
    # As ``_TAKE_LOCK``: a forum already in the session takes the locked row's values.
    return (
        stmt.outerjoin(forum, sa.true())
        .add_columns(forum)
        .execution_options(populate_existing=True)
    )


def lock_ride(slug: str) -> Ride | None:
    """The queue lock of forum ``slug``, taken by the query that checks the caller
    (``accounts.require_api(along=…)``) on PostgreSQL: a data-modifying CTE, so one round
    trip fewer on the live show's busiest requests. Only a caller who passes the check
    takes it. ``ridden_lock`` reads what it took; SQLite (no writes in a CTE) rides nothing.

    The lock is the statement's first write, and the step's read is the next statement:
    under READ COMMITTED that read sees whatever committed before the lock was granted,
    as it does after ``take_lock``.
    """
    if dialect() != "postgresql":
        return None
    return Ride(_ride_lock, (("lock_slug", slug),), writes=True)


def ridden_lock(values: tuple[Any, ...] | None) -> Forum | None:
    """The forum ``lock_ride`` locked (None: it did not ride, or found no such forum;
    then ``lock`` takes the lock itself, and says 404 if there is no forum)."""
    if not values:
        return None
    forum: Forum | None = values[0]
    return forum


def take_lock(slug: str) -> Forum:
    """Take the queue lock of the forum called ``slug``, whatever its status; return it."""
    forum: Forum | None = db.session.scalars(_TAKE_LOCK, {"lock_slug": slug}).one_or_none()
    if forum is None:
        raise NotFound(f"There is no forum called '{slug}'.")
    return forum


def bump(forum_id: int) -> None:
    """Take the forum's queue lock for a change made elsewhere (withdraw, reject, erase)."""
    db.session.execute(
        sa.update(Forum)
        .where(Forum.id == forum_id)
        .values(queue_version=Forum.queue_version + 1)
        .execution_options(synchronize_session=False)
    )


def _waiting(forum_id: Any, *conditions: sa.ColumnElement[bool]) -> sa.Select:
    # queue_key is set exactly while queued (a check constraint), and the unique
    # (forum_id, queue_key) index serves this ordered scan.
    return (
        sa.select(Signup)
        .where(Signup.forum_id == forum_id, Signup.queue_key.is_not(None), *conditions)
        .order_by(Signup.queue_key)
    )


def _with_forum(signup: Signup | None, forum: Forum) -> Signup | None:
    """Attach the locked forum to ``signup`` without a query, and keep it referenced.

    The session's identity map holds objects weakly: without this, serialising the
    signup after the view returns would load its forum again.
    """
    if signup is not None:
        set_committed_value(signup, "forum", forum)
    return signup


def _reload(signup_id: int, forum: Forum) -> Signup:
    signup = None
    if 0 < signup_id <= MAX_ID:
        signup = db.session.scalars(
            sa.select(Signup)
            .where(Signup.id == signup_id, Signup.forum_id == forum.id)
            .execution_options(populate_existing=True)
        ).one_or_none()
    if signup is None:
        raise NotFound(f"Signup {signup_id} is not in this forum.")
    _with_forum(signup, forum)
    return signup


def position_of(signup: Signup) -> int | None:
    if signup.queue_key is None:
        return None
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Signup)
        .where(Signup.forum_id == signup.forum_id, Signup.queue_key <= signup.queue_key)
    )


def positions_of(forum_id: int, signups: list[Signup]) -> dict[int, int]:
    """Return signup id -> 1-based queue position for those of ``signups`` that wait.

    One query that ranks the queue only up to the last of them, not the whole queue.
    """
    waiting = {s.id: s.queue_key for s in signups if s.queue_key is not None}
    if not waiting:
        return {}
    ranked = (
        sa.select(Signup.id, sa.func.row_number().over(order_by=Signup.queue_key).label("position"))
        .where(
            Signup.forum_id == forum_id,
            Signup.queue_key.is_not(None),
            Signup.queue_key <= max(key for key in waiting.values() if key is not None),
        )
        .subquery()
    )
    rows = db.session.execute(
        sa.select(ranked.c.id, ranked.c.position).where(ranked.c.id.in_(list(waiting)))
    )
    return {signup_id: position for signup_id, position in rows}


def _neighbours(forum: Forum, position: int, exclude: int) -> tuple[int | None, int | None, bool]:
    """Return the keys either side of 1-based ``position`` among the others, in one query.

    The third value says the position was past the end (and so means last).
    """
    keys = _waiting(forum.id, Signup.id != exclude).with_only_columns(Signup.queue_key)
    if position == 1:
        after = db.session.scalar(keys.limit(1))
        return None, after, False
    rows = db.session.scalars(keys.offset(position - 2).limit(2)).all()
    if len(rows) == 2:
        return rows[0], rows[1], False
    if len(rows) == 1:
        return rows[0], None, False
    last = db.session.scalar(
        sa.select(sa.func.max(Signup.queue_key)).where(
            Signup.forum_id == forum.id, Signup.id != exclude
        )
    )
    return last, None, True


def _rebalance(forum: Forum) -> None:
    """Spread the keys out again when two neighbours have no gap left between them.

    New keys start above the current maximum, so no intermediate state collides with the
    unique (forum, key) constraint.
    """
    rows = db.session.execute(
        _waiting(forum.id).with_only_columns(Signup.id, Signup.queue_key)
    ).all()
    base = rows[-1].queue_key + GAP
    db.session.execute(
        sa.update(Signup),
        [{"id": row.id, "queue_key": base + i * GAP} for i, row in enumerate(rows)],
    )


def _key_for(forum: Forum, position: int, exclude: int) -> tuple[int, bool]:
    for _ in range(2):
        before, after, past_end = _neighbours(forum, position, exclude)
        if before is None and after is None:
            return GAP, past_end
        if before is None:
            assert after is not None
            return after - GAP, past_end
        if after is None:
            return before + GAP, past_end
        if after - before >= 2:
            return (before + after) // 2, past_end
        _rebalance(forum)
    raise RuntimeError("queue keys still packed after a rebalance")


@functools.cache
def _target_statement(shape: str) -> Any:
    """``_target``'s SELECT for a position that is None (``last``), 1 (``first``) or
    another (``at``, its offset a bind parameter), built once per process."""
    signup_id = sa.bindparam("t_signup", type_=sa.Integer)
    forum_id = sa.bindparam("t_forum", type_=sa.Integer)
    others = sa.select(Signup.queue_key).where(
        Signup.forum_id == forum_id, Signup.queue_key.is_not(None), Signup.id != signup_id
    )
    count: Any = sa.null()
    if shape == "last":
        before: Any = others.with_only_columns(sa.func.max(Signup.queue_key)).scalar_subquery()
        after: Any = sa.null()
        count = others.with_only_columns(sa.func.count()).scalar_subquery()
    else:
        # The two keys either side, from one walk of the index to the position: a CTE
        # read twice is computed once.
        ordered = others.order_by(Signup.queue_key)
        if shape == "first":
            pair = ordered.limit(1).cte("pair")
            before, after = sa.null(), sa.select(sa.func.min(pair.c.queue_key)).scalar_subquery()
        else:
            pair = ordered.offset(sa.bindparam("t_offset", type_=sa.Integer)).limit(2).cte("pair")
            # One key found: it is the last, and the position is just after it.
            before = sa.select(sa.func.min(pair.c.queue_key)).scalar_subquery()
            after = sa.select(
                sa.case((sa.func.count() == 2, sa.func.max(pair.c.queue_key)))
            ).scalar_subquery()
    head = (
        sa.select(sa.func.min(Signup.queue_key)).where(Signup.forum_id == forum_id)
    ).scalar_subquery()
    return (
        sa.select(Signup, before, after, head, count)
        .where(Signup.id == signup_id, Signup.forum_id == forum_id)
        .execution_options(populate_existing=True)
    )


def _target(
    forum: Forum, signup_id: int, position: int | None
) -> tuple[Signup, int | None, int | None, int | None, int | None]:
    """Load the signup to place and, in the same query, what placing it needs.

    Return the signup; the keys either side of 1-based ``position`` among the others
    waiting (for None, the last key); the head's key now; and, for None, how many others
    wait. One round trip instead of four: the move is a producer's busiest write.
    """
    signup_id = signup_id if 0 < signup_id <= MAX_ID else 0
    shape = "last" if position is None else ("first" if position == 1 else "at")
    params = {"t_signup": signup_id, "t_forum": forum.id}
    if shape == "at":
        assert position is not None
        params["t_offset"] = position - 2
    row = db.session.execute(_target_statement(shape), params).one_or_none()
    if row is None:
        raise NotFound(f"Signup {signup_id} is not in this forum.")
    _with_forum(row[0], forum)
    return row[0], row[1], row[2], row[3], row[4]


def _between(before: int | None, after: int | None) -> int | None:
    """Return a key between two neighbours' (None: either end); None if they are packed."""
    if before is None and after is None:
        return GAP
    if before is None:
        assert after is not None
        return after - GAP
    if after is None:
        return before + GAP
    return (before + after) // 2 if after - before >= 2 else None


def place(
    slug: str, signup_id: int, position: int | None, now: datetime, *, locked: Forum | None = None
) -> tuple[Forum, Signup, int]:
    """Add an approved signup at ``position`` (1-based, default last) or move a queued one.

    A position past the end means last. Return the forum, the signup and its position.
    ``locked``: the forum, its queue lock already taken (and checked) in this unit of work.
    """
    if position is not None and position < 1:
        raise Invalid({"position": "Positions start at 1."})
    forum = locked or lock(slug, now)
    signup, before, after, head, others = _target(forum, signup_id, position)
    if signup.status not in (SignupStatus.APPROVED, SignupStatus.QUEUED):
        raise Conflict(
            f"Only approved signups can be queued; this one is {signup.status}.",
            code="not_approved",
        )
    was_head = signup.queue_key is not None and signup.queue_key == head
    past_end = position is not None and position > 1 and before is None
    key = None if past_end else _between(before, after)
    if key is None:  # past the end, or no gap left: the slower way, which rebalances
        key, past_end = _key_for(forum, position or 10**9, signup.id)
    _set(signup, status=SignupStatus.QUEUED, queue_key=key, updated_at=now)
    if position is None and not past_end and others is not None:
        position = others + 1
    elif position is None or past_end:
        position = position_of(signup) or 1
    # Only a new head is texted that they are next (notify_head is idempotent, and the
    # head of a forum that goes live is texted then).
    if position == 1 or was_head:
        outbox.notify_head(forum, now)
    return forum, signup, position


def remove(
    slug: str,
    signup_id: int,
    now: datetime,
    *,
    to: SignupStatus = SignupStatus.APPROVED,
    locked: Forum | None = None,
) -> tuple[Forum, Signup]:
    """Take a waiting caller out of the queue: back to approved, or ``dropped``
    (``locked`` as for ``place``)."""
    forum = locked or lock(slug, now)
    signup = _reload(signup_id, forum)
    if signup.status != SignupStatus.QUEUED:
        raise Conflict(f"Signup {signup_id} is not in the queue.", code="not_queued")
    signup.status = to
    signup.queue_key = None
    signup.updated_at = now
    db.session.flush()
    outbox.notify_head(forum, now)
    return forum, signup


def _step_rows(
    forum: Forum, chosen: int | None, now: datetime, *, waiting: bool
) -> tuple[Signup | None, list[Signup], Signup | None, bool]:
    """Read, in one query, whoever is on air and (``waiting``) the first two waiting and
    the ``chosen`` signup: all a next or finish changes or tells, however long the queue.

    Return the one on air (as they were), the first two waiting in order, the chosen one,
    and whether the one on air is already finished: on PostgreSQL the same statement
    finishes them (an UPDATE in a CTE, returning the row as it was), a round trip less.
    """
    fold = dialect() == "postgresql"
    params: dict[str, Any] = {"step_forum": forum.id}
    if chosen is not None:
        params["step_chosen"] = chosen
    if fold:
        params["done_now"] = now
    statement = _step_rows_statement(waiting, chosen is not None, fold)
    rows = db.session.scalars(statement, params).unique().all()
    for signup in rows:
        _with_forum(signup, forum)
    on_air = next((s for s in rows if s.status == SignupStatus.ON_AIR), None)
    # The chosen one, if further back, has a key above the first two's: the two lowest
    # keys read are the first two waiting.
    queued = sorted((s for s in rows if s.queue_key is not None), key=lambda s: s.queue_key or 0)
    picked = next((s for s in rows if s.id == chosen), None) if chosen is not None else None
    return on_air, queued[:2], picked, fold


def _done_values(now: datetime) -> dict[str, Any]:
    return {"status": SignupStatus.DONE, "done_at": now, "updated_at": now}


@functools.cache
def _step_rows_statement(waiting: bool, chosen: bool, finish: bool) -> Any:
    """One UNION ALL of index lookups: whoever is on air (the one-on-air index), the
    first two waiting (the queue-key index) and the chosen one (the primary key). As one
    WHERE with OR, PostgreSQL read every signup of the forum to filter them.

    ``finish`` (PostgreSQL): whoever is on air is read from ``UPDATE … FROM signups AS
    was … RETURNING was.*``, which finishes them and returns the row as it was (the
    queue lock keeps it from changing meanwhile). The other parts read the statement's
    snapshot, where nobody else is on air: the one-on-air index sees one at a time."""
    forum_id = sa.bindparam("step_forum", type_=sa.Integer)
    signups = Signup.__table__
    if finish:
        was = signups.alias("was")
        done_now = sa.bindparam("done_now", type_=signups.c.done_at.type)
        finished = (
            sa.update(signups)
            .where(
                was.c.id == signups.c.id,
                signups.c.forum_id == forum_id,
                signups.c.status == SignupStatus.ON_AIR,
            )
            .values(status=SignupStatus.DONE, done_at=done_now, updated_at=done_now)
            .returning(*was.c)
            .cte("step_done")
        )
        on_air: Any = sa.select(*finished.c)
    else:
        on_air = sa.select(signups).where(
            signups.c.forum_id == forum_id, signups.c.status == SignupStatus.ON_AIR
        )
    parts = [on_air]
    if waiting:
        first_two = _waiting(forum_id).with_only_columns(Signup.id).limit(2)
        parts.append(
            sa.select(signups).where(
                signups.c.forum_id == forum_id, signups.c.id.in_(first_two.scalar_subquery())
            )
        )
    if chosen:
        parts.append(
            sa.select(signups).where(
                signups.c.forum_id == forum_id,
                signups.c.id == sa.bindparam("step_chosen", type_=sa.Integer),
            )
        )
    # The chosen one may be among the first two: the same row twice is one object.
    return (
        sa.select(Signup)
        .from_statement(sa.union_all(*parts) if len(parts) > 1 else parts[0])
        .execution_options(populate_existing=True)
    )


@functools.cache
def _set_statement(names: tuple[str, ...]) -> Any:
    signups = Signup.__table__
    return (
        sa.update(signups)
        .where(signups.c.id == sa.bindparam("set_id", type_=sa.Integer))
        .values({name: sa.bindparam(f"set_{name}", type_=signups.c[name].type) for name in names})
        .returning(signups.c.id)
    )


def _set_write(signup: Signup, values: dict[str, Any]) -> Write:
    params = {f"set_{name}": value for name, value in values.items()}
    params["set_id"] = signup.id
    return Write(_set_statement(tuple(values)), params)


def _written(signup: Signup, values: dict[str, Any]) -> Signup:
    """Set what an UPDATE of ``_set_write`` wrote on the object, as its database state."""
    for name, value in values.items():
        set_committed_value(signup, name, value)
    return signup


def _set(signup: Signup, **values: Any) -> Signup:
    """Write queue fields of a signup already read (by id: the queue is locked).

    A Core UPDATE, and the values written set on the object as its database state: the
    lock keeps the row from changing meanwhile, so reading all of it back (RETURNING into
    a reloaded ORM object) cost CPU for nothing.
    """
    assert len(_set_write(signup, values).run()) == 1
    return _written(signup, values)


def _finish(signup: Signup, now: datetime, finished: bool) -> Signup:
    """The one on air is done: written already by the step's read (``finished``), or now."""
    if finished:
        return _written(signup, _done_values(now))
    return _set(signup, **_done_values(now))


def _on_air_values(now: datetime) -> dict[str, Any]:
    return {"status": SignupStatus.ON_AIR, "queue_key": None, "on_air_at": now, "updated_at": now}


def _keep(signups: tuple[Signup | None, ...]) -> dict[int, dict[str, Any]]:
    return {
        s.id: {name: getattr(s, name) for name in QUEUE_FIELDS} for s in signups if s is not None
    }


def plan_next(forum: Forum, now: datetime, chosen: int | None = None) -> Step:
    """Read and check what a next changes, and finish whoever is on air, on a forum whose
    queue lock this unit of work holds (live, checked). The rest (``step_writes``) puts
    ``step.up`` on air, texts ``step.next_up`` and moves both lines.
    """
    step = Step(forum)
    if chosen is not None and not 0 < chosen <= MAX_ID:
        raise NotFound(f"Signup {chosen} is not in this forum.")
    on_air, first_two, picked, finished = _step_rows(forum, chosen, now, waiting=True)
    if chosen is not None:
        if picked is None:
            raise NotFound(f"Signup {chosen} is not in this forum.")
        if picked.status != SignupStatus.QUEUED:
            raise Conflict(f"Signup {chosen} is not waiting in the queue.", code="not_queued")
    step.up = picked if chosen is not None else (first_two[0] if first_two else None)
    step.was = _keep((on_air, step.up))
    if on_air is not None:
        # First (read above, or a statement of its own): the one-on-air index must see
        # this caller leave before the next one arrives.
        step.done = _finish(on_air, now, finished)
    step.next_up = next((s for s in first_two if s is not step.up), None)
    return step


def plan_finish(forum: Forum, now: datetime) -> Step:
    """``plan_next`` for a finish: nobody goes on air, nobody is told."""
    step = Step(forum)
    on_air, _, _, finished = _step_rows(forum, None, now, waiting=False)
    step.was = _keep((on_air,))
    if on_air is not None:
        step.done = _finish(on_air, now, finished)
    return step


def step_writes(step: Step, now: datetime) -> StepWrites:
    """What is left to write of a planned step, not yet run."""
    up, next_up = step.up, step.next_up
    return StepWrites(
        on_air=_set_write(up, _on_air_values(now)) if up is not None else None,
        text=outbox.next_up_write(step.forum, next_up, now) if next_up is not None else None,
        lines=dispatch.step_write(step.done, up),
    )


def written(
    step: Step, writes: StepWrites, now: datetime, texted: list[int], lines: list[int | None]
) -> Step:
    """Complete ``step`` with what ``writes`` wrote: the ids of the texts and the signups
    whose line the UPDATE of the calls returned."""
    if step.up is not None:
        step.on_air = _written(step.up, _on_air_values(now))
    step.texted = texted
    step.on_the_line = dispatch.stepped(step.forum.id, lines) if writes.lines else set()
    return step


def write(step: Step, now: datetime) -> Step:
    """Write what is left of a planned step, a statement each."""
    writes = step_writes(step, now)
    if writes.on_air is not None:
        writes.on_air.run()
    texted = writes.text.run() if writes.text is not None else []
    lines = writes.lines.run() if writes.lines is not None else []
    return written(step, writes, now, texted, lines)


def step_next(forum: Forum, now: datetime, chosen: int | None = None) -> Step:
    """``advance`` on a forum whose queue lock this unit of work holds (live, checked)."""
    return write(plan_next(forum, now, chosen), now)


def step_finish(forum: Forum, now: datetime) -> Step:
    """``finish`` on a forum whose queue lock this unit of work holds (live, checked)."""
    return write(plan_finish(forum, now), now)


def advance(slug: str, now: datetime, chosen: int | None = None) -> Step:
    """The caller on air is done; the head of the queue (or the ``chosen`` waiting caller)
    goes on air, wherever they sit in Twilio's own hold queue."""
    return step_next(lock(slug, now, live_only=True), now, chosen)


def finish(slug: str, now: datetime) -> Step:
    """The caller on air is done; nobody goes on air."""
    return step_finish(lock(slug, now, live_only=True), now)


@functools.cache
def _snapshot_queries(
    paged: bool, extra: tuple[sa.ScalarSelect[Any], ...]
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """``snapshot``'s two statements, built once per process for each shape (paged or
    not, the caller's ``extra``) with the forum and the limit as bind parameters: built
    for every poll of the board they cost more CPU than PostgreSQL spends running them."""
    forum_id: sa.BindParameter[int] = sa.bindparam("snap_forum")
    total_waiting: Any = sa.null()
    if paged:
        counted = aliased(Signup)
        total_waiting = (
            sa.select(sa.func.count())
            .select_from(counted)
            .where(counted.forum_id == forum_id, counted.queue_key.is_not(None))
            .scalar_subquery()
        )
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    head = (
        sa.select(Signup, total_waiting, *extra)
        .select_from(one)
        .outerjoin(
            Signup, sa.and_(Signup.forum_id == forum_id, Signup.status == SignupStatus.ON_AIR)
        )
    )
    # What ``_waiting`` selects (the unique (forum_id, queue_key) index serves it).
    waiting = (
        sa.select(Signup)
        .where(Signup.forum_id == forum_id, Signup.queue_key.is_not(None))
        .order_by(Signup.queue_key)
    )
    if paged:
        waiting = waiting.limit(sa.bindparam("snap_limit", type_=sa.Integer))
    return head, waiting


def snapshot(
    forum: Forum,
    limit: int | None = None,
    extra: tuple[sa.ScalarSelect[Any], ...] = (),
    params: dict[str, Any] | None = None,
) -> Snapshot:
    """Return who is on air and who waits, in order, with the queue's version.

    Two queries: one row with whoever is on air (LEFT JOINed: one row with nobody too),
    the number waiting (when ``limit`` pages them) and ``extra`` (the caller's scalar
    subqueries, in ``Snapshot.extra``, with their bind parameters in ``params``); then
    the waiting, in order. ``extra`` should be built once, not per call: the statements
    are kept for each one.
    """
    head_stmt, waiting_stmt = _snapshot_queries(limit is not None, extra)
    bound = {**(params or {}), "snap_forum": forum.id}
    if limit is not None:
        bound["snap_limit"] = limit
    head = db.session.execute(head_stmt, bound).one()
    on_air: Signup | None = head[0]
    waiting = list(db.session.scalars(waiting_stmt, bound))
    # The board shows each one's forum: this one, without a lazy load per caller.
    for signup in (*waiting, on_air):
        _with_forum(signup, forum)
    total = len(waiting) if limit is None else head[1]
    return Snapshot(on_air, waiting, forum.queue_version, total, tuple(head[2:]))


def requeue(
    slug: str, signup_id: int, position: int | None, now: datetime, *, locked: Forum | None = None
) -> tuple[Forum, Signup, int]:
    """Put a caller who is done (or was dropped) back in the queue, like an approved one
    (``locked`` as for ``place``).

    A mis-clicked "next" or "finish" is best undone (``live.actions``); this is for a
    caller the producer wants back later, after the undo window.
    """
    forum = locked or lock(slug, now)
    signup = _reload(signup_id, forum)
    if signup.status in (SignupStatus.DONE, SignupStatus.DROPPED):
        signup.status = SignupStatus.APPROVED
        signup.done_at = None
        signup.updated_at = now
        db.session.flush()
    return place(slug, signup_id, position, now, locked=forum)
