"""The after-show report: a forum's figures for producers, each one aggregate query.

Nothing here reads a forum's signups or texts row by row: every figure is a GROUP BY or a
count the database answers from an index (ix_signups_forum_created for signups over time,
ix_signups_forum_status_created for the statuses, ix_signups_forum_country for the
countries, ix_signups_forum_stance for the balance, ix_messages_forum_kind_status for the
texts), so a forum of 100,000 signups costs a few small result sets. The exports stream
their rows a batch at a time (``signup_rows``, ``selection_rows``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .database import dialect
from .extensions import db
from .models import (
    SIGNUP_UNSCREENED,
    Call,
    CallDirection,
    Forum,
    Message,
    MessageKind,
    MessageStatus,
    Signup,
    SignupStatus,
)
from .phones import country_names
from .times import UTCDateTime, zone_or_none

# Signups are counted in quarter hours by the database (every zone's offset is a whole
# number of quarter hours), then folded into the forum's local hours or days here.
QUARTER = 900
# Up to this span the chart counts by hour; past it, by day; past the second, by week.
HOURLY_UP_TO = timedelta(hours=48)
DAILY_UP_TO = timedelta(days=92)
# Rows of the country chart (the table lists every country).
TOP_COUNTRIES = 15
# Rows an export reads from the database at a time.
BATCH = 1000


def _seconds(later: Any, earlier: Any) -> sa.ColumnElement[Any]:
    """Seconds from ``earlier`` to ``later`` (NULL when either is)."""
    if dialect() == "sqlite":
        return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0
    return sa.func.extract("epoch", later - earlier)


@dataclass(frozen=True)
class Bucket:
    """One column of "signups over time": its start in the forum's zone and its count."""

    start: datetime
    count: int
    cumulative: int


@dataclass(frozen=True)
class Timeline:
    unit: str  # "hour", "day" or "week"
    buckets: list[Bucket]

    def label(self, bucket: Bucket) -> str:
        if self.unit == "hour":
            return f"{bucket.start:%d %b %H:00}"
        return f"{bucket.start:%d %b}" if self.unit == "day" else f"w/c {bucket.start:%d %b}"


def _quarters(forum: Forum) -> list[tuple[int, int]]:
    """Count the forum's signups per quarter hour since the epoch, in the database."""
    if dialect() == "sqlite":
        # Stored as naive UTC text (times.UTCDateTime); integer division floors.
        bucket: sa.ColumnElement[Any] = (
            sa.cast(sa.func.strftime("%s", Signup.created_at), sa.Integer) / QUARTER
        )
    else:
        # date_bin (PostgreSQL 14+) keeps to timestamps: hash-grouped, no numeric arithmetic
        # per row, a few milliseconds per 10,000 signups.
        bucket = sa.func.date_bin(
            sa.text("interval '15 minutes'"),
            Signup.created_at,
            sa.text("timestamptz '1970-01-01 00:00:00+00'"),
        )
    # No ORDER BY: a hash aggregate, and the few thousand buckets are sorted here.
    rows = db.session.execute(
        sa.select(bucket, sa.func.count()).where(Signup.forum_id == forum.id).group_by(bucket)
    ).all()
    out = []
    for start, n in rows:
        if isinstance(start, datetime):
            start = int(start.timestamp()) // QUARTER
        out.append((int(start), int(n)))
    return sorted(out)


def signups_over_time(forum: Forum) -> Timeline:
    """Count the forum's signups per local hour, day or week (by the span they cover)."""
    rows = _quarters(forum)
    if not rows:
        return Timeline("hour", [])
    zone = zone_or_none(forum.timezone) or UTC
    moments = [(datetime.fromtimestamp(q * QUARTER, UTC).astimezone(zone), n) for q, n in rows]
    span = moments[-1][0] - moments[0][0]
    unit = "hour" if span <= HOURLY_UP_TO else "day" if span <= DAILY_UP_TO else "week"

    def start(moment: datetime) -> datetime:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        if unit == "hour":
            return hour
        day = hour.replace(hour=0)
        return day if unit == "day" else day - timedelta(days=day.weekday())

    counts: dict[datetime, int] = {}
    for moment, n in moments:
        key = start(moment).replace(tzinfo=None)  # wall-clock keys: DST days stay one day
        counts[key] = counts.get(key, 0) + n
    # Every bucket from the first to the last, empty ones too: gaps are part of the story.
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
    buckets: list[Bucket] = []
    key, last, total = min(counts), max(counts), 0
    while key <= last:
        total += counts.get(key, 0)
        buckets.append(Bucket(key, counts.get(key, 0), total))
        key += step[unit]
    return Timeline(unit, buckets)


def by_country(forum: Forum) -> list[tuple[str, str, int]]:
    """Return (code, name, signups) per country of the forum's numbers, most first."""
    rows = db.session.execute(
        sa.select(Signup.country, sa.func.count())
        .where(Signup.forum_id == forum.id)
        .group_by(Signup.country)
    ).all()
    names = country_names()
    out = [
        (code or "", names.get(code or "", "Unknown") if code else "Unknown", n) for code, n in rows
    ]
    return sorted(out, key=lambda row: (-row[2], row[1]))


