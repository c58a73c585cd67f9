"""Producer pages after the show: the publication editor, the report and the CSV exports.

They extend the producer blueprint (so that their endpoints keep the ``producer.`` names
the forum's navigation links to, and its staff-only headers apply); ``web.init_app``
imports this module before it registers the blueprint.

The editor keeps every tick: with JavaScript each change is saved as it is made
(static/publication.js, through the API); without it, every button of the page (save,
publish, filter, next page) sends what is on screen, and the server applies each field
that differs from what the page was drawn with. So "Publish the selection" publishes the
selection the producer sees, and a colleague's change to another field is left alone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from .. import forums, publication, report
from ..database import commit
from ..errors import Conflict, Invalid
from ..exports import csv_lines
from ..extensions import db
from ..models import MAX_ID, ForumStatus, Signup
from ..publication import Cursor, Filters
from ..times import utcnow
from .forms import ConfirmForm
from .producer import bp, producer_only

# The most cards one submission may carry: a page of candidates and a large selection.
MAX_SHOWN = 2000


def _page_args(args: MultiDict[str, str]) -> dict[str, str]:
    """The editor's place (filters and keyset cursor) from a query or a form."""
    filters = Filters.parse(args.get("stance"), args.get("status"))
    place = filters.args()
    for key in ("after", "before"):
        cursor = Cursor.parse(args.get(key))
        if cursor is not None:
            place[key] = str(cursor)
            break
    return place


def _editor_url(slug: str, place: dict[str, str]) -> str:
    url = url_for("producer.publication_editor", slug=slug)
    return f"{url}?{urlencode(place)}" if place else url


