"""The SMS rate shared by every sender process: at most SMS_RATE sends in any second.

Each send reserves the next slot of one shared row (``send_rate``) and waits for it. The
slot is computed on the database's clock, so the machines' clocks need not agree.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa

from ..database import dialect, upsert_insert
from ..extensions import db
from ..models import SendRate

log = logging.getLogger("phonein.sms")

# Slots are spaced a little wider than 1/rate, so that a send running a little late
# cannot put SMS_RATE + 1 sends into one second.
# 0.96, not higher: the cap is a promise (at most SMS_RATE in any second), the achieved
# rate only a target; at 0.975 a busy machine let 51 through at a cap of 50.
RATE_MARGIN = 0.96
# A send this much later than its slot gives the slot up (see _wait_for_slot). It must
# stay below the margin's slack, (1 + 1/rate) / margin - 1 seconds (52 ms at 100/s),
# leaving the rest for the request's own way to the provider.
LATE_TOLERANCE = 0.010


def _database_clock() -> sa.ColumnElement[float]:
    """Seconds since the epoch by the database's clock, read when the statement runs."""
    if dialect() == "postgresql":
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Double)
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


def reserve_slot(rate: float) -> float:
    """Reserve the next send slot shared by every sender; return seconds to wait for it.

    The slot is computed from the database's clock at the moment the row is locked, not
    from this process's clock before it waited for the lock: a sender that queued for the
    row would otherwise get a slot already past and send at once, bunching with others.
    The wait is measured on the same clock, so worker machines' clocks need not agree.
    """
    interval = 1.0 / (rate * RATE_MARGIN)
    table = SendRate.__table__
    for _ in range(2):
        clock = _database_clock()
        row = db.session.execute(
            sa.update(table)
            .where(table.c.id == 1)
            .values(
                next_slot=sa.case((table.c.next_slot > clock, table.c.next_slot), else_=clock)
                + interval
            )
            .returning(table.c.next_slot, clock.label("now"))
        ).first()
        if row is not None:
            db.session.commit()
            return max(0.0, float(row.next_slot) - interval - float(row.now))
        db.session.execute(
            upsert_insert(table)
            .values(id=1, next_slot=0.0)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        db.session.commit()
    raise RuntimeError("could not reserve a send slot")


def wait_for_slot(rate: float) -> None:
    """Wait for a reserved slot; if this thread wakes too late for it, take another.

    A send that runs late would share its second with on-time sends and could push that
    second over the cap; giving the slot up keeps the cap and only costs throughput.
    """
    while True:
        delay = reserve_slot(rate)
        slot = time.monotonic() + delay
        if delay > 0:
            time.sleep(delay)
        if time.monotonic() - slot <= LATE_TOLERANCE:
            return
        log.debug("woke %.3fs after a send slot; taking another", time.monotonic() - slot)
