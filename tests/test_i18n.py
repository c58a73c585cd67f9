"""Languages: choosing the reader's, catalogues in two domains, dates, zones, countries."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from phonein import i18n
from phonein.extensions import db
from phonein.models import Signup
from tests.conftest import make_forum, make_signup

# --- choosing a language --------------------------------------------------------------------


def test_accept_language_picks_the_best_offered_language() -> None:
    offered = ["en", "fr"]
    assert i18n.choose_language(offered, accept="de, fr-CA;q=0.9, en;q=0.5") == "fr"
    assert i18n.choose_language(offered, accept="de, en-GB;q=0.9, fr;q=0.5") == "en"
    assert i18n.choose_language(["fr", "ar"], accept="ar-EG") == "ar"


def test_a_requested_language_wins_over_the_header_and_nonsense_falls_back() -> None:
    offered = ["fr", "en"]
    assert i18n.choose_language(offered, requested=["EN"], accept="fr") == "en"
    # Unknown, unsupported, refused (q=0) or garbage: the forum's first language.
    assert i18n.choose_language(offered, requested=["xx", None, ""], accept="de") == "fr"
    assert i18n.choose_language(offered, requested=["ar"]) == "fr"
    assert i18n.choose_language(offered, accept="en;q=0") == "fr"
    assert i18n.choose_language(offered, requested=["x" * 500], accept="\x00;;") == "fr"
    assert i18n.choose_language([], accept="fr") == "en"  # the station's language


def test_phonein_ships_four_languages_with_both_domains() -> None:
    assert {"en", "fr", "es", "ar"} <= set(i18n.shipped_languages())
    for language in i18n.shipped_languages():
        for domain in i18n.DOMAINS:
            po = i18n.TRANSLATIONS / language.replace("-", "_") / "LC_MESSAGES" / f"{domain}.po"
            assert po.is_file(), po
    assert i18n.direction("ar") == "rtl"
    assert i18n.direction("fr") == "ltr"


# --- catalogues -----------------------------------------------------------------------------


@pytest.fixture
def scratch_catalogues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point phonein at a folder of catalogues written by the test."""
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path)
    i18n.catalogue.cache_clear()
    i18n.shipped_languages.cache_clear()
    yield tmp_path
    i18n.catalogue.cache_clear()
    i18n.shipped_languages.cache_clear()


def _write(folder: Path, language: str, domain: str, entries: dict[Any, Any]) -> None:
    catalog = Catalog(locale=language, domain=domain)
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr)
    target = folder / language / "LC_MESSAGES"
    target.mkdir(parents=True, exist_ok=True)
    with (target / f"{domain}.po").open("wb") as handle:
        write_po(handle, catalog)


def test_texts_are_translated_outside_any_request_from_their_own_domain(
    scratch_catalogues: Path,
) -> None:
    _write(scratch_catalogues, "fr", "texts", {"See you at %(time)s.": "À %(time)s."})
    _write(scratch_catalogues, "fr", "messages", {"See you at %(time)s.": "PAGE"})
    _write(scratch_catalogues, "en", "texts", {})
    assert i18n.text_gettext("fr", "See you at %(time)s.", time="20:00") == "À 20:00."
    # A language phonein does not ship, or no language: the English msgid.
    assert i18n.text_gettext("de", "See you at %(time)s.", time="20:00") == "See you at 20:00."
    assert i18n.text_gettext(None, "Hello") == "Hello"


def test_texts_use_each_languages_plural_forms(scratch_catalogues: Path) -> None:
    catalog = Catalog(locale="ar", domain="texts")
    forms = (
        "لا مستمعين",
        "مستمع واحد",
        "مستمعان",
        "%(num)d مستمعين",
        "%(num)d مستمعًا",
        "%(num)d مستمع",
    )
    catalog.add(("%(num)d listener", "%(num)d listeners"), forms)
    target = scratch_catalogues / "ar" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "texts.po").open("wb") as handle:
        write_po(handle, catalog)
    said = [
        i18n.text_ngettext("ar", "%(num)d listener", "%(num)d listeners", n)
        for n in (0, 1, 2, 5, 11, 100)
    ]
    assert said == ["لا مستمعين", "مستمع واحد", "مستمعان", "5 مستمعين", "11 مستمعًا", "100 مستمع"]


def test_in_language_renders_page_strings_in_a_given_language(app: Any) -> None:
    from flask_babel import gettext

    with app.test_request_context("/"), i18n.in_language("fr"):
        assert i18n.page_language() == "fr"
        assert gettext("Sign up") == i18n.catalogue("fr", "messages").gettext("Sign up")


