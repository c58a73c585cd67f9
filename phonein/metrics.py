"""Prometheus metrics: ``GET /metrics`` behind ``PHONEIN_METRICS_TOKEN``.

Two kinds of figures, kept in two ways because several processes run:

- What the database knows (the outbox's depth and age, retries, reminder lateness, the
  scheduler's lease, worker heartbeats, live calls) is read when Prometheus scrapes, by
  ``DatabaseCollector``, in a few cheap indexed queries. Nothing is kept in a process's
  memory, so every web process answers the same and none goes stale.
- What only a process sees (request latency in a web process; each call to the SMS
  provider and its outcome in a sender, which is any ``phonein worker`` or ``serve``)
  is counted in that process. With several processes on a machine (gunicorn workers,
  workers beside them) set ``PROMETHEUS_MULTIPROC_DIR`` for all of them to one empty
  directory: prometheus-client's multiprocess mode then writes each process's samples
  there and ``/metrics`` on any web process of that machine adds them up. Without it
  (``phonein serve``: one process) the figures are the process's own. See
  docs/operations.md.
"""

from __future__ import annotations

import functools
import hmac
import os
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .errors import DomainError, NotFound, Unauthorized
from .extensions import db
from .models import CALL_LIVE, Call, Lease, Message, MessageKind, MessageStatus, Worker
from .times import UTCDateTime, utcnow
from .twilio import TwilioFailure

bp = Blueprint("metrics", __name__)

