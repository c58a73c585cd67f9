"""Producers' search (folded case and accents, phone numbers in any typed form), the
signup list's pages, the balance of opinion and the publication editor's pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from phonein import publication
from phonein.extensions import db
from phonein.models import Signup
from phonein.times import utcnow
from tests.conftest import PG_URL, login, make_forum, make_signup


def found(client, producer, slug, q, **args):  # type: ignore[no-untyped-def]
    response = client.get(
        f"/api/v1/forums/{slug}/signups", query_string={"q": q, **args}, headers=producer
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(page) -> set[str]:  # type: ignore[no-untyped-def]
    return {item["name"] for item in page["items"]}


def test_search_folds_case_accents_and_cyrillic(client, producer):
    forum = make_forum()
    for name in ("ANNA Lindqvist", "Änna Berg", "João Silva", "Анна Петрова", "Bob Marley"):
        make_signup(forum, name=name)
    everyone_anna = {"ANNA Lindqvist", "Änna Berg", "Анна Петрова"}
    assert names(found(client, producer, forum.slug, "anna")) == everyone_anna
    assert names(found(client, producer, forum.slug, "joao")) == {"João Silva"}
    assert names(found(client, producer, forum.slug, "JOÃO")) == {"João Silva"}
    # Cyrillic typed is transliterated too, so it finds the Latin spellings as well.
    assert names(found(client, producer, forum.slug, "АННА")) == everyone_anna  # noqa: RUF001
    assert names(found(client, producer, forum.slug, "petrova")) == {"Анна Петрова"}
    assert names(found(client, producer, forum.slug, "Петров")) == {"Анна Петрова"}


@pytest.mark.parametrize(
    "stored, typed",
    [
        ("Søren Kierkegaard", "soren"),
        ("Łukasz Nowak", "lukasz"),
        ("Straße der Pariser", "strasse"),
        ("Zoë Ångström", "zoe angstrom"),
        ("Юлия Щукина", "yuliya shchukina"),
        ("Андрей Соловьёв", "andrei solovev"),
        ("Ελένη Παπαδοπούλου", "eleni papadopoulou"),
        ("山田 花子", "花子"),
        ("علي", "علي"),
    ],
)
def test_fold_spells_each_script_one_way(client, producer, stored, typed):
    forum = make_forum()
    make_signup(forum, name=stored)
    make_signup(forum, name="Someone Else")
    assert names(found(client, producer, forum.slug, typed)) == {stored}


def test_search_text_is_kept_on_every_write(app):
    from phonein import privacy, signups
    from phonein.search import searchable
    from phonein.times import utcnow

    forum = make_forum()
    signup = make_signup(forum, name="Анна", location="Zürich", question="Über?")
    assert signup.search_text == "anna zurich uber?"
    values = {
        "name": "Joã o",
        "location": "Kraków",
        "question": "Œuvre?",
        "email": None,
        "sms_consent": True,
        "publish_consent": True,
    }
    signups.change_by_listener(signup, values, utcnow())
    db.session.commit()
    db.session.refresh(signup)
    assert signup.search_text == searchable(signup) == "joa o krakow oeuvre?"
    forum.ends_at = forum.starts_at = utcnow() - timedelta(days=40)
    forum.closed_at = None
    db.session.commit()
    assert privacy.purge(utcnow(), older_than_days=30) == 1
    db.session.commit()
    db.session.refresh(signup)
    assert (signup.name, signup.search_text) == ("", "")


def test_search_looks_in_location_and_question_and_treats_wildcards_literally(client, producer):
    forum = make_forum()
    make_signup(forum, name="A", location="São Paulo, Brazil", question="Why?")
    make_signup(forum, name="B", question="What about 100% electric buses?")
    make_signup(forum, name="C", question="Nothing in particular")
    assert names(found(client, producer, forum.slug, "sao paulo")) == {"A"}
    assert names(found(client, producer, forum.slug, "100%")) == {"B"}
    assert names(found(client, producer, forum.slug, "%")) == {"B"}
    assert names(found(client, producer, forum.slug, "_")) == set()


@pytest.mark.parametrize(
    "typed",
    [
        "+44 7911 123456",
        "07911 123456",
        "07911123456",
        "447911123456",
        "0044 7911-123-456",
        "(07911) 123 456",
        "+447911123456",
        "1123456",
    ],
)
def test_search_finds_a_phone_number_however_it_is_typed(client, producer, typed):
    forum = make_forum()
    make_signup(forum, name="Wanted", phone="+447911123456")
    make_signup(forum, name="Other", phone="+447911123999")
    make_signup(forum, name="Abroad", phone="+33 6 12 34 56 78")
    assert names(found(client, producer, forum.slug, typed)) == {"Wanted"}


def test_a_national_number_is_read_in_the_forums_country(client, producer):
    forum = make_forum(timezone="Europe/Paris")
    make_signup(forum, name="Paris", phone="+33 6 12 34 56 78")
    assert names(found(client, producer, forum.slug, "06 12 34 56 78")) == {"Paris"}


def test_a_short_number_does_not_match_every_phone(client, producer):
    forum = make_forum()
    make_signup(forum, name="X", phone="+447911123456", question="Hello")
    assert found(client, producer, forum.slug, "44")["total"] == 0
    assert found(client, producer, forum.slug, "0000")["total"] == 0


@pytest.mark.parametrize("q", ["anna", "07911 123456", "12345"])
def test_a_search_pages_its_matches_and_a_page_past_them_is_empty(client, producer, q):
    forum = make_forum()
    made = [make_signup(forum, name="Anna", phone=f"+44791112345{i}").id for i in (6, 7, 8)]
    make_signup(forum, name="Bob", phone="+447911123999")
    expected = made[::-1] if q != "07911 123456" else [made[0]]
    first = found(client, producer, forum.slug, q, per_page=2)
    assert [item["id"] for item in first["items"]] == expected[:2]
    assert first["total"] == len(expected)
    second = found(client, producer, forum.slug, q, per_page=2, page=2)
    assert [item["id"] for item in second["items"]] == expected[2:]
    assert second["next_after"] is None
    past = found(client, producer, forum.slug, q, per_page=2, page=3)
    assert past["items"] == [] and past["total"] == len(expected)
    if first["next_after"] is not None:
        after = found(client, producer, forum.slug, q, per_page=2, after=first["next_after"])
        assert [item["id"] for item in after["items"]] == expected[2:]


def test_list_pages_newest_first_without_gaps_or_repeats(client, producer):
    forum = make_forum()
    made = [make_signup(forum).id for _ in range(7)]
    seen: list[int] = []
    for page in (1, 2, 3):
        body = found(client, producer, forum.slug, "", page=page, per_page=3)
        assert body["total"] == 7
        seen += [item["id"] for item in body["items"]]
    assert seen == list(reversed(made))
    approved = found(client, producer, forum.slug, "", status="approved")
    assert approved["total"] == 0


def test_the_other_pages_of_an_unchanged_forum_do_not_count_it_again(client, producer, monkeypatch):
    from phonein.api import signups as signups_api

    still = utcnow()  # the minute is part of the key: it must not turn mid-test
    monkeypatch.setattr(signups_api, "utcnow", lambda: still)
    forum = make_forum()
    for _ in range(5):
        make_signup(forum)
    make_signup(forum, status="approved")
    url = f"/api/v1/forums/{forum.slug}/signups"
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    def total(**query) -> tuple[int, bool]:  # type: ignore[no-untyped-def]
        statements.clear()
        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = client.get(url, query_string={"per_page": 2, **query}, headers=producer)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        assert response.status_code == 200
        counted = any("count(*)" in s and "FROM signups" in s for s in statements[1:])
        return response.get_json()["total"], counted

    assert total(page=1) == (6, True)
    assert total(page=2) == (6, False)  # the same forum, the same filter: counted once
    assert total(page=3) == (6, False)
    assert total(page=1, status="approved") == (1, True)  # another filter, another total
    make_signup(forum)  # a new signup changes the forum's tag: counted again
    assert total(page=2) == (7, True)
    approved = db.session.scalars(sa.select(Signup).where(Signup.status == "approved")).one()
    approved.status = "rejected"  # its updated_at moves with it (onupdate)
    db.session.commit()
    assert total(page=2, status="approved") == (0, True)


def walk(client, producer, slug, **args):  # type: ignore[no-untyped-def]
    """Follow ``next_after`` from the first page to the last; return the ids seen."""
    seen: list[int] = []
    after = None
    for _ in range(50):
        body = found(
            client, producer, slug, args.pop("q", ""), **args, **({"after": after} if after else {})
        )
        seen += [item["id"] for item in body["items"]]
        after = body["next_after"]
        if after is None:
            return seen
    raise AssertionError("no last page")


@pytest.mark.parametrize("q", ["", "listener"])
def test_keyset_pages_are_stable_while_signups_arrive(client, producer, q):
    forum = make_forum()
    same_moment = utcnow()
    # Signups in the same instant: the id breaks the tie, so none is skipped or repeated.
    made = [make_signup(forum, now=same_moment).id for _ in range(4)]
    made += [make_signup(forum).id for _ in range(3)]
    first = found(client, producer, forum.slug, q, per_page=3)
    assert [i["id"] for i in first["items"]] == made[:-4:-1]
    assert first["total"] == 7
    # A new signup arrives between pages: the next page carries on where the first ended.
    make_signup(forum)
    second = found(client, producer, forum.slug, q, per_page=3, after=first["next_after"])
    assert [i["id"] for i in second["items"]] == made[3::-1][:3]
    assert second["total"] is None  # the first page's total stands: no second count
    third = found(client, producer, forum.slug, q, per_page=3, after=second["next_after"])
    assert [i["id"] for i in third["items"]] == made[:1]
    assert third["next_after"] is None


def test_keyset_pages_follow_the_status_and_a_bad_cursor_is_a_422(client, producer):
    forum = make_forum()
    approved = [make_signup(forum, status="approved").id for _ in range(5)]
    make_signup(forum)
    other = make_signup(make_forum())
    assert walk(client, producer, forum.slug, status="approved", per_page=2) == approved[::-1]
    bad = client.get(
        f"/api/v1/forums/{forum.slug}/signups", query_string={"after": other.id}, headers=producer
    )
    assert bad.status_code == 422
    assert "after" in bad.get_json()["error"]["fields"]


def test_the_screening_page_links_to_older_signups_by_keyset(client, app):
    from phonein.web.producer import PER_PAGE

    forum = make_forum()
    made = [make_signup(forum).id for _ in range(PER_PAGE + 2)]
    login(client)
    first = client.get(f"/producer/forums/{forum.slug}/signups").get_data(as_text=True)
    assert f"after={made[2]}" in first and 'rel="next"' in first
    older = client.get(f"/producer/forums/{forum.slug}/signups?after={made[2]}")
    text = older.get_data(as_text=True)
    assert text.count('class="signup-card') == 2
    assert f'id="signup-{made[0]}"' in text and 'rel="next"' not in text


def test_queue_positions_in_the_list_are_those_of_the_queue(client, producer):
    forum = make_forum()
    queued = [make_signup(forum, status="queued").id for _ in range(4)]
    make_signup(forum)
    body = found(client, producer, forum.slug, "", per_page=3)
    places = {item["id"]: item["queue_position"] for item in body["items"]}
    assert places == {queued[3]: 4, queued[2]: 3, body["items"][0]["id"]: None}


def test_the_list_shows_each_signups_call_on_the_line(client, producer):
    from phonein.models import Call

    forum = make_forum()
    ringing, ended, none, again = (make_signup(forum, name=f"Caller {n}") for n in range(4))
    db.session.add_all(
        [
            Call(forum_id=forum.id, signup_id=ringing.id, direction="inbound", state="ringing"),
            Call(forum_id=forum.id, signup_id=ended.id, direction="inbound", state="completed"),
            # Two live calls (rang in twice): the newest is the one shown.
            Call(forum_id=forum.id, signup_id=again.id, direction="inbound", state="ringing"),
            Call(forum_id=forum.id, signup_id=again.id, direction="inbound", state="holding"),
        ]
    )
    db.session.commit()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    # The first page and a keyset page, with and without a search.
    for q, args in (("", {}), ("caller", {}), ("", {"after": again.id}), ("caller", {"page": 1})):
        statements.clear()
        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            body = found(client, producer, forum.slug, q, **args)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        calls = {item["id"]: item["call"] for item in body["items"]}
        assert calls[ringing.id]["state"] == "ringing"
        assert calls[ringing.id]["signup_id"] == ringing.id
        assert calls[ended.id] is None and calls[none.id] is None
        if again.id in calls:
            assert calls[again.id]["state"] == "holding"
        # The calls ride the page's own statement: no query of calls of its own.
        assert not [s for s in statements if s.lstrip().upper().startswith("SELECT CALLS.")]
        assert any("FROM signups" in s and "calls" in s for s in statements), statements


def test_balance_counts_screened_signups_by_stance(app):
    forum = make_forum()
    for stance, status in [
        ("for", "approved"),
        ("for", "queued"),
        ("against", "rejected"),
        ("neutral", "pending"),  # unscreened: not counted
        (None, "approved"),
    ]:
        signup = make_signup(forum, status=status)
        signup.stance = stance
    db.session.commit()
    assert publication.balance(forum) == {"for": 2, "against": 1, "neutral": 0, "other": 0}


def test_publication_editor_pages_the_candidates_best_rated_first(app):
    forum = make_forum()
    for order in (2, 1):
        signup = make_signup(forum, status="approved")
        publication.set_published(signup, {"published": True, "order": order}, signup.created_at)
    rated = []
    for rating in (3, 5, None, 4):
        signup = make_signup(forum, status="approved")
        signup.rating = rating
        rated.append(signup)
    make_signup(forum, status="pending")  # unscreened: never a candidate
    make_signup(forum, status="approved", publish_consent=False)  # no consent
    db.session.commit()
    by_rating = {s.rating: s.id for s in rated}
    first = publication.candidates(forum, per_page=2)
    second = publication.candidates(forum, after=first.next, per_page=2)
    assert [s.id for s in first.items] == [by_rating[5], by_rating[4]]
    assert [s.id for s in second.items] == [by_rating[3], by_rating[None]]  # unrated last
    assert first.previous is None and second.next is None
    back = publication.candidates(forum, before=second.previous, per_page=2)
    assert [s.id for s in back.items] == [s.id for s in first.items] and back.previous is None


def test_publication_page_links_to_the_next_page(client, app):
    forum = make_forum()
    for _ in range(publication.PER_PAGE + 1):
        make_signup(forum, status="approved")
    login(client)
    first = client.get(f"/producer/forums/{forum.slug}/publication")
    assert first.status_code == 200
    assert first.get_data(as_text=True).count('class="signup-card') == publication.PER_PAGE
    page = publication.candidates(forum)
    assert f'value="after:{page.next}"' in first.get_data(as_text=True)
    second = client.get(f"/producer/forums/{forum.slug}/publication?after={page.next}")
    assert second.get_data(as_text=True).count('class="signup-card') == 1
    assert 'data-page="next"' not in second.get_data(as_text=True)


def explain(sql: sa.Select) -> str:  # type: ignore[type-arg]
    with db.engine.connect() as conn:
        # A test table is tiny: without this, a sequential scan is always cheapest.
        conn.execute(sa.text("SET enable_seqscan = off"))
        compiled = sql.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        return "\n".join(conn.execute(sa.text(f"EXPLAIN {compiled}")).scalars())


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL")
def test_postgres_search_and_counts_use_the_indexes(app):
    text = explain(
        sa.select(Signup.id).where(
            Signup.search_text.like("%joao%", escape="\\") | Signup.phone.like("%7700900%")
        )
    )
    assert "ix_signups_forum_search_trgm" in text and "ix_signups_forum_phone_trgm" in text
    # Both lead with the forum (btree_gin): a search in one forum reads only its own
    # matches when PostgreSQL takes them (a big forum; a small one is cheaper to scan).
    defined = dict(
        db.session.execute(
            sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'signups'")
        ).all()
    )
    assert "(forum_id, search_text gin_trgm_ops)" in defined["ix_signups_forum_search_trgm"]
    assert "(forum_id, phone gin_trgm_ops)" in defined["ix_signups_forum_phone_trgm"]
    assert "ix_signups_search_text_trgm" not in defined and "ix_signups_phone_trgm" not in defined
    stance = explain(
        sa.select(Signup.stance, sa.func.count())
        .where(Signup.forum_id == 1, Signup.stance.is_not(None))
        .group_by(Signup.stance)
    )
    assert "ix_signups_forum_stance" in stance
