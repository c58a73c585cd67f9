"""Publishing a selection of comments after the forum, and the balance of opinion.

The balance rule (docs/design.md, "Publication"): the public page says "The comments below
reflect that balance" only when every stance's number of published comments is within
``reflect_margin(n)`` of its fair share (the selection's size times that stance's share
of all screened signups with a stance), and every published comment has a stance.
Otherwise the page says what the selection is, stance by stance.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa

from .errors import Conflict, Invalid
from .extensions import db
from .inputs import clean_text
from .models import (
    MAX_ID,
    PULL_QUOTE_MAX,
    SIGNUP_UNSCREENED,
    Forum,
    Signup,
    SignupStatus,
    Stance,
)


def set_published(signup: Signup, data: dict[str, Any], now: datetime) -> None:
    """Put a signup in the published selection (or take it out), with quote and order."""
    published = data.get("published")
    if not isinstance(published, bool):
        raise Invalid({"published": "Give true or false."})
    pull_quote = data.get("pull_quote")
    if pull_quote is not None:
        pull_quote = clean_text(pull_quote)
        if len(pull_quote) > PULL_QUOTE_MAX:
            raise Invalid({"pull_quote": f"Keep the pull quote to {PULL_QUOTE_MAX} characters."})
    order = data.get("order")
    if order is not None and (
        isinstance(order, bool) or not isinstance(order, int) or not -MAX_ID <= order <= MAX_ID
    ):
        raise Invalid({"order": "Give a whole number."})
    if published:
        # Re-read under a row lock: a withdrawal racing this must not end up published.
        db.session.flush()  # refresh() would drop changes not yet flushed
        db.session.refresh(signup, with_for_update=True)
        if not signup.publish_consent:
            raise Conflict("This listener did not agree to publication.", code="no_publish_consent")
        if signup.status in SIGNUP_UNSCREENED or signup.erased_at is not None:
            raise Conflict(f"A {signup.status} signup cannot be published.", code="not_publishable")
    signup.published = published
    if "pull_quote" in data:
        signup.pull_quote = pull_quote or None
    if "order" in data:
        signup.publish_order = order
    signup.updated_at = now


def _publishable(forum: Forum) -> list[sa.ColumnElement[bool]]:
    """The forum's comments whose authors consented and that producers screened."""
    return [
        Signup.forum_id == forum.id,
        Signup.publish_consent == sa.true(),
        Signup.status.not_in(SIGNUP_UNSCREENED),
    ]


# The producers' order; comments they gave no place come after the others.
IN_ORDER = (Signup.publish_order.is_(None), Signup.publish_order)
# Comments per page of the publication editor.
PER_PAGE = 50
STANCES = tuple(s.value for s in Stance)
# The editor's filters: a stance ("none": not classified) and a screening outcome.
STANCE_FILTERS = (*STANCES, "none")
STATUS_FILTERS = tuple(
    s.value for s in SignupStatus if s not in SIGNUP_UNSCREENED and s != SignupStatus.ON_AIR
)
# Share of the selection (in points of 1) a stance may stray from its fair share and the
# selection still be said to reflect the balance; below 20 comments one comment is the
# finer grain (see reflect_margin).
REFLECT_TOLERANCE = 0.05
# A stance with at least this share of the balance must be in the selection at all: one
# comment "for" does not reflect a 60/40 split, however close it is to its fair share.
REFLECT_MIN_SHARE = 0.2


@functools.cache
def _selection_query() -> Any:
    # Built once per process, the forum a bind parameter: the public page of a published
    # forum asks it on every view.
    forum = cast(Forum, SimpleNamespace(id=sa.bindparam("selection_forum")))
    # ``published = true`` (not ``IS true``) lets PostgreSQL use the partial index
    # ix_signups_forum_published; the selection is a few dozen rows, however big the forum.
    return (
        sa.select(Signup)
        .where(*_publishable(forum), Signup.published == sa.true())
        .order_by(*IN_ORDER, Signup.id)
    )


