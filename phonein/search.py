"""Producers' search over a forum's signups, and its pages.

What a producer types is matched against ``Signup.search_text``: name, location and
question folded once, when they are written (``searchable``), so that a search compares
stored text instead of folding every signup on every request. Folding (``fold``):

* case, by Unicode case folding ("ANNA", "Straße" = "strasse");
* accents and other marks, by Unicode decomposition ("João" = "joao", "Zoë" = "zoe"),
  and the Latin letters that do not decompose ("Søren" = "soren", "Łukasz" = "lukasz",
  "Æ" = "ae");
* Cyrillic and Greek, transliterated to Latin letter by letter (a simplified BGN/PCGN
  romanisation: "Анна" = "anna", "Юлия" = "yuliya", "Щукин" = "shchukin"), so a producer
  finds a name in the script they can type, and Cyrillic typed finds Latin too. One
  letter gives one spelling: "yulia" does not find "Юлия" ("yuli" does);
* other scripts (Arabic, Hebrew, CJK, …) are kept, case- and mark-folded: they are found
  by what is typed in them.

The query is folded the same way, in Python, on both databases. On PostgreSQL a pg_trgm
GIN index over ``search_text`` (migration 0011) finds the candidates; SQLite scans the
forum's rows (a station on SQLite is small). A query that reads as a phone number is also
normalised through ``phones.normalize`` to E.164 and matched exactly (the unique
(forum, phone) index), and any run of digits is matched inside the stored numbers (a
trigram index on PostgreSQL), so "+44 7700 900123", "07700 900123", "0044 7700 900123",
"447700900123" and "900123" all find +447700900123.

Pages are newest first. ``after`` (the id of the last signup of the page before) gives
the next page by keyset, from the index, however deep; ``page`` (OFFSET) stays for the
API's contract.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from . import phones
from .errors import Invalid
from .extensions import db
from .inputs import clean_text
from .models import CALL_LIVE, MAX_ID, Call, Forum, Signup, SignupStatus

# A query typed as a phone number: digits with the usual separators.
PHONE_LIKE = re.compile(r"^[\d\s+().\-/]+$")
# Fewer digits than this match too many numbers to be what a producer means.
PHONE_MIN_DIGITS = 4
QUERY_MAX = 200

# Letter by letter, lower case: case is folded and marks are stripped first, so the
# Cyrillic short i, yo and yi, and accented Greek vowels, arrive here as their base letters.
# Written as code points: several of these letters look like Latin ones.
_LATIN = {
    "\u00f8": "o",  # o with stroke
    "\u0142": "l",  # l with stroke
    "\u0111": "d",  # d with stroke
    "\u00f0": "d",  # eth
    "\u00fe": "th",  # thorn
    "\u00e6": "ae",
    "\u0153": "oe",
    "\u0131": "i",  # dotless i
    "\u0127": "h",  # h with stroke
    "\u0167": "t",  # t with stroke
}
# Cyrillic from U+0430 (a) to U+044F (ya), then the Ukrainian, Belarusian, Serbian and
# Macedonian letters; "" drops the hard and soft signs.
_CYRILLIC_ROMAN = [
    "a", "b", "v", "g", "d", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p",
    "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "-", "y", "-", "e", "yu", "ya",
]  # fmt: skip
_CYRILLIC = {chr(0x430 + i): ("" if r == "-" else r) for i, r in enumerate(_CYRILLIC_ROMAN)}
_CYRILLIC.update(
    {
        "\u0456": "i",  # Ukrainian i
        "\u0454": "ye",  # Ukrainian ye
        "\u0491": "g",  # ghe with upturn
        "\u0452": "dj",
        "\u0458": "j",
        "\u0459": "lj",
        "\u045a": "nj",
        "\u045b": "c",
        "\u045f": "dz",
        "\u0453": "gj",
        "\u045c": "kj",
        "\u0455": "dz",
    }
)
# Greek from U+03B1 (alpha) to U+03C9 (omega); U+03C2 is the final sigma.
_GREEK_ROMAN = [
    "a", "v", "g", "d", "e", "z", "i", "th", "i", "k", "l", "m", "n", "x", "o", "p", "r",
    "s", "s", "t", "y", "f", "ch", "ps", "o",
]  # fmt: skip
_GREEK = {chr(0x3B1 + i): r for i, r in enumerate(_GREEK_ROMAN)}
FOLD_TABLE = str.maketrans({**_LATIN, **_CYRILLIC, **_GREEK})


def fold(value: str) -> str:
    """Fold ``value`` for search: case, marks, Cyrillic and Greek (see the module)."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    # The one Greek pair that is not spelled letter by letter (omicron upsilon).
    bare = bare.replace("\u03bf\u03c5", "ou")
    return " ".join(bare.translate(FOLD_TABLE).split())


