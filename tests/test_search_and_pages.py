"""Producers' search (folded case and accents, phone numbers in any typed form), the
signup list's pages, the balance of opinion and the publication editor's pages."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from phonein import publication
from phonein.extensions import db
from phonein.models import Signup
from tests.conftest import PG_URL, login, make_forum, make_signup


def found(client, producer, slug, q, **args):  # type: ignore[no-untyped-def]
    response = client.get(
        f"/api/v1/forums/{slug}/signups", query_string={"q": q, **args}, headers=producer
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(page) -> set[str]:  # type: ignore[no-untyped-def]
    return {item["name"] for item in page["items"]}


def test_search_folds_case_and_accents(client, producer):
    forum = make_forum()
    for name in ("ANNA Lindqvist", "Änna Berg", "João Silva", "Анна Петрова", "Bob Marley"):
        make_signup(forum, name=name)
    assert names(found(client, producer, forum.slug, "anna")) == {"ANNA Lindqvist", "Änna Berg"}
    assert names(found(client, producer, forum.slug, "joao")) == {"João Silva"}
    assert names(found(client, producer, forum.slug, "JOÃO")) == {"João Silva"}
    # No transliteration: Cyrillic is found by Cyrillic, in either case (Cyrillic letters
    # that look Latin on purpose).
    assert names(found(client, producer, forum.slug, "АННА")) == {"Анна Петрова"}  # noqa: RUF001


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
    "typed", ["07911 123456", "+44 7911 123456", "0044 7911-123-456", "(07911) 123 456", "1123456"]
)
def test_search_finds_a_phone_number_however_it_is_typed(client, producer, typed):
    forum = make_forum()
    make_signup(forum, name="Wanted", phone="+447911123456")
    make_signup(forum, name="Other", phone="+447911123999")
    assert names(found(client, producer, forum.slug, typed)) == {"Wanted"}


def test_a_short_number_does_not_match_every_phone(client, producer):
    forum = make_forum()
    make_signup(forum, name="X", phone="+447911123456", question="Hello")
    assert found(client, producer, forum.slug, "44")["total"] == 0
    assert found(client, producer, forum.slug, "0000")["total"] == 0


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
    from phonein.search import SEARCH_TEXT

    text = explain(
        sa.select(Signup.id).where(
            SEARCH_TEXT.like(sa.func.phonein_fold("%joao%"), escape="\\")
            | Signup.phone.like("%7700900%")
        )
    )
    assert "ix_signups_search_trgm" in text and "ix_signups_phone_trgm" in text
    stance = explain(
        sa.select(Signup.stance, sa.func.count())
        .where(Signup.forum_id == 1, Signup.stance.is_not(None))
        .group_by(Signup.stance)
    )
    assert "ix_signups_forum_stance" in stance