EXTENSION = "phonein_metrics"
START = "phonein.metrics.start"
# Messages still to go out: the outbox proper. Finished ones are counted by the senders.
OUTBOX_ACTIVE = (MessageStatus.PENDING, MessageStatus.SENDING)
# Statuses of a message the provider took: it left the outbox at ``sent_at``.
HANDED_OVER = ("queued", "sent", "delivered", "undelivered")
# The contract: reminders leave within 2 s of their due time.
LATENESS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
# Lateness is reported over the reminders due in this window (a gauge histogram): a
# window keeps the query to an index range however long the outbox's history.
LATENESS_WINDOW = timedelta(minutes=15)
# Workers silent for longer than this are gone: left out, so labels do not pile up.
WORKER_FORGOTTEN = timedelta(hours=1)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    """Return the multiprocess directory, if this deployment uses one."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ProcessMetrics:
    """The counters and histograms one process keeps (see the module's docstring)."""

    def __init__(self) -> None:
        # A registry per app, not the global one: tests build many apps in one process,
        # and in multiprocess mode the samples go to files whatever the registry.
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "phonein_http_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint, method and status.",
            ["endpoint", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.sends = Counter(
            "phonein_sms_sends",
            "Calls to the SMS provider by outcome: accepted, retryable (429, 5xx), "
            "no_answer (outcome unknown: reconciled, never blindly resent), opted_out "
            "(21610), refused (permanent), error (a bug).",
            ["outcome"],
            registry=self.registry,
        )


def process_metrics(app: Flask | None = None) -> ProcessMetrics:
    """Return the app's process metrics (the current app's by default)."""
    found: ProcessMetrics = (app or current_app).extensions[EXTENSION]
    return found


def _outcome(error: BaseException) -> str:
    if not isinstance(error, TwilioFailure):
        return "error"
    if error.status is None:
        return "no_answer"
    if error.code == 21610:
        return "opted_out"
    return "retryable" if error.retryable else "refused"


def count_sends(backend: Any, sends: Counter) -> None:
    """Count every call ``backend`` makes to the provider, by outcome, in this process.

    The counter lives in the sender process that makes the call, which is what a
    provider-side count (and "never twice") is about. The backend's ``send`` is wrapped
    in place, so the backend stays what it is (a memory backend keeps its ``sent``).
    """
    send = backend.send

    @functools.wraps(send)
    def counted(to: str, body: str) -> Any:
        try:
            result = send(to, body)
        except BaseException as error:
            sends.labels(_outcome(error)).inc()
            raise
        sends.labels("accepted").inc()
        return result

    backend.send = counted


def _db_now() -> datetime:
    """Return the database's clock on PostgreSQL (the one every process agrees on);
    SQLite serves one process, whose clock is the database's."""
    if db.session.get_bind().dialect.name == "postgresql":
        found = db.session.scalar(sa.select(sa.func.now(type_=UTCDateTime())))
        if isinstance(found, datetime):
            return found
    return utcnow()


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())


class DatabaseCollector(Collector):
    """Read what the database knows when Prometheus scrapes (see the module's docstring)."""

    def collect(self) -> Iterator[Any]:
        now = _db_now()
        yield from self._outbox(now)
        yield from self._lateness(now)
        yield from self._lease(now)
        yield from self._workers(now)
        yield from self._calls()

    def _outbox(self, now: datetime) -> Iterator[Any]:
        labels = ["kind", "status"]
        depth = GaugeMetricFamily(
            "phonein_outbox_messages",
            "Messages in the outbox (pending or being sent), due or not.",
            labels=labels,
        )
        due = GaugeMetricFamily(
            "phonein_outbox_due_messages", "Outbox messages whose time has come.", labels=labels
        )
        age = GaugeMetricFamily(
            "phonein_outbox_oldest_age_seconds",
            "Pending: how long the oldest due message has been due. Sending: how long "
            "the oldest claim has been held.",
            labels=labels,
        )
        retried = GaugeMetricFamily(
            "phonein_outbox_retried_messages",
            "Outbox messages claimed more than once (a retry, a recovered claim).",
            labels=labels,
        )
        attempts = GaugeMetricFamily(
            "phonein_outbox_attempts_max",
            "The most claims any outbox message has had.",
            labels=labels,
        )
        # One GROUP BY over the outbox's own rows (ix_messages_due leads with status).
        is_due = Message.send_at <= now
        rows: list[Any] = list(
            db.session.execute(
                sa.select(
                    Message.kind,
                    Message.status,
                    sa.func.count(),
                    sa.func.count().filter(is_due),
                    sa.func.min(Message.send_at).filter(is_due),
                    sa.func.min(Message.claimed_at),
                    sa.func.count().filter(Message.attempts > 1),
                    sa.func.max(Message.attempts),
                )
                .where(Message.status.in_(OUTBOX_ACTIVE))
                .group_by(Message.kind, Message.status)
            )
        )
        # Every kind and status, zero when empty: an alert on a series needs it to exist.
        seen = {(row[0], row[1]) for row in rows}
        rows += [
            (k.value, st.value, 0, 0, None, None, 0, 0)
            for k in MessageKind
            for st in OUTBOX_ACTIVE
            if (k.value, st.value) not in seen
        ]
        for kind, status, n, n_due, oldest_due, oldest_claim, n_retried, most in rows:
            key = [kind, status]
            depth.add_metric(key, n)
            due.add_metric(key, n_due)
            since = oldest_due if status == MessageStatus.PENDING else oldest_claim
            age.add_metric(key, _seconds(now - since) if since else 0.0)
            retried.add_metric(key, n_retried)
            attempts.add_metric(key, most or 0)
        yield from (depth, due, age, retried, attempts)

    def _lateness(self, now: datetime) -> Iterator[Any]:
        # Reminders due in the window that the provider took: sent_at - send_at. Done in
        # Python over a bounded window, so the SQL stays the same on both databases.
        rows = db.session.execute(
            sa.select(Message.send_at, Message.sent_at).where(
                Message.kind == MessageKind.REMINDER,
                Message.status.in_(HANDED_OVER),
                Message.send_at > now - LATENESS_WINDOW,
                Message.send_at <= now,
                Message.sent_at.is_not(None),
            )
        ).all()
        late = sorted(_seconds(sent - due) for due, sent in rows if sent and due)
        buckets: list[tuple[str, float]] = []
        for bound in LATENESS_BUCKETS:
            buckets.append((str(bound), float(sum(1 for v in late if v <= bound))))
        buckets.append(("+Inf", float(len(late))))
        yield GaugeHistogramMetricFamily(
            "phonein_reminder_lateness_seconds",
            f"Reminders due in the last {int(LATENESS_WINDOW.total_seconds() // 60)} "
            "minutes that the provider took: seconds from their due time to the send.",
            buckets=buckets,
            gsum_value=float(sum(late)),
        )

    def _lease(self, now: datetime) -> Iterator[Any]:
        holder = GaugeMetricFamily(
            "phonein_lease_holder",
            "1 for the process holding each lease (the scheduler's ticks).",
            labels=["lease", "holder"],
        )
        left = GaugeMetricFamily(
            "phonein_lease_expires_in_seconds",
            "Seconds until the lease expires (negative: expired, nobody renewed it).",
            labels=["lease"],
        )
        fence_column = getattr(Lease, "fence", None)
        fence = GaugeMetricFamily(
            "phonein_lease_fence",
            "The lease's fencing number: one more each time it changes hands.",
            labels=["lease"],
        )
        columns: list[Any] = [Lease.name, Lease.holder, Lease.expires_at]
        if fence_column is not None:
            columns.append(fence_column)
        for name, who, expires_at, *rest in db.session.execute(sa.select(*columns)):
            holder.add_metric([name, who], 1)
            left.add_metric([name], (expires_at - now).total_seconds())
            if rest:
                fence.add_metric([name], rest[0] or 0)
        yield holder
        yield left
        if fence_column is not None:
            yield fence

    def _workers(self, now: datetime) -> Iterator[Any]:
        age = GaugeMetricFamily(
            "phonein_worker_heartbeat_age_seconds",
            "Seconds since each worker's last heartbeat (workers heard in the last hour).",
            labels=["worker"],
        )
        for worker_id, beat in db.session.execute(
            sa.select(Worker.id, Worker.heartbeat_at).where(
                Worker.heartbeat_at > now - WORKER_FORGOTTEN
            )
        ):
            age.add_metric([worker_id], _seconds(now - beat))
        yield age

    def _calls(self) -> Iterator[Any]:
        calls = GaugeMetricFamily(
            "phonein_calls", "Live phone calls by state, every forum.", labels=["state"]
        )
        counts = dict(
            db.session.execute(
                sa.select(Call.state, sa.func.count())
                .where(Call.state.in_(CALL_LIVE))
                .group_by(Call.state)
            ).all()
        )
        for state in CALL_LIVE:
            calls.add_metric([state.value], counts.get(state.value, 0))
        yield calls


def _refusal() -> Response | None:
    """Return the answer to a scrape without the right token: 404 when metrics are off."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        error: DomainError = NotFound("Not found.")
    else:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return None
        error = Unauthorized("Give the metrics token: Authorization: Bearer <token>.")
    # The API's JSON error shape, whatever the client accepts: scrapers are not browsers.
    response = jsonify(error={"code": error.code, "message": error.message})
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@bp.get("/metrics")
def metrics() -> Response:
    """Answer Prometheus: process figures (this machine's, in multiprocess mode) and
    what the database knows now."""
    refused = _refusal()
    if refused is not None:
        return refused
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(process_metrics().registry))
    registry.register(DatabaseCollector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class _Forward(Collector):
    """Collect another registry's metrics (this process's own, without multiprocess)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Any]:
        return self.registry.collect()


def _started() -> None:
    request.environ[START] = time.perf_counter()


def _timed(response: Response) -> Response:
    started = request.environ.get(START)
    if started is not None:
        endpoint = request.url_rule.endpoint if request.url_rule else "unmatched"
        process_metrics().requests.labels(
            endpoint, request.method, str(response.status_code)
        ).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    """Count this process's requests and provider calls; serve ``/metrics``."""
    found = ProcessMetrics()
    app.extensions[EXTENSION] = found
    count_sends(app.extensions["phonein_sms"], found.sends)
    app.before_request(_started)
    app.after_request(_timed)
    app.register_blueprint(bp)
