"""The SMS rate shared by every sender process: at most SMS_RATE sends in any second.

Each send reserves the next slot of one shared row (``send_rate``) and waits for it. The
slot is computed on the database's clock, so the machines' clocks need not agree.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import sqlalchemy as sa

from ..database import dialect, upsert_insert
from ..extensions import db
from ..models import SendRate

log = logging.getLogger("phonein.sms")

# Slots are spaced a little wider than 1/rate, so that a send running a little late
# cannot put SMS_RATE + 1 sends into one second: a send may reach the provider up to
# 1 / margin - 1 seconds after its slot (111 ms at 0.9) and the cap still holds.
# The cap is a promise (at most SMS_RATE in any second), the achieved rate only a target:
# at 0.975 a busy machine let 51 through at a cap of 50, at 0.96 53, and at 0.94 31 of 30
# across a worker paused mid-send or a database stall (bench/faults.py).
RATE_MARGIN = 0.9
# A send this much later than its slot gives the slot up (see wait_for_slot) ...
LATE_TOLERANCE = 0.010
# ... and so does a slot whose reservation took this long (it may be that much earlier
# than it looks). Together they leave the rest of the margin's slack (61 ms) for the
# request's own way to the provider.
DOUBT_TOLERANCE = 0.040


def _database_clock() -> sa.ColumnElement[float]:
    """Seconds since the epoch by the database's clock, read when the statement runs."""
    if dialect() == "postgresql":
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Double)
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


def reserve_slot(rate: float, lead: float = 0.0) -> tuple[float, float]:
    """Reserve the next send slot shared by every sender; return (seconds to wait for it,
    seconds the reserving statement took).

    The slot is computed from the database's clock at the moment the row is locked, not
    from this process's clock before it waited for the lock: a sender that queued for the
    row would otherwise get a slot already past and send at once, bunching with others.
    The wait is measured on the same clock, so worker machines' clocks need not agree.
    One statement in autocommit: the row is locked for that statement only, so senders
    hardly wait for each other, and the statement's own time bounds how stale its answer
    can be (``Slot.doubt``). The slot is at least ``lead`` seconds away: time for the
    work a sender does just before it sends.
    """
    interval = 1.0 / (rate * RATE_MARGIN)
    table = SendRate.__table__
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(2):
            clock = _database_clock()
            earliest = clock + lead
            before = time.monotonic()
            row = connection.execute(
                sa.update(table)
                .where(table.c.id == 1)
                .values(
                    next_slot=sa.case(
                        (table.c.next_slot > earliest, table.c.next_slot), else_=earliest
                    )
                    + interval
                )
                .returning(table.c.next_slot, clock.label("now"))
            ).first()
            took = time.monotonic() - before
            if row is not None:
                return max(0.0, float(row.next_slot) - interval - float(row.now)), took
            connection.execute(
                upsert_insert(table)
                .values(id=1, next_slot=0.0)
                .on_conflict_do_nothing(index_elements=["id"])
            )
    raise RuntimeError("could not reserve a send slot")


@dataclass(frozen=True)
class Slot:
    """A reserved send slot, as a time on this process's monotonic clock.

    ``at`` is the latest the slot can be; it may really be up to ``doubt`` earlier (the
    reserving statement's round trip: the database read its clock somewhere within it).
    Waiting until ``at`` is never early; a slot whose doubt is too large to keep the cap
    is given up, like one woken up for too late.
    """

    at: float
    doubt: float

    def on_time(self) -> bool:
        """Say whether a send now still falls within its slot."""
        return self.doubt <= DOUBT_TOLERANCE and time.monotonic() - self.at <= LATE_TOLERANCE

    def wait(self, lead: float = 0.0) -> None:
        """Sleep until ``lead`` seconds before the slot."""
        delay = self.at - lead - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def take(rate: float, lead: float = 0.0) -> Slot:
    """Reserve the next send slot shared by every sender, ``lead`` seconds away at least
    (without waiting for it)."""
    delay, took = reserve_slot(rate, lead)
    return Slot(at=time.monotonic() + delay, doubt=took)


def wait_for_slot(rate: float) -> Slot:
    """Wait for a reserved slot; if this thread wakes too late for it, take another.

    A send that runs late would share its second with on-time sends and could push that
    second over the cap; giving the slot up keeps the cap and only costs throughput.
    Whatever runs between this and the send must be re-checked with ``Slot.on_time``.
    """
    while True:
        slot = take(rate)
        slot.wait()
        if slot.on_time():
            return slot
        log.debug("woke after a send slot; taking another")