# --- dates, zones, countries ------------------------------------------------------------------


def test_a_moment_reads_naturally_in_each_language() -> None:
    show = datetime(2026, 12, 2, 19, 0, tzinfo=UTC)
    assert i18n.format_moment(show, "Europe/Paris", "fr") == (
        "mercredi 2 décembre 2026 à 20:00 (heure : Paris)"
    )
    assert i18n.format_moment(show, "Europe/Paris", "es") == (
        "miércoles, 2 de diciembre de 2026, 20:00 (hora de París)"
    )
    assert i18n.format_moment(show, "Africa/Cairo", "ar").endswith("(توقيت القاهرة)")
    assert "8:00\u202fPM" in i18n.format_moment(show, "Europe/Paris", "en")


def test_zones_are_named_by_city_never_by_id_or_offset() -> None:
    assert i18n.zone_name("Asia/Calcutta", "en") == "Kolkata"
    assert i18n.zone_name("America/Sao_Paulo", "en") == "São Paulo"
    assert i18n.zone_name("America/Argentina/Mendoza", "fr") == "Mendoza"
    assert i18n.zone_name("Asia/Shanghai", "es") == "Shanghái"
    assert i18n.zone_name("Europe/London", "fr") == "Londres"
    assert i18n.zone_name(None, "fr") == "UTC"
    zones = [z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc/")]
    for language in ("en", "fr", "es", "ar"):
        for zone in zones:
            name = i18n.zone_name(zone, language)
            assert "/" not in name and "_" not in name, (zone, language, name)
            assert not name.lstrip("\u2212").startswith(("+", "-", "GMT", "UTC+")), (zone, name)


def test_countries_sort_for_the_reader_ignoring_accents_and_case() -> None:
    codes = ["GB", "BR", "IO", "AX", "AL", "AT", "ZA", "EG", "US"]
    english = [name for _, name in i18n.sorted_countries(codes, "en")]
    assert english.index("Åland Islands") < english.index("Albania")
    assert english.index("United Kingdom") > english.index("British Indian Ocean Territory")
    french = [name for _, name in i18n.sorted_countries(codes, "fr")]
    assert french[:2] == ["Afrique du Sud", "Albanie"]
    assert french.index("Égypte") < french.index("États-Unis") < french.index("Îles Åland")


# --- pages ------------------------------------------------------------------------------------


def test_the_page_language_follows_accept_language_among_the_forums(client: Any) -> None:
    forum = make_forum(languages=["en", "fr", "ar"])
    page = client.get(f"/forums/{forum.slug}", headers={"Accept-Language": "ar, en;q=0.5"})
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text
    page = client.get(f"/forums/{forum.slug}", headers={"Accept-Language": "de, fr;q=0.5"})
    assert '<html lang="fr" dir="ltr">' in page.text


def test_lang_works_without_a_cookie_and_sets_one_for_the_next_pages(client: Any) -> None:
    forum = make_forum(languages=["en", "ar"])
    page = client.get(f"/forums/{forum.slug}?lang=ar")
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "phonein_lang=ar" in page.headers["Set-Cookie"]
    again = client.get(f"/forums/{forum.slug}", headers={"Accept-Language": "en"})
    assert '<html lang="ar" dir="rtl">' in again.text


def test_an_unsupported_language_falls_back_to_the_forums_first(client: Any) -> None:
    forum = make_forum(languages=["fr", "en"])
    for asked in ("de", "xx-YY", "ar", "'><script>"):
        page = client.get(f"/forums/{forum.slug}", query_string={"lang": asked})
        assert page.status_code == 200
        assert '<html lang="fr" dir="ltr">' in page.text


def test_a_signup_from_the_page_keeps_the_pages_language(client: Any) -> None:
    forum = make_forum(languages=["en", "fr"])
    client.set_cookie("phonein_lang", "fr")
    response = client.post(
        f"/forums/{forum.slug}",
        data={
            "name": "Amélie",
            "location": "Lyon, France",
            "phone": "+33 6 12 34 56 78",
            "question": "Et les villages ?",
            "sms_consent": "y",
        },
    )
    assert response.status_code == 303
    signup = db.session.scalars(db.select(Signup)).one()
    assert signup.language == "fr"


# --- API ----------------------------------------------------------------------------------


def test_forums_take_and_give_languages(client: Any, app: Any) -> None:
    forum = make_forum()
    assert forum.languages == ["en"]
    listed = client.get(f"/api/v1/forums/{forum.slug}").get_json()
    assert listed["languages"] == ["en"]
    fr = make_forum(title="Les villes sans voitures", languages=["fr", "en", "FR"])
    assert fr.languages == ["fr", "en"]
    from phonein import forums
    from phonein.errors import Invalid

    with pytest.raises(Invalid) as refused:
        forums.update(fr, {"languages": ["fr", "klingon"]}, datetime.now(UTC))
    assert "languages" in refused.value.fields


def test_api_signups_take_a_language_or_read_accept_language(client: Any) -> None:
    forum = make_forum(languages=["fr", "en"])
    base = {"location": "Paris", "question": "Q?", "sms_consent": True}
    made = client.post(
        f"/api/v1/forums/{forum.slug}/signups",
        json={**base, "name": "A", "phone": "+33 6 12 34 56 01", "language": "en"},
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["language"] == "en"
    made = client.post(
        f"/api/v1/forums/{forum.slug}/signups",
        json={**base, "name": "B", "phone": "+33 6 12 34 56 02", "language": "ar"},
    )
    assert made.get_json()["language"] == "fr"  # not offered: the forum's first
    made = client.post(
        f"/api/v1/forums/{forum.slug}/signups",
        json={**base, "name": "C", "phone": "+33 6 12 34 56 03"},
        headers={"Accept-Language": "en-US,en;q=0.9"},
    )
    assert made.get_json()["language"] == "en"


def test_a_signup_without_language_reads_in_its_forums_first(app: Any) -> None:
    forum = make_forum(languages=["es", "en"])
    signup = make_signup(forum)
    assert signup.language == "es"
    signup.language = None
    assert signup.reads_in == "es"


def test_producers_set_a_forums_languages_on_its_form(client: Any) -> None:
    from tests.conftest import login

    login(client)
    starts = (datetime.now(UTC) + timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    form = {
        "title": "Droits de pêche",
        "timezone": "Africa/Dakar",
        "starts_at": starts,
        "duration_minutes": "30",
        "reminder_offsets": "60",
    }
    new = client.get("/producer/forums/new", headers={"Accept-Language": "fr"})
    assert '<html lang="en" dir="ltr">' in new.text  # staff pages are English-only
    assert 'name="languages"' in new.text
    assert (
        client.post("/producer/forums/new", data={**form, "languages": "fr, en"}).status_code == 302
    )
    body = client.get("/api/v1/forums/droits-de-peche").get_json()
    assert body["languages"] == ["fr", "en"]
    edit = client.get("/producer/forums/droits-de-peche/edit").text
    assert 'value="fr, en"' in edit
    # The producers' list names the zone by its city.
    assert "(Dakar Time)" in client.get("/producer/").text
    bad = client.post(
        "/producer/forums/droits-de-peche/edit", data={**form, "languages": "fr, klingon"}
    )
    assert bad.status_code == 422 and "Give a list of languages phonein speaks" in bad.text


def test_a_body_too_large_gets_its_error_page_in_the_readers_language(client: Any) -> None:
    # The language selector reads the posted form; a body it cannot read must not fail twice.
    forum = make_forum(languages=["fr", "en"])
    client.set_cookie("phonein_lang", "fr")
    response = client.post(f"/forums/{forum.slug}", data={"name": "x" * 70000, "language": "fr"})
    assert response.status_code == 413
    assert '<html lang="fr" dir="ltr">' in response.text
    assert "trop volumineux" in response.text


def test_a_proved_signup_keeps_the_language_its_form_was_read_in(make_app: Any) -> None:
    from phonein.sms import codes

    app = make_app(VERIFY="sms", VERIFY_BACKEND="memory")
    with app.app_context():
        forum = make_forum(languages=["en", "es"])
        client = app.test_client()
        form = {
            "name": "Lucía",
            "location": "Sevilla",
            "phone": "+34 612 34 56 78",
            "question": "¿Y los autobuses?",
            "language": "es",  # the page's hidden field: no cookie, no Accept-Language
        }
        posted = client.post(f"/forums/{forum.slug}", data=form)
        assert posted.status_code == 303
        code_page = client.get(posted.headers["Location"]).text
        assert '<html lang="es" dir="ltr">' in code_page  # the form's language, kept
        code = codes.sender(app).last_code("+34612345678")  # type: ignore[attr-defined]
        done = client.post(posted.headers["Location"], data={"code": code})
        assert done.status_code == 303
        signup = db.session.scalars(db.select(Signup)).one()
        assert signup.language == "es"
        # The listener's own page then opens in the stored language.
        manage = client.get(done.headers["Location"], follow_redirects=True)
        assert '<html lang="es" dir="ltr">' in manage.text
