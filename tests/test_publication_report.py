"""The publication editor (saves what is on screen, keyset pages, filters, rejected shown as
such), the balance rule and its public sentence, the after-show report's figures and the
CSV exports (staff only, safe from formula injection)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from phonein import forums, publication, report
from phonein.exports import BOM, csv_lines, safe_cell
from phonein.extensions import db
from phonein.models import Call, Message, Signup
from phonein.times import utcnow
from tests.conftest import PG_URL, login, make_forum, make_signup, utc

REFLECTS = "The comments below reflect that balance."


# The balance rule.


@pytest.mark.parametrize(
    ("overall", "chosen", "unclassified", "expected"),
    [
        ({"for": 60, "against": 40}, {"for": 3, "against": 2}, 0, True),  # exact
        ({"for": 60, "against": 40}, {"for": 5, "against": 0}, 0, False),  # a side left out
        ({"for": 60, "against": 40}, {"for": 4, "against": 1}, 0, False),  # one comment off
        ({"for": 70, "against": 30}, {"for": 4, "against": 1}, 0, True),  # within one comment
        ({"for": 50, "against": 50}, {"for": 2, "against": 0}, 0, False),  # one off: not within
        ({"for": 50, "against": 50}, {"for": 1, "against": 1}, 0, True),
        ({"for": 60, "against": 40}, {"for": 1}, 0, False),  # 40% must appear at all
        ({"for": 95, "against": 5}, {"for": 1}, 0, True),  # a small minority may be absent
        ({"for": 50, "against": 50}, {"for": 30, "against": 10}, 0, False),  # 20 points off
        ({"for": 50, "against": 50}, {"for": 21, "against": 19}, 0, True),  # within 5% of 40
        ({"for": 60, "against": 40}, {"for": 3, "against": 2}, 1, False),  # one without stance
        ({"for": 0, "against": 0}, {"for": 1}, 0, False),  # nothing to reflect
        ({"for": 3}, {}, 0, False),  # nothing chosen
    ],
)
def test_the_balance_rule(overall, chosen, unclassified, expected):
    assert publication.reflects(overall, chosen, unclassified) is expected


def test_reflect_margin_is_one_comment_or_five_percent():
    assert publication.reflect_margin(3) == 1.0
    assert publication.reflect_margin(40) == 2.0


def _signup(forum, stance=None, status="approved", **values):  # type: ignore[no-untyped-def]
    """Add a screened signup to ``forum``, even a closed one (as if it came before)."""
    was, forum.status = forum.status, "open"
    signup = make_signup(forum, status=status, **values)
    signup.stance = stance
    forum.status = was
    db.session.commit()
    return signup


def _publish_forum(client, forum):  # type: ignore[no-untyped-def]
    forum.status = "published"
    db.session.commit()
    return client.get(f"/forums/{forum.slug}").get_data(as_text=True)


def test_the_public_page_says_the_selection_reflects_the_balance_only_when_it_does(client, app):
    forum = make_forum(status="closed")
    fors = [_signup(forum, "for") for _ in range(3)]
    againsts = [_signup(forum, "against") for _ in range(2)]
    for s in (fors[0], againsts[0]):
        publication.set_published(s, {"published": True}, utcnow())
    db.session.commit()
    page = _publish_forum(client, forum)
    assert REFLECTS in page
    assert 'role="img"' in page and '<title id="balance-all-title">' in page  # drawn
    assert "<strong>3</strong> in favour" in page  # and counted

    # Take the only "against" out: 1 for, 0 against no longer mirrors 3 to 2.
    publication.set_published(againsts[0], {"published": False}, utcnow())
    publication.set_published(fors[1], {"published": True}, utcnow())
    db.session.commit()
    page = client.get(f"/forums/{forum.slug}").get_data(as_text=True)
    assert REFLECTS not in page
    assert "do not mirror that balance" in page
    assert "Among the comments below:" in page and 'id="balance-chosen"' in page


def test_the_stance_bar_is_an_accessible_svg(client, app):
    forum = make_forum(status="closed")
    _signup(forum, "for")
    chosen = _signup(forum, "against")
    publication.set_published(chosen, {"published": True}, utcnow())
    db.session.commit()
    page = _publish_forum(client, forum)
    assert 'aria-labelledby="balance-all-title balance-all-desc"' in page
    assert '<desc id="balance-all-desc">In favour: 1 (50%); Against: 1 (50%)</desc>' in page
    assert "<script" not in page.split('id="balance-all"')[1].split("</svg>")[0]


# The editor.


def _editor(client, forum, **args):  # type: ignore[no-untyped-def]
    response = client.get(f"/producer/forums/{forum.slug}/publication", query_string=args)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _card_fields(signup, published=None, was=False, quote="", was_quote=""):  # type: ignore[no-untyped-def]
    fields = {
        "shown": str(signup.id),
        f"was-published-{signup.id}": "y" if was else "",
        f"pull_quote-{signup.id}": quote,
        f"was-pull_quote-{signup.id}": was_quote,
        f"order-{signup.id}": "",
        f"was-order-{signup.id}": "",
    }
    if published:
        fields[f"published-{signup.id}"] = "y"
    return fields


def test_publish_without_javascript_publishes_the_ticks_on_screen(client, app):
    forum = make_forum(status="closed")
    ticked = _signup(forum, "for")
    untouched = _signup(forum, "against")
    login(client)
    data = {**_card_fields(ticked, published=True), "action": "publish"}
    data["shown"] = [str(ticked.id), str(untouched.id)]
    data.update({k: v for k, v in _card_fields(untouched).items() if k != "shown"})
    response = client.post(f"/producer/forums/{forum.slug}/publication", data=data)
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Signup, ticked.id).published is True
    assert db.session.get(Signup, untouched.id).published is False
    assert forum.status == "published"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{ticked.name} is now in the selection." in page
    assert "Published: the public page now shows 1 comment." in page


def test_the_next_page_button_saves_the_ticks_first(client, app):
    forum = make_forum(status="closed")
    signups = [_signup(forum, "for") for _ in range(3)]
    login(client)
    first = publication.candidates(forum, per_page=2)
    target = signups[-1]  # newest first: on the first page
    assert target.id in [s.id for s in first.items]
    data = {**_card_fields(target, published=True), "go": f"after:{first.items[-1].id}"}
    data["go"] = f"after:0.{first.items[-1].id}"
    response = client.post(f"/producer/forums/{forum.slug}/publication", data=data)
    assert response.status_code == 302 and "after=0." in response.headers["Location"]
    db.session.expire_all()
    assert db.session.get(Signup, target.id).published is True


def test_an_untouched_field_does_not_undo_a_colleagues_change(client, app):
    forum = make_forum(status="closed")
    signup = _signup(forum, "for")
    login(client)
    # The page was drawn before a colleague published this comment; this producer only
    # typed a pull quote. The tick the page shows (unticked) was not touched.
    publication.set_published(signup, {"published": True}, utcnow())
    db.session.commit()
    data = _card_fields(signup, published=False, was=False, quote="Shorter trams")
    client.post(f"/producer/forums/{forum.slug}/publication", data=data)
    db.session.expire_all()
    saved = db.session.get(Signup, signup.id)
    assert saved.published is True and saved.pull_quote == "Shorter trams"


def test_a_refused_change_is_said_and_nothing_is_published(client, app):
    forum = make_forum(status="closed")
    good = _signup(forum, "for")
    bad = _signup(forum, "against")
    login(client)
    data = {**_card_fields(good, published=True), "action": "publish"}
    data["shown"] = [str(good.id), str(bad.id)]
    bad_fields = _card_fields(bad, published=True)
    bad_fields[f"order-{bad.id}"] = "first"
    data.update({k: v for k, v in bad_fields.items() if k != "shown"})
    response = client.post(f"/producer/forums/{forum.slug}/publication", data=data)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Give the order as a whole number." in page and "Nothing was published" in page
    db.session.expire_all()
    assert forum.status == "closed"
    assert db.session.get(Signup, good.id).published is True  # kept, said so
    assert f"{good.name} is now in the selection." in page


def test_rejected_signups_are_shown_as_rejected(client, app):
    forum = make_forum(status="closed")
    rejected = _signup(forum, "against", status="rejected", name="Rita Rejected")
    _signup(forum, "for", name="Alan Approved")
    login(client)
    page = _editor(client, forum)
    card = page.split(f'id="signup-{rejected.id}"')[1].split("</article>")[0]
    assert "Rejected in screening" in card
    only = _editor(client, forum, status="rejected")
    assert "Rita Rejected" in only and "Alan Approved" not in only


def test_the_editor_shows_the_selections_balance_beside_the_overall_one(client, app):
    forum = make_forum(status="closed")
    chosen = _signup(forum, "for")
    _signup(forum, "against")
    _signup(forum, None)
    publication.set_published(chosen, {"published": True}, utcnow())
    db.session.commit()
    login(client)
    page = _editor(client, forum)
    assert "All screened signups (3)" in page and "The selection (1)" in page
    assert 'id="balance-all"' in page and 'id="balance-chosen"' in page
    assert "no stance (not counted): <strong>1</strong>" in page


def test_keyset_pages_cover_every_candidate_once_both_ways_with_filters(app):
    forum = make_forum()
    made = []
    for n in range(11):
        signup = _signup(forum, "for" if n % 2 else "against")
        signup.rating = (None, 1, 3, 5)[n % 4]
        made.append(signup)
    db.session.commit()
    seen: list[int] = []
    page = publication.candidates(forum, per_page=3)
    pages = [page]
    while page.next is not None:
        page = publication.candidates(forum, after=page.next, per_page=3)
        pages.append(page)
    seen = [s.id for p in pages for s in p.items]
    assert sorted(seen) == sorted(s.id for s in made) and len(seen) == len(set(seen))
    ratings = [db.session.get(Signup, i).rating or 0 for i in seen]
    assert ratings == sorted(ratings, reverse=True)
    # Back from the last page, page by page, to the first.
    back = [pages[-1]]
    while back[-1].previous is not None:
        back.append(publication.candidates(forum, before=back[-1].previous, per_page=3))
    assert [[s.id for s in p.items] for p in reversed(back)] == [
        [s.id for s in p.items] for p in pages
    ]
    filtered = publication.candidates(
        forum, filters=publication.Filters.parse("for", None), per_page=50
    )
    assert {s.stance for s in filtered.items} == {"for"} and len(filtered.items) == 5


def test_bad_cursors_and_filters_are_the_first_page(client, app):
    forum = make_forum()
    _signup(forum, "for")
    login(client)
    for args in (
        {"after": "x.y"},
        {"before": "9.1"},
        {"stance": "<b>"},
        {"after": "1.99999999999"},
    ):
        assert "signup-card" in _editor(client, forum, **args)


# The report.


def _dataset(forum):  # type: ignore[no-untyped-def]
    """A known forum: 6 signups over two hours, three countries, calls and texts."""
    start = utc(2026, 11, 30, 9, 5)  # 09:05 UTC = 09:05 in London
    layout = [
        ("GB", "approved", "for", 0),
        ("GB", "rejected", "against", 10),
        ("GB", "done", "for", 20),
        ("US", "done", "against", 70),
        ("US", "pending", None, 80),
        (None, "withdrawn", None, 85),
    ]
    made = []
    for country, status, stance, minutes in layout:
        phone = {"GB": None, "US": "+1 201 555 01{:02d}", None: None}[country]
        # No consent to texts: the texts below are the only ones.
        values = {"now": start + timedelta(minutes=minutes), "sms_consent": False}
        if phone:
            values.update(phone=phone.format(len(made)), country="US")
        signup = make_signup(forum, status=status, **values)
        signup.stance = stance
        signup.country = country
        made.append(signup)
    for signup, aired, done in ((made[2], 0, 150), (made[3], 200, 290)):
        signup.on_air_at = start + timedelta(hours=3, seconds=aired)
        signup.done_at = start + timedelta(hours=3, seconds=done)
    t = start + timedelta(hours=3)
    db.session.add_all(
        [
            Call(
                forum_id=forum.id,
                signup_id=made[2].id,
                direction="inbound",
                state="completed",
                waiting_since=t - timedelta(seconds=60),
                on_air_at=t,
                ended_at=t + timedelta(seconds=150),
            ),
            Call(
                forum_id=forum.id,
                signup_id=made[3].id,
                direction="callback",
                state="completed",
                waiting_since=t + timedelta(seconds=80),
                on_air_at=t + timedelta(seconds=200),
                ended_at=t + timedelta(seconds=290),
            ),
            Call(forum_id=forum.id, signup_id=None, direction="inbound", state="failed"),
            Call(
                forum_id=forum.id,
                direction="studio",
                state="completed",
                waiting_since=t - timedelta(hours=1),
                on_air_at=t,
            ),
        ]
    )
    for n, (kind, status) in enumerate(
        [("confirmation", "delivered")] * 3 + [("reminder", "delivered"), ("reminder", "failed")]
    ):
        db.session.add(
            Message(
                forum_id=forum.id,
                signup_id=made[n].id,
                kind=kind,
                key=str(n),
                to=made[n].phone or "",
                body="x",
                send_at=start,
                status=status,
            )
        )
    db.session.commit()
    return made


def test_report_figures_from_a_known_dataset(app):
    forum = make_forum(timezone="Europe/London")
    _dataset(forum)
    timeline = report.signups_over_time(forum)
    assert timeline.unit == "hour"
    assert [(b.start.hour, b.count, b.cumulative) for b in timeline.buckets] == [
        (9, 3, 3),
        (10, 3, 6),
    ]
    assert report.by_country(forum) == [
        ("GB", "Britain (UK)", 3),
        ("US", "United States", 2),
        ("", "Unknown", 1),
    ]
    statuses = report.Statuses.of(forums.signup_counts(forum))
    assert (statuses.total, statuses.screened, statuses.approved) == (6, 4, 3)
    assert statuses.by_status["rejected"] == 1 and statuses.by_status["done"] == 2
    calls = report.calls(forum)
    assert (calls.on_air, calls.calls, calls.inbound, calls.callbacks, calls.answered) == (
        2,
        3,
        2,
        1,
        2,
    )
    assert calls.on_air_seconds == pytest.approx(120, abs=0.01)  # (150 + 90) / 2
    assert calls.wait_seconds == pytest.approx(90, abs=0.01)  # (60 + 120) / 2
    assert calls.call_on_air_seconds == pytest.approx(120, abs=0.01)
    texts = report.texts(forum)
    assert texts.get("confirmation", "delivered") == 3 and texts.get("reminder", "failed") == 1
    assert texts.kinds == ["confirmation", "reminder"] and texts.total == 5


def test_signups_over_many_days_are_counted_by_local_day(app):
    forum = make_forum(timezone="America/New_York", starts_at=utc(2026, 12, 20))
    # 03:00 UTC on the 2nd is still the 1st in New York.
    for moment in (utc(2026, 12, 1, 15), utc(2026, 12, 2, 3), utc(2026, 12, 4, 15)):
        make_signup(forum, now=moment)
    timeline = report.signups_over_time(forum)
    assert timeline.unit == "day"
    assert [(b.start.day, b.count) for b in timeline.buckets] == [(1, 2), (2, 0), (3, 0), (4, 1)]


def test_the_report_page_draws_and_tabulates(client, app):
    forum = make_forum(timezone="Europe/London")
    _dataset(forum)
    login(client)
    page = client.get(f"/producer/forums/{forum.slug}/report").get_data(as_text=True)
    for ident in ("chart-time", "chart-country", "chart-stance"):
        assert f'aria-labelledby="{ident}-title {ident}-desc"' in page
    assert '<table id="countries">' in page and "United States (US)" in page
    assert "2 min 00 s" in page and "1 min 30 s" in page  # on air, wait
    assert 'href="/producer/forums/' + forum.slug + '/signups.csv"' in page


def test_an_empty_forum_has_a_report(client, app):
    forum = make_forum()
    login(client)
    page = client.get(f"/producer/forums/{forum.slug}/report")
    assert page.status_code == 200 and "No signups yet." in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"


def test_a_presenter_gets_no_report_or_editor(client, app):
    forum = make_forum()
    login(client, "presenter")
    for path in ("report", "publication", "selection.csv"):
        assert client.get(f"/producer/forums/{forum.slug}/{path}").status_code == 403
    assert client.post(f"/producer/forums/{forum.slug}/publication").status_code == 403


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"shown": ["x", "-1", "99999999999999", "ID"], "go": "after:nonsense"},
        {"shown": "ID", "published-ID": "y", "order-ID": "9" * 40, "go": "before:5.5"},
        {"shown": "ID", "pull_quote-ID": "x" * 5000, "action": "publish"},
        {"go": "after:1.1", "stance": "<script>", "status": "on_air"},
    ],
)
def test_the_editor_form_never_fails_on_bad_input(client, app, data):
    forum = make_forum()
    n = str(_signup(forum, "for").id)
    login(client)
    data = {
        k.replace("ID", n): [v.replace("ID", n) for v in v]
        if isinstance(v, list)
        else v.replace("ID", n)
        for k, v in data.items()
    }
    response = client.post(f"/producer/forums/{forum.slug}/publication", data=data)
    assert response.status_code == 302
    assert client.get(response.headers["Location"]).status_code == 200


# CSV.


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+447400100000", "'+447400100000"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("  =1", "'  =1"),
        ("Plain text, with = inside", "Plain text, with = inside"),
        (-3, "-3"),
        (None, ""),
        (True, "yes"),
    ],
)
def test_csv_cells_never_start_a_formula(value, cell):
    assert safe_cell(value) == cell


def test_csv_lines_quote_and_keep_newlines():
    text = "".join(csv_lines(["a", "b"], [["x,y", "line 1\nline 2"]]))
    assert text.startswith(BOM)
    assert list(csv.reader(io.StringIO(text[1:]))) == [["a", "b"], ["x,y", "line 1\nline 2"]]


def test_signup_export_is_for_producers_and_defused(client, app):
    forum = make_forum()
    make_signup(forum, name="=cmd|'/c calc'!A1", question="@risk")
    for n in range(3):
        make_signup(forum, name=f"Plain {n}")
    url = f"/producer/forums/{forum.slug}/signups.csv"
    assert client.get(url).status_code in (302, 401)  # nobody logged in
    login(client, "presenter")
    assert client.get(url).status_code == 403
    client.post("/producer/logout")
    login(client)
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip(BOM))))
    assert len(rows) == 4
    assert rows[0]["name"] == "'=cmd|'/c calc'!A1" and rows[0]["question"] == "'@risk"
    assert rows[0]["phone"].startswith("'+44")


def test_signup_export_streams_in_batches(app, monkeypatch):
    monkeypatch.setattr(report, "BATCH", 2)
    forum = make_forum()
    made = [make_signup(forum).id for _ in range(5)]
    assert [row[0] for row in report.signup_rows(forum)] == made


def test_selection_export_is_the_published_order(client, app):
    forum = make_forum(status="closed")
    second = _signup(forum, "for", name="Second")
    first = _signup(forum, "against", name="First")
    _signup(forum, "for", name="Not chosen")
    publication.set_published(second, {"published": True, "order": 2}, utcnow())
    publication.set_published(
        first, {"published": True, "order": 1, "pull_quote": "-Quote"}, utcnow()
    )
    db.session.commit()
    login(client)
    response = client.get(f"/producer/forums/{forum.slug}/selection.csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip(BOM))))
    assert [(r["order"], r["name"], r["pull_quote"]) for r in rows] == [
        ("1", "First", "'-Quote"),
        ("2", "Second", ""),
    ]


def explain(sql: sa.Select, *, no_sort: bool = False) -> str:  # type: ignore[type-arg]
    with db.engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))
        if no_sort:
            # With sorts penalised too, a Sort left in the plan means no index serves the
            # order; without it, the choice hangs on whatever statistics the tests before
            # left (a few rows: any index and a sort cost about the same).
            conn.execute(sa.text("SET enable_sort = off"))
        compiled = sql.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        return "\n".join(conn.execute(sa.text(f"EXPLAIN {compiled}")).scalars())


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL")
def test_postgres_report_and_candidate_pages_use_indexes(app):
    forum = make_forum()
    country = explain(
        sa.select(Signup.country, sa.func.count())
        .where(Signup.forum_id == forum.id)
        .group_by(Signup.country)
    )
    assert "ix_signups_forum_country" in country
    kinds = explain(
        sa.select(Message.kind, Message.status, sa.func.count())
        .where(Message.forum_id == forum.id)
        .group_by(Message.kind, Message.status)
    )
    assert "ix_messages_forum_kind_status" in kinds
    page = explain(
        sa.select(Signup)
        .where(
            Signup.forum_id == forum.id,
            Signup.publish_consent == sa.true(),
            Signup.status.not_in(("pending", "withdrawn")),
            Signup.published == sa.false(),
            Signup.erased_at.is_(None),
            Signup.rating.is_not(None),
            (Signup.rating < 3) | ((Signup.rating == 3) & (Signup.id < 100)),
        )
        .order_by(Signup.rating.desc(), Signup.id.desc())
        .limit(51),
        no_sort=True,
    )
    assert "ix_signups_forum_candidates" in page and "Sort" not in page