@dataclass(frozen=True)
class Statuses:
    """Where the forum's signups ended up, from one grouped count."""

    by_status: dict[str, int]

    @classmethod
    def of(cls, counts: dict[str, int]) -> Statuses:
        """Read ``forums.signup_counts`` (every status, and its ``total``)."""
        return cls({s.value: counts.get(s.value, 0) for s in SignupStatus})

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def screened(self) -> int:
        return self.total - sum(self.by_status[s] for s in SIGNUP_UNSCREENED)

    @property
    def approved(self) -> int:
        """Approved at some point: still approved, or queued, on air, done or dropped since."""
        return sum(self.by_status[s] for s in ("approved", "queued", "on_air", "done", "dropped"))


@dataclass(frozen=True)
class CallFigures:
    """The show's calls: listeners put on air, and the phone calls behind them."""

    on_air: int  # signups whose call on air is over (done)
    on_air_seconds: float | None  # their average time on air (on air to done)
    calls: int  # listeners' phone calls (dialled in or called back; not the studio)
    inbound: int
    callbacks: int
    answered: int  # calls that reached the on-air conference
    wait_seconds: float | None  # average wait on the line before going on air
    call_on_air_seconds: float | None  # average time on air of those calls


def calls(forum: Forum) -> CallFigures:
    aired = db.session.execute(
        sa.select(
            sa.func.count(Signup.on_air_at),
            sa.func.avg(_seconds(Signup.done_at, Signup.on_air_at)),
        )
        # The partial index ix_signups_forum_done: the few called, not the whole forum.
        .where(Signup.forum_id == forum.id, Signup.done_at.is_not(None))
    ).one()
    listener = Call.direction != CallDirection.STUDIO
    line = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count(sa.case((Call.direction == CallDirection.INBOUND, 1))),
            sa.func.count(sa.case((Call.direction == CallDirection.CALLBACK, 1))),
            sa.func.count(Call.on_air_at),
            sa.func.avg(_seconds(Call.on_air_at, Call.waiting_since)),
            sa.func.avg(_seconds(Call.ended_at, Call.on_air_at)),
        ).where(Call.forum_id == forum.id, listener)
    ).one()

    def num(value: Any) -> float | None:
        return None if value is None else float(value)

    return CallFigures(
        on_air=int(aired[0]),
        on_air_seconds=num(aired[1]),
        calls=int(line[0]),
        inbound=int(line[1]),
        callbacks=int(line[2]),
        answered=int(line[3]),
        wait_seconds=num(line[4]),
        call_on_air_seconds=num(line[5]),
    )


@dataclass(frozen=True)
class Texts:
    """The forum's texts, counted by kind and delivery status."""

    counts: dict[tuple[str, str], int]

    @property
    def kinds(self) -> list[str]:
        return [k.value for k in MessageKind if any(key[0] == k for key in self.counts)]

    @property
    def statuses(self) -> list[str]:
        return [s.value for s in MessageStatus if any(key[1] == s for key in self.counts)]

    def get(self, kind: str, status: str) -> int:
        return self.counts.get((kind, status), 0)

    def kind_total(self, kind: str) -> int:
        return sum(n for (k, _), n in self.counts.items() if k == kind)

    def status_total(self, status: str) -> int:
        return sum(n for (_, s), n in self.counts.items() if s == status)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def texts(forum: Forum) -> Texts:
    rows = db.session.execute(
        sa.select(Message.kind, Message.status, sa.func.count())
        .where(Message.forum_id == forum.id)
        .group_by(Message.kind, Message.status)
    )
    return Texts({(kind, status): n for kind, status, n in rows})


# The exports' columns, in order. Listener text is exported as typed; exports.safe_cell
# defuses what a spreadsheet would run.
SIGNUP_COLUMNS = (
    "id",
    "created_at",
    "name",
    "location",
    "country",
    "phone",
    "email",
    "timezone",
    "question",
    "status",
    "stance",
    "rating",
    "notes",
    "sms_consent",
    "publish_consent",
    "published",
    "pull_quote",
    "publish_order",
    "screened_at",
    "on_air_at",
    "done_at",
)
SELECTION_COLUMNS = ("order", "name", "location", "pull_quote", "comment", "stance", "status", "id")


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def signup_rows(forum: Forum) -> Iterator[list[Any]]:
    """Yield every signup of the forum as export cells, oldest first, a batch at a time.

    Keyset batches over ix_signups_forum_created (not one long-lived cursor): the export
    streams while the response is written, and holds no transaction open between batches.
    """
    columns = [getattr(Signup, name) for name in SIGNUP_COLUMNS]
    after: tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]] | None = None
    while True:
        query = sa.select(*columns).where(Signup.forum_id == forum.id, Signup.erased_at.is_(None))
        if after is not None:
            # A row comparison: one index range from the last row on, on either database.
            query = query.where(sa.tuple_(Signup.created_at, Signup.id) > sa.tuple_(*after))
        rows = db.session.execute(query.order_by(Signup.created_at, Signup.id).limit(BATCH)).all()
        for row in rows:
            yield [_value(v) for v in row]
        if len(rows) < BATCH:
            return
        last = rows[-1]
        after = (
            sa.literal(last.created_at, UTCDateTime()),
            sa.literal(last.id, sa.Integer()),
        )
        db.session.rollback()  # end the batch's transaction: nothing held while streaming


def selection_rows(forum: Forum, chosen: list[Signup]) -> Iterator[list[Any]]:
    """Yield the published selection as export cells, in the published order."""
    for place, signup in enumerate(chosen, start=1):
        yield [
            place,
            signup.name,
            signup.location,
            signup.pull_quote or "",
            signup.question,
            signup.stance or "",
            signup.status,
            signup.id,
        ]