def selection(forum: Forum) -> list[Signup]:
    """Return the published comments in the producers' order (unordered ones last)."""
    return list(db.session.scalars(_selection_query(), {"selection_forum": forum.id}))


# What the public page shows of a published comment (and the balance counts): the rows of
# ``selection`` without the rest of each signup, which the page never shows.
SHOWN = (Signup.id, Signup.name, Signup.location, Signup.question, Signup.pull_quote, Signup.stance)


@functools.cache
def _shown_query() -> Any:
    # The selection's own query (its WHERE and order, built once), narrowed to SHOWN.
    return _selection_query().with_only_columns(*SHOWN)


def published_comments(forum: Forum) -> list[Any]:
    """Return the published comments as the public page shows them: rows with SHOWN's
    attributes, in the producers' order, without loading whole signups."""
    return list(db.session.execute(_shown_query(), {"selection_forum": forum.id}))


@dataclass(frozen=True)
class Filters:
    """What the publication editor's candidate list is narrowed to (None: everything)."""

    stance: str | None = None
    status: str | None = None

    @classmethod
    def parse(cls, stance: str | None, status: str | None) -> Filters:
        """Keep the known values, drop anything else (a stale or hand-typed address)."""
        return cls(
            stance if stance in STANCE_FILTERS else None,
            status if status in STATUS_FILTERS else None,
        )

    def where(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.stance == "none":
            clauses.append(Signup.stance.is_(None))
        elif self.stance:
            clauses.append(Signup.stance == self.stance)
        if self.status:
            clauses.append(Signup.status == self.status)
        return clauses

    def args(self) -> dict[str, str]:
        """The filters as query arguments, for links that keep them."""
        return {k: v for k, v in (("stance", self.stance), ("status", self.status)) if v}


@dataclass(frozen=True)
class Cursor:
    """A place in the candidates' order: best rated first, unrated last, newest first
    within a rating. ``rating`` 0 stands for unrated (ratings are 1 to 5)."""

    rating: int
    id: int

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """Read ``"rating.id"``; anything else is no cursor (the first page)."""
        rating, _, ident = (text or "").partition(".")
        if not (rating.isdigit() and ident.isdigit()):
            return None
        cursor = cls(int(rating), int(ident))
        return cursor if cursor.rating <= 5 and 0 < cursor.id <= MAX_ID else None

    @classmethod
    def of(cls, signup: Signup) -> Cursor:
        return cls(signup.rating or 0, signup.id)

    def __str__(self) -> str:
        return f"{self.rating}.{self.id}"


@dataclass(frozen=True)
class CandidatePage:
    """One page of the comments that may be published and are not, with its neighbours."""

    items: list[Signup]
    next: Cursor | None
    previous: Cursor | None
    filters: Filters = field(default_factory=Filters)

    @property
    def first(self) -> bool:
        return self.previous is None


def _segment(
    forum: Forum,
    filters: Filters,
    *,
    rated: bool,
    beyond: Cursor | None,
    forward: bool,
    limit: int,
) -> list[Signup]:
    """Read up to ``limit`` candidates of one segment (rated or unrated) past ``beyond``.

    Each segment is one range of ix_signups_forum_candidates (forum, rating, id), read
    in index order (forward: rating and id descending; backward: ascending), so a page
    costs its own rows whatever the page's place in a forum of 100,000 signups.
    """
    where = [
        *_publishable(forum),
        Signup.published == sa.false(),
        Signup.erased_at.is_(None),
        *filters.where(),
    ]
    if rated:
        where.append(Signup.rating.is_not(None))
        if beyond is not None and beyond.rating:
            later = (Signup.rating < beyond.rating) | (
                (Signup.rating == beyond.rating) & (Signup.id < beyond.id)
            )
            earlier = (Signup.rating > beyond.rating) | (
                (Signup.rating == beyond.rating) & (Signup.id > beyond.id)
            )
            where.append(later if forward else earlier)
        order: tuple[sa.UnaryExpression[Any], ...] = (
            (Signup.rating.desc(), Signup.id.desc())
            if forward
            else (Signup.rating.asc(), Signup.id.asc())
        )
    else:
        where.append(Signup.rating.is_(None))
        if beyond is not None and not beyond.rating:
            where.append(Signup.id < beyond.id if forward else Signup.id > beyond.id)
        order = (Signup.id.desc(),) if forward else (Signup.id.asc(),)
    return list(db.session.scalars(sa.select(Signup).where(*where).order_by(*order).limit(limit)))


def candidates(
    forum: Forum,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
    filters: Filters | None = None,
    per_page: int = PER_PAGE,
) -> CandidatePage:
    """Return one page of the comments that may be published and are not yet: best rated
    first, unrated last, newest first within a rating (keyset pages: ``after`` the last of
    one page, or ``before`` the first of another).

    The selection itself is not paged: it is small, and the editor shows it whole above.
    Rejected comments are candidates (a caller turned down for the air may still have
    written something worth publishing); the editor shows them as rejected.
    """
    filters = filters or Filters()
    want = per_page + 1
    if before is None:
        # Forward: the rated segment first (unless the cursor is past it), then the unrated.
        items: list[Signup] = []
        if after is None or after.rating:
            items = _segment(forum, filters, rated=True, beyond=after, forward=True, limit=want)
        if len(items) < want:
            rest = after if after is not None and not after.rating else None
            items += _segment(
                forum, filters, rated=False, beyond=rest, forward=True, limit=want - len(items)
            )
        page = items[:per_page]
        more = len(items) > per_page
        return CandidatePage(
            page,
            Cursor.of(page[-1]) if more else None,
            Cursor.of(page[0]) if after is not None and page else None,
            filters,
        )
    # Backward: read in reverse from ``before``, then turn the page the right way round.
    items = []
    if not before.rating:
        items = _segment(forum, filters, rated=False, beyond=before, forward=False, limit=want)
    if len(items) < want:
        rest = before if before.rating else None
        items += _segment(
            forum, filters, rated=True, beyond=rest, forward=False, limit=want - len(items)
        )
    page = list(reversed(items[:per_page]))
    more = len(items) > per_page
    return CandidatePage(
        page,
        Cursor.of(page[-1]) if page else None,
        Cursor.of(page[0]) if more else None,
        filters,
    )


@functools.cache
def _balance_query() -> Any:
    # Built once per process, the forum a bind parameter (the public page asks it).
    return (
        sa.select(Signup.stance, sa.func.count())
        .where(
            # An index-only count over ix_signups_forum_stance (forum, stance, status).
            Signup.forum_id == sa.bindparam("balance_forum"),
            Signup.stance.is_not(None),
            Signup.status.not_in(SIGNUP_UNSCREENED),
        )
        .group_by(Signup.stance)
    )


def balance(forum: Forum) -> dict[str, int]:
    """Count screened signups by stance: the balance of opinion the selection reflects."""
    rows = db.session.execute(_balance_query(), {"balance_forum": forum.id})
    counts = {s: 0 for s in STANCES}
    counts.update({stance: n for stance, n in rows if stance})
    return counts


# The public page of a published forum is its busiest: after the programme, anyone who
# heard it may open it. Its balance counts every screened signup by stance, an index-only
# count that grows with the forum (35,000 entries, 5-8 ms in PostgreSQL, for a forum of
# 100,000: most of the page's time), and once the forum is published it hardly changes
# (a listener withdrawing, a producer's late correction). Each process keeps it for
# PUBLIC_BALANCE_SECONDS; the comments themselves are read on every request, so a
# withdrawn comment leaves the page at once. Producers' pages always count afresh.
PUBLIC_BALANCE_SECONDS = 30.0
PUBLIC_BALANCE_KEPT = 256  # forums; the oldest goes first
_public_balances: dict[tuple[int, int, Any], tuple[float, dict[str, int]]] = {}
_public_balances_lock = threading.Lock()


def public_balance(forum: Forum) -> dict[str, int]:
    """``balance`` for the public page: counted at most once per PUBLIC_BALANCE_SECONDS
    per process and forum, and afresh when the forum's row changed (republished, or a
    listener withdrew, which moves its queue version on)."""
    key = (forum.id, forum.queue_version, forum.updated_at)
    now = time.monotonic()
    kept = _public_balances.get(key)
    if kept is not None and now - kept[0] < PUBLIC_BALANCE_SECONDS:
        return dict(kept[1])
    counts = balance(forum)
    with _public_balances_lock:
        _public_balances.pop(key, None)
        _public_balances[key] = (now, counts)
        while len(_public_balances) > PUBLIC_BALANCE_KEPT:
            del _public_balances[next(iter(_public_balances))]
    return dict(counts)


def reflect_margin(size: int) -> float:
    """Return how far (in comments) a stance's count may be from its fair share in a
    selection of ``size``: REFLECT_TOLERANCE of the selection, and never less than one
    comment, which is as close as a small selection can come."""
    return max(1.0, REFLECT_TOLERANCE * size)


def reflects(overall: dict[str, int], chosen: dict[str, int], unclassified: int = 0) -> bool:
    """Say whether a selection counted ``chosen`` by stance mirrors ``overall``.

    True when both have comments, every chosen comment has a stance (``unclassified``
    is 0), and each stance's count is strictly within ``reflect_margin`` of its fair share
    (selection size times its share of ``overall``). "Strictly" matters for small selections:
    two comments for and none against do not reflect an even split; one of each does.
    And a stance with REFLECT_MIN_SHARE of ``overall`` or more has at least one comment.
    """
    total = sum(overall.values())
    size = sum(chosen.values())
    if not total or not size or unclassified:
        return False
    margin = reflect_margin(size)
    for stance in STANCES:
        share = overall.get(stance, 0) / total
        count = chosen.get(stance, 0)
        if abs(count - size * share) >= margin or (share >= REFLECT_MIN_SHARE and not count):
            return False
    return True


@dataclass(frozen=True)
class Balance:
    """The balance of opinion beside the selection's own, and whether one mirrors the other.

    ``overall``: screened signups by stance; ``unclassified``: screened signups with no
    stance; ``chosen``/``chosen_unclassified``: the same for the published selection.
    """

    overall: dict[str, int]
    unclassified: int
    chosen: dict[str, int]
    chosen_unclassified: int

    @property
    def total(self) -> int:
        return sum(self.overall.values())

    @property
    def chosen_total(self) -> int:
        return sum(self.chosen.values()) + self.chosen_unclassified

    @property
    def reflects(self) -> bool:
        return reflects(self.overall, self.chosen, self.chosen_unclassified)


def balances(
    forum: Forum,
    chosen: Sequence[Any] | None = None,
    *,
    screened: int | None = None,
    count_unclassified: bool = True,
    public: bool = False,
) -> Balance:
    """Return the forum's balance of opinion and its selection's.

    ``chosen`` (the selection) and ``screened`` (the number of screened signups), when the
    caller has them already, save reading them again. The public page does not show the
    screened signups without a stance (``count_unclassified=False``): one count fewer of a
    forum's signups on its busiest page; ``public``: the overall counts as
    ``public_balance`` keeps them.
    """
    if chosen is None:
        chosen = selection(forum)
    if screened is None and not count_unclassified:
        screened = 0
    elif screened is None:
        screened = db.session.scalar(
            # Index-only on ix_signups_forum_status_created.
            sa.select(sa.func.count())
            .select_from(Signup)
            .where(Signup.forum_id == forum.id, Signup.status.not_in(SIGNUP_UNSCREENED))
        )
    overall = public_balance(forum) if public else balance(forum)
    by_stance = {s: 0 for s in STANCES}
    unclassified = 0
    for signup in chosen:
        if signup.stance in by_stance:
            by_stance[signup.stance] += 1
        else:
            unclassified += 1
    unknown = max(0, (screened or 0) - sum(overall.values())) if count_unclassified else 0
    return Balance(overall, unknown, by_stance, unclassified)