@bp.get("/forums/<slug>/publication")
@producer_only
def publication_editor(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    place = _page_args(request.args)
    chosen = [s for s in publication.selection(forum) if s.erased_at is None]
    return render_template(
        "producer/publication.html",
        forum=forum,
        chosen=chosen,
        # Keyset pages: a forum of 100,000 signups never loads every candidate.
        candidates=publication.candidates(
            forum,
            after=Cursor.parse(place.get("after")),
            before=Cursor.parse(place.get("before")),
            filters=Filters.parse(place.get("stance"), place.get("status")),
        ),
        balance=publication.balances(forum, chosen),
        place=place,
        stance_filters=publication.STANCE_FILTERS,
        status_filters=publication.STATUS_FILTERS,
        form=ConfirmForm(),
        state=forum.status_at(utcnow()).value,
    )


def _shown_ids(form: MultiDict[str, str]) -> list[int]:
    ids: list[int] = []
    for text in form.getlist("shown")[:MAX_SHOWN]:
        if text.isdigit() and 0 < int(text) <= MAX_ID and int(text) not in ids:
            ids.append(int(text))
    return ids


def _changes(signup: Signup, form: MultiDict[str, str]) -> dict[str, Any]:
    """What the producer changed on this card since the page was drawn."""
    n = signup.id
    data: dict[str, Any] = {}
    ticked = form.get(f"published-{n}") == "y"
    if ticked != (form.get(f"was-published-{n}") == "y"):
        data["published"] = ticked
    quote = form.get(f"pull_quote-{n}", "")
    if quote != form.get(f"was-pull_quote-{n}", ""):
        data["pull_quote"] = quote
    order = form.get(f"order-{n}", "").strip()
    if order != form.get(f"was-order-{n}", "").strip():
        try:
            data["order"] = int(order) if order else None
        except ValueError:
            raise Invalid({"order": "Give the order as a whole number."}) from None
    if data:
        # An untouched tick keeps what the database has now, not what the page showed.
        data.setdefault("published", signup.published)
    return data


def _said(signup: Signup, data: dict[str, Any], was_published: bool) -> str:
    if data["published"] != was_published:
        where = "in the selection" if data["published"] else "out of the selection"
        return f"{signup.name} is now {where}."
    return f"{signup.name}: pull quote and order saved."


@bp.post("/forums/<slug>/publication")
@producer_only
def publication_save(slug: str) -> ResponseReturnValue:
    # Locked as the forum's status page locks it: publishing races no other status change.
    forum = forums.get_by_slug(slug, for_update=True)
    form = request.form
    place = _page_args(form)
    go = form.get("go", "")
    if go == "filter" or go == "first":
        place = {k: v for k, v in place.items() if k not in ("after", "before")}
    elif go.startswith(("after:", "before:")):
        key, _, text = go.partition(":")
        place = {k: v for k, v in place.items() if k not in ("after", "before")}
        if Cursor.parse(text) is not None:
            place[key] = text
    if not ConfirmForm().validate_on_submit():
        flash("The page expired before it was sent; nothing was saved. Please try again.", "error")
        return redirect(_editor_url(slug, place))
    now = utcnow()
    ids = _shown_ids(form)
    rows = db.session.scalars(
        sa.select(Signup).where(Signup.forum_id == forum.id, Signup.id.in_(ids))
    )
    by_id = {s.id: s for s in rows}
    saved: list[str] = []
    errors: list[str] = []
    for n in ids:
        signup = by_id.get(n)
        if signup is None:
            continue
        try:
            data = _changes(signup, form)
            if not data:
                continue
            was_published = signup.published
            publication.set_published(signup, data, now)
        except (Conflict, Invalid) as error:
            message = error.message if not error.fields else "; ".join(error.fields.values())
            errors.append(f"{signup.name}: {message}")
        else:
            saved.append(_said(signup, data, was_published))
    publishing = form.get("action") == "publish"
    if publishing and errors:
        errors.append("Nothing was published: correct the comments above, then publish again.")
    elif publishing:
        try:
            forums.update(forum, {"status": ForumStatus.PUBLISHED.value}, now)
        except (Conflict, Invalid) as error:
            errors.append(error.message)
            publishing = False
    # One commit: each card's change stands on its own (a refused one changed nothing), so
    # the others are kept even when one is refused.
    commit()
    for message in errors:
        flash(message, "error")
    if saved:
        flash(
            f"Saved {len(saved)} change{'s' if len(saved) != 1 else ''}: " + " ".join(saved), "ok"
        )
    if publishing and not errors:
        chosen = publication.selection(forum)
        flash(
            f"Published: the public page now shows {len(chosen)} "
            f"comment{'s' if len(chosen) != 1 else ''}.",
            "ok",
        )
    elif not saved and not errors and go in ("", "save"):
        flash("Nothing had changed; nothing to save.", "ok")
    return redirect(_editor_url(slug, place))


@bp.get("/forums/<slug>/report")
@producer_only
def forum_report(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    statuses = report.Statuses.of(forums.signup_counts(forum))
    return render_template(
        "producer/report.html",
        forum=forum,
        timeline=report.signups_over_time(forum),
        countries=report.by_country(forum),
        top_countries=report.TOP_COUNTRIES,
        statuses=statuses,
        balance=publication.balances(forum, screened=statuses.screened),
        calls=report.calls(forum),
        texts=report.texts(forum),
        state=forum.status_at(utcnow()).value,
    )


def _csv(name: str, header: tuple[str, ...], rows: Any) -> Response:
    response = Response(stream_with_context(csv_lines(header, rows)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/forums/<slug>/signups.csv")
@producer_only
def export_signups(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    stamp = f"{utcnow():%Y%m%d-%H%M}"
    return _csv(
        f"{forum.slug}-signups-{stamp}.csv", report.SIGNUP_COLUMNS, report.signup_rows(forum)
    )


@bp.get("/forums/<slug>/selection.csv")
@producer_only
def export_selection(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    # What the public page shows: a purged forum's published comments keep their text.
    chosen = publication.selection(forum)
    stamp = f"{utcnow():%Y%m%d-%H%M}"
    return _csv(
        f"{forum.slug}-selection-{stamp}.csv",
        report.SELECTION_COLUMNS,
        report.selection_rows(forum, chosen),
    )
