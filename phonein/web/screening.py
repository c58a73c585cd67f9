"""The producers' screening page: decide, queue, rate and note signups on one screen.

Every control is a plain form that works without JavaScript (POST, then back to the
same page and row). ``static/screening.js`` sends the same forms with ``Accept:
application/json`` and gets back the message and the changed rows rendered by the same
template, which it swaps in place: no reload, focus kept on the row.

The routes sit on the producer blueprint so that their endpoint names
(``producer.screening``, ``producer.screen``) stay those the other producer pages link to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from .. import forums, search, signups
from ..database import commit, rollback
from ..errors import Conflict, DomainError, Invalid, wants_json
from ..live import queue
from ..models import Forum, Signup, SignupStatus, Stance
from ..times import format_in_zone, utcnow, zone_or_none
from .forms import ConfirmForm
from .producer import PER_PAGE, _page, _pages, bp, producer_only

# The page's words for each status: producers', not the column's.
STATUS_LABELS = {
    SignupStatus.PENDING: "Not screened yet",
    SignupStatus.APPROVED: "Approved",
    SignupStatus.REJECTED: "Rejected",
    SignupStatus.QUEUED: "Queued",
    SignupStatus.ON_AIR: "On air",
    SignupStatus.DONE: "Done",
    SignupStatus.DROPPED: "Dropped",
    SignupStatus.WITHDRAWN: "Withdrawn",
}
# The buttons' values: "queue" approves and adds to the end of the caller queue.
ACTIONS = {"approve": ("approve", False), "reject": ("reject", False), "queue": ("approve", True)}


def ago(moment: datetime, now: datetime) -> str:
    """Say how long ago ``moment`` was, roughly, as static/screening.js does."""
    minutes = max(0, int((now - moment).total_seconds() // 60))
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 24 * 60:
        return f"{minutes // 60} h ago"
    days = minutes // (24 * 60)
    return "1 day ago" if days == 1 else f"{days} days ago"


def listener_clock(zone: str | None, now: datetime) -> str | None:
    """Return the wall time in the listener's zone ('Tue 06:12'), if their zone is known."""
    tz = zone_or_none(zone)
    if tz is None:
        return None
    local = now.astimezone(tz)
    return f"{local:%a %H:%M}"


def _back(slug: str) -> str:
    """The screening page to return to: the one the form came from, same-site only."""
    back = request.form.get("back") or ""
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("producer.screening", slug=slug)
    return back


def _rows_context(forum: Forum, items: list[Signup], back: str) -> dict[str, Any]:
    now = utcnow()
    places = queue.positions_of(forum.id, items)
    return {
        "forum": forum,
        "items": items,
        "places": places,
        "back": back,
        "now": now,
        "ago": ago,
        "listener_clock": listener_clock,
        "format_in_zone": format_in_zone,
        "labels": STATUS_LABELS,
        "stances": [s.value for s in Stance],
        "utc": ZoneInfo("UTC"),
    }