def searchable(values: Mapping[str, Any] | Signup) -> str:
    """Return the ``search_text`` to store for a signup's (or these) name, location, question.

    Every write of those three fields stores this beside them (``signups``, ``privacy``);
    ``tests/test_search_and_pages.py`` checks each path.
    """
    fields = ("name", "location", "question")
    if isinstance(values, Signup):
        parts = [getattr(values, field) for field in fields]
    else:
        parts = [values.get(field) for field in fields]
    return fold(" ".join(part or "" for part in parts))


def _like_escape(text: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", text)


def _phone_numbers(text: str, forum: Forum) -> tuple[set[str], str | None]:
    """Return the E.164 numbers ``text`` may be, and digits to find inside stored numbers.

    Typed nationally it is a number of the forum's country (its zone), else of the
    station's default region; typed without its "+", an international number.
    """
    digits = re.sub(r"\D", "", text)
    if not PHONE_LIKE.match(text) or len(digits) < PHONE_MIN_DIGITS:
        return set(), None
    region = current_app.config["DEFAULT_REGION"]
    numbers: set[str] = set()
    for typed in (text, "+" + digits):
        with contextlib.suppress(Invalid):
            numbers.add(
                phones.normalize(
                    typed, country=None, timezone=forum.timezone, default_region=region
                )
            )
    if numbers:
        return numbers, None
    # Part of a number: stored numbers are E.164, so a national trunk 0 or an
    # international 00 the producer typed is not in them.
    return numbers, digits.lstrip("0") or None


@dataclass(frozen=True)
class _Query:
    """What a typed query asks for: the folded text, and numbers it may be."""

    like: str  # a LIKE pattern over ``search_text``
    phones: tuple[str, ...]  # E.164 numbers to match exactly
    digits: str | None  # a LIKE pattern over the stored numbers


def _parse(forum: Forum, q: str) -> _Query | None:
    text = clean_text(q)[:QUERY_MAX]
    folded = fold(text)
    if not folded:
        return None
    numbers, digits = _phone_numbers(text, forum)
    return _Query(
        "%" + _like_escape(folded) + "%",
        tuple(sorted(numbers)),
        "%" + digits + "%" if digits and len(digits) >= PHONE_MIN_DIGITS else None,
    )


def _matches(phones: bool, digits: bool) -> sa.ColumnElement[bool]:
    """The match of ``_Query``, its values the bind parameters ``s_like``, ``s_phones``
    and ``s_digits``."""
    matches: list[sa.ColumnElement[bool]] = [
        Signup.search_text.like(sa.bindparam("s_like"), escape="\\")
    ]
    if phones:
        matches.append(Signup.phone.in_(sa.bindparam("s_phones", expanding=True)))
    if digits:
        matches.append(Signup.phone.like(sa.bindparam("s_digits")))
    return sa.or_(*matches)


def condition(forum: Forum, q: str) -> sa.ColumnElement[bool] | None:
    """Return what a signup of ``forum`` must satisfy to match ``q`` (None: no search).

    For callers that build their own list (the screening page): combine it with
    ``Signup.forum_id == forum.id``.
    """
    query = _parse(forum, q)
    if query is None:
        return None
    found = _matches(bool(query.phones), query.digits is not None)
    return found.params(s_like=query.like, s_phones=list(query.phones), s_digits=query.digits)


@dataclass(frozen=True)
class Page:
    """One page of signups, newest first."""

    items: list[Signup]
    total: int | None  # how many match; None when not counted (``count=False``)
    next_after: int | None  # ``after`` for the next page; None on the last
    # With ``lines=True``: signup id -> its call on the line, for those that have one.
    lines: dict[int, Call] = field(default_factory=dict)


@functools.cache
def _anchor_statement() -> Any:
    return sa.select(Signup.created_at, Signup.id).where(
        Signup.id == sa.bindparam("s_after"), Signup.forum_id == sa.bindparam("s_forum")
    )


def _anchor(forum: Forum, after: int) -> dict[str, Any]:
    """Return the bind parameters of signup ``after`` of ``forum`` (its created_at and id)
    to page from; 422 if there is none."""
    row = None
    if 0 < after <= MAX_ID:
        row = db.session.execute(
            _anchor_statement(), {"s_after": after, "s_forum": forum.id}
        ).one_or_none()
    if row is None:
        raise Invalid({"after": f"Signup {after} is not in this forum."})
    return {"s_after_at": row.created_at, "s_after_id": row.id}


def _filters(status: bool) -> list[sa.ColumnElement[bool]]:
    """The forum (``s_forum``) and, with ``status``, the status (``s_status``)."""
    found = [Signup.forum_id == sa.bindparam("s_forum")]
    if status:
        found.append(Signup.status == sa.bindparam("s_status"))
    return found


def _before_anchor(created_at: Any, signup_id: Any) -> sa.ColumnElement[bool]:
    anchor = sa.tuple_(
        sa.bindparam("s_after_at", type_=Signup.created_at.type),
        sa.bindparam("s_after_id", type_=sa.Integer),
    )
    return sa.tuple_(created_at, signup_id) < anchor


def _with_line(stmt: sa.Select[Any], lines: bool) -> sa.Select[Any]:
    """With ``lines``, each signup's call on the line (its newest live call) LEFT JOINed,
    as one more column: the page's own statement reads it, where a query of its own was
    one more round trip per page."""
    if not lines:
        return stmt
    newer = aliased(Call)
    newest = (
        sa.select(sa.func.max(newer.id))
        .where(newer.signup_id == Signup.id, newer.state.in_(CALL_LIVE))
        .scalar_subquery()
    )
    return stmt.outerjoin(Call, Call.id == newest).add_columns(Call)


def _paged(stmt: sa.Select[Any]) -> sa.Select[Any]:
    return stmt.limit(sa.bindparam("s_limit", type_=sa.Integer)).offset(
        sa.bindparam("s_offset", type_=sa.Integer)
    )


@functools.cache
def _search_statement(
    status: bool, phones: bool, digits: bool, count: bool, keyset: bool, lines: bool
) -> sa.Select[Any]:
    """One page of the matches of a search, with their count (or NULL) and, with
    ``lines``, their calls on the line; built once per process for each shape; every
    value is a bind parameter.

    One pass: every match has to be read and checked anyway (the trigram index only
    narrows them down), so the page and the count come from the same matches.
    MATERIALIZED keeps PostgreSQL from walking the forum's newest-first index and checking
    every signup to fill one page.
    """
    matches = (
        sa.select(Signup.id, Signup.created_at)
        .where(*_filters(status), _matches(phones, digits))
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    total_of: Any = (
        sa.select(sa.func.count()).select_from(matches).scalar_subquery() if count else sa.null()
    )
    one_page = _paged(
        sa.select(matches.c.id, total_of.label("total"))
        .where(*([_before_anchor(matches.c.created_at, matches.c.id)] if keyset else []))
        .order_by(matches.c.created_at.desc(), matches.c.id.desc())
    ).subquery()
    return _with_line(
        sa.select(Signup, one_page.c.total)
        .join(one_page, Signup.id == one_page.c.id)
        .order_by(Signup.created_at.desc(), Signup.id.desc()),
        lines,
    )


@functools.cache
def _list_statements(
    status: bool, keyset: bool, match: tuple[bool, bool] | None, lines: bool
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The count and the page of a list (built once per shape): without a search, or a
    search's further pages when ``_search_statement`` found none there; ``match`` is
    ``_matches``'s (phones, digits).

    Without a search the count reads only the index (ix_signups_forum_status_created /
    ix_signups_forum_created) and the page only its own rows.
    """
    conditions = _filters(status)
    if match is not None:
        conditions.append(_matches(*match))
    count = sa.select(sa.func.count()).select_from(Signup).where(*conditions)
    page = _paged(
        _with_line(
            sa.select(Signup)
            .where(*conditions, *([_before_anchor(Signup.created_at, Signup.id)] if keyset else []))
            .order_by(Signup.created_at.desc(), Signup.id.desc()),
            lines,
        )
    )
    return count, page


def search(
    forum: Forum,
    *,
    status: str | None,
    q: str | None,
    page: int = 1,
    per_page: int = 50,
    after: int | None = None,
    count: bool = True,
    lines: bool = False,
) -> Page:
    """Return one page of a forum's signups matching ``status`` and ``q``, newest first.

    ``after``: the page that follows that signup (keyset: as cheap at the end of the list
    as at the start, and stable while new signups arrive); otherwise page ``page``.
    Pages follow ``ix_signups_forum_created`` / ``ix_signups_forum_status_created``.
    ``count=False`` leaves the total out: counting a forum of 100,000 reads 100,000 index
    entries, which a client that has the first page's total need not pay again.
    ``lines``: read each signup's call on the line too (``Page.lines``), in the same
    statement.
    """
    params: dict[str, Any] = {"s_forum": forum.id}
    if status:
        try:
            params["s_status"] = SignupStatus(status).value
        except ValueError:
            raise Invalid({"status": "Unknown status."}) from None
    query = _parse(forum, q or "")
    keyset = after is not None
    if after is not None:
        params.update(_anchor(forum, after))
    offset = 0 if keyset else (page - 1) * per_page
    # One more than a page: whether it exists says whether a next page does.
    params.update(s_limit=per_page + 1, s_offset=offset)
    match = None
    if query is not None:
        match = (bool(query.phones), query.digits is not None)
        params.update(s_like=query.like, s_phones=list(query.phones), s_digits=query.digits)
        rows = db.session.execute(
            _search_statement(bool(status), *match, count, keyset, lines), params
        ).all()
        if rows:
            return _page(forum, [(row[0], *row[2:]) for row in rows], rows[0][1], per_page)
        if offset == 0 and not keyset:
            return Page([], 0 if count else None, None)
    count_statement, page_statement = _list_statements(bool(status), keyset, match, lines)
    total = (db.session.scalar(count_statement, params) or 0) if count else None
    found = db.session.execute(page_statement, params).all()
    return _page(forum, [tuple(row) for row in found], total, per_page)


def _page(forum: Forum, rows: list[tuple[Any, ...]], total: int | None, per_page: int) -> Page:
    """``rows``: (signup,) or, with lines, (signup, its call or None)."""
    # One more than a page was read: whether it exists says whether a next page does.
    more = len(rows) > per_page
    rows = rows[:per_page]
    items: list[Signup] = [row[0] for row in rows]
    for signup in items:
        # Their forum is this one: no lazy load per signup when the page is shown.
        set_committed_value(signup, "forum", forum)
    lines = {row[0].id: row[1] for row in rows if len(row) > 1 and row[1] is not None}
    return Page(items, total, items[-1].id if more and items else None, lines)