@bp.get("/forums/<slug>/signups")
@producer_only
def screening(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    status = request.args.get("status") or None
    if status not in {s.value for s in SignupStatus}:
        status = None
    q = request.args.get("q", "")
    page = _page()
    # "Older" pages by keyset (the last signup shown), as cheap deep in a big forum as
    # at its start; ?page= still works.
    after = request.args.get("after", type=int)
    found = search.search(
        forum, status=status, q=q, page=page, per_page=PER_PAGE, after=after or None
    )
    items, total = found.items, found.total or 0
    return render_template(
        "producer/screening.html",
        total=total,
        page=page,
        pages=_pages(total),
        after=after,
        next_after=found.next_after,
        status=status,
        q=q,
        counts=forums.signup_counts(forum),
        statuses=[s.value for s in SignupStatus],
        **_rows_context(forum, items, request.full_path.rstrip("?")),
    )


def _answer(
    forum: Forum, message: str, rows: list[Signup], *, error: bool = False, **extra: Any
) -> ResponseReturnValue:
    """Answer the script with the message and the rows re-rendered, or a page with a flash."""
    back = _back(forum.slug)
    if wants_json():
        html = render_template("producer/_screening_rows.html", **_rows_context(forum, rows, back))
        body = {"message": message, "html": html, **extra}
        return jsonify(body), 200
    flash(message, "error" if error else "ok")
    anchor = f"#signup-{rows[0].id}" if rows else ""
    return redirect(back + anchor)


def _refused(forum: Forum, error: DomainError, rows: list[Signup]) -> ResponseReturnValue:
    rollback()
    # A page shows the sentence alone, not the "field: " an API caller gets first.
    message = next(iter(error.fields.values())) if error.fields else error.message
    if wants_json():
        body: dict[str, Any] = {"code": error.code, "message": message}
        if error.fields:
            body["fields"] = error.fields
        return jsonify(error=body), error.status
    flash(message, "error")
    anchor = f"#signup-{rows[0].id}" if rows else ""
    return redirect(_back(forum.slug) + anchor)


def _expired(forum: Forum) -> ResponseReturnValue:
    return _refused(
        forum,
        DomainError("The page expired. Reload it and try again.", code="csrf_failed"),
        [],
    )


def isolate(name: str) -> str:
    """Wrap listener text in Unicode isolates: <bdi> for a message that is plain text.

    The live region and flashes are text: without this an Arabic name at the start of
    "أحمد: approved." would reorder the whole sentence.
    """
    return f"\u2068{name}\u2069"


def _skip_text(skip: signups.Skipped) -> str:
    name = skip.signup.name if skip.signup is not None else ""
    if name and skip.message.startswith(name):
        return isolate(name) + skip.message[len(name) :]
    return skip.message


def summary(result: signups.BulkScreening) -> str:
    """Say in one or two sentences what a bulk decision did."""
    done = len(result.changed)
    if result.queue:
        verb = "approved and queued"
    else:
        verb = "approved" if result.decision == "approve" else "rejected"
    if done == 1 and not result.skipped:
        said = f"{isolate(result.changed[0].name)}: {verb}."
    elif done == 0:
        said = "Nothing changed."
    else:
        said = f"{done} signups {verb}." if done > 1 else f"1 signup {verb}."
    if result.skipped:
        reasons = " ".join(_skip_text(s) for s in result.skipped)
        said += f" Skipped {len(result.skipped)}: {reasons}"
    return said


@bp.post("/forums/<slug>/screen")
@producer_only
def screen_many(slug: str) -> ResponseReturnValue:
    """Approve, reject, or approve and queue one signup or a selection."""
    forum = forums.get_by_slug(slug)
    if not ConfirmForm().validate_on_submit():
        return _expired(forum)
    raw = request.form.getlist("signup_id")
    ids: list[Any] = [int(v) if v.isdecimal() and len(v) < 19 else v for v in raw]
    decision, and_queue = ACTIONS.get(request.form.get("action", ""), ("", False))
    try:
        if not decision:
            raise Invalid({"action": "Choose approve, reject, or approve and queue."})
        result = signups.screen_many(forum, ids, decision, utcnow(), and_queue=and_queue)
    except DomainError as error:
        if error.fields.get("signup_ids") == "Choose at least one signup.":
            error = Invalid({"signup_ids": "Tick at least one signup first (or press x)."})
        return _refused(forum, error, [])
    commit()
    rows = [*result.changed, *(s.signup for s in result.skipped if s.signup is not None)]
    return _answer(
        forum,
        summary(result),
        rows,
        changed=[s.id for s in result.changed],
        skipped=[
            {"signup_id": s.signup_id, "reason": s.reason, "message": s.message}
            for s in result.skipped
        ],
    )


def _screen_data() -> dict[str, Any]:
    """Read the fields this form sent, and only those: one click sets one thing."""
    data: dict[str, Any] = {}
    form = request.form
    if form.get("decision"):
        data["decision"] = form["decision"]
    if "stance" in form:
        data["stance"] = form["stance"] or None
    if "rating" in form:
        rating = form["rating"].strip()
        if rating and not (rating.isdecimal() and len(rating) == 1):
            raise Invalid({"rating": "Give a whole number from 1 to 5."})
        data["rating"] = int(rating) if rating else None
    if "notes" in form:
        data["notes"] = form["notes"]
    return data


@bp.post("/signups/<int:signup_id>/screen")
@producer_only
def screen(signup_id: int) -> ResponseReturnValue:
    """Set one signup's decision, stance, rating or notes (whichever the form sent)."""
    signup = signups.get(signup_id)
    forum = signup.forum
    if not ConfirmForm().validate_on_submit():
        return _expired(forum)
    try:
        signups.screen(signup, _screen_data(), utcnow())
    except (Conflict, Invalid) as error:
        return _refused(forum, error, [signup])
    commit()
    label = STATUS_LABELS.get(SignupStatus(signup.status), signup.status)
    return _answer(forum, f"Saved {isolate(signup.name)} ({label.lower()}).", [signup])
