"""Every listener page in every shipped language: catalogues complete and current, no
template string left in English, no visible template text left unmarked."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from phonein import i18n
from phonein.extensions import db
from phonein.models import Signup, Verification
from phonein.times import utcnow

from .conftest import make_forum, make_signup

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
# The listener's templates: what this test holds to "every string marked and translated".
LISTENER_TEMPLATES = [
    "base.html",
    "error.html",
    "_macros.html",
    *sorted(f"public/{p.name}" for p in (TEMPLATES / "public").glob("*.html")),
]
DOMAIN_KEYWORDS = {
    "messages": None,  # babel's defaults (_, gettext, ngettext, …) plus lazy_gettext
    "texts": {"text_gettext": (2,), "text_ngettext": (2, 3)},
}


def _po(language: str, domain: str) -> Catalog:
    path = i18n.TRANSLATIONS / language.replace("-", "_") / "LC_MESSAGES" / f"{domain}.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=language.replace("-", "_"), domain=domain)


def _extracted(domain: str) -> set[Any]:
    """Extract the domain's msgids from the source, as `pybabel extract` does (README)."""
    from babel.messages.extract import DEFAULT_KEYWORDS

    if domain == "messages":
        with (ROOT / "babel.cfg").open() as handle:
            method_map, options_map = parse_mapping_cfg(handle)
        keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None}
        found = extract_from_dir(ROOT, method_map, options_map, keywords=keywords)
    else:
        found = extract_from_dir(
            ROOT / "phonein",
            [("**.py", "python")],
            keywords=DOMAIN_KEYWORDS["texts"],
        )
    return {message for _, _, message, _, _ in found}


# --- catalogues -------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", i18n.DOMAINS)
def test_every_catalogue_is_complete_current_and_well_formed(domain: str) -> None:
    source = {m if isinstance(m, str) else tuple(m) for m in _extracted(domain)}
    for language in i18n.shipped_languages():
        catalog = _po(language, domain)
        entries = [m for m in catalog if m.id]
        ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in entries}
        assert ids == source, (
            f"{language}/{domain}.po is not current: run the README's extract and update "
            f"commands (missing {sorted(map(str, source - ids))[:5]}, "
            f"stale {sorted(map(str, ids - source))[:5]})"
        )
        assert catalog.num_plurals >= 1 and catalog.plural_expr
        for message in entries:
            assert "fuzzy" not in message.flags, (language, message.id)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert len(strings) == (catalog.num_plurals if message.pluralizable else 1)
            assert all(s.strip() for s in strings), f"{language}: no translation of {message.id!r}"
        if domain == "messages" and language != "en":
            assert _left_in_english(language, entries) == []
        # Placeholders kept (python-format), one checker per message, as pybabel compile does.
        problems = [(m.id, errors) for m, errors in catalog.check() if errors]
        assert problems == [], (language, problems[:3])


# Translations that are rightly the English text itself.
SAME_IN_BOTH = {("fr", "%(num)d minute")}


def _left_in_english(language: str, entries: list[Any]) -> list[Any]:
    """Return the entries whose translation is the English text (a translator's skip)."""
    left = []
    for message in entries:
        first = message.id if isinstance(message.id, str) else message.id[0]
        string = message.string if isinstance(message.string, str) else message.string[0]
        words = re.sub(r"%\(\w+\)[sd]", "", first)
        same = string == first and (language, first) not in SAME_IN_BOTH
        if same and re.search(r"[^\W\d_]", words):
            left.append(message.id)
    return left


def test_the_page_catalogues_have_every_listener_string() -> None:
    """Non-vacuous: the listener strings are there, in four languages, and differ."""
    source = _extracted("messages")
    assert len(source) > 150
    assert "Sign up" in source and ("%(num)d minute", "%(num)d minutes") in source
    french = {m.id: m.string for m in _po("fr", "messages") if m.id}
    assert french["Sign up"] == "S\u2019inscrire"
    assert _po("ar", "messages").num_plurals == 6
    english = {m.id: m.string for m in _po("en", "messages") if m.id}
    assert english["Sign up"] == "Sign up"


# --- unmarked strings -------------------------------------------------------------------------

# Visible text a template may carry as it is: the product's name and punctuation.
ALLOWED_TEXT = {"phonein"}
VISIBLE_ATTRIBUTES = ("title", "alt", "placeholder", "aria-label", "data-confirm", "label")


def unmarked_text(source: str) -> list[str]:
    """Return the visible text of a template that does not go through ``_()``.

    Jinja expressions, tags and comments are removed first (what they print is data or a
    translation call); what is left between HTML tags, and in the attributes people see,
    must be empty or punctuation.
    """
    text = re.sub(r"\{#.*?#\}", " ", source, flags=re.S)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", " ", text, flags=re.S)
    found: list[str] = []
    for attribute in VISIBLE_ATTRIBUTES:
        for value in re.findall(rf'\b{attribute}="([^"]*)"', text):
            found.append(value)
    without_tags = re.sub(r"<[^>]*>", "\n", text)
    found.extend(without_tags.splitlines())
    words = []
    for chunk in found:
        chunk = html.unescape(chunk).strip()
        rest = re.sub(r"\b(?:" + "|".join(map(re.escape, ALLOWED_TEXT)) + r")\b", "", chunk)
        if re.search(r"[^\W\d_]", rest):
            words.append(chunk)
    return words


def test_the_detector_finds_unmarked_text_and_passes_marked_text() -> None:
    assert unmarked_text("<p>Hello {{ name }}</p>") == ["Hello"]
    assert unmarked_text('<form data-confirm="Sure?"><b>{{ x }}</b></form>') == ["Sure?"]
    assert unmarked_text('<a title="{{ _(\'Home\') }}">{{ _("Home") }}</a> · ') == []
    assert unmarked_text("{# a note #}<script>var a = 'x';</script><p>{{ n }} ·</p>") == []


@pytest.mark.parametrize("name", LISTENER_TEMPLATES)
def test_listener_templates_mark_every_visible_string(name: str) -> None:
    assert unmarked_text((TEMPLATES / name).read_text()) == []


# --- every page in every language ---------------------------------------------------------------


def _page_msgids() -> dict[Any, str]:
    """Return each page msgid (templates and Python: labels, errors, flashes) with the
    literal text a reader would see of it."""
    literal: dict[Any, str] = {}
    for message in _extracted("messages"):
        first = message if isinstance(message, str) else message[0]
        # The longest run of text between placeholders is what must not show untranslated.
        pieces = [p.strip(" .:,;") for p in re.split(r"%\(\w+\)[sd]", first)]
        longest = max(pieces, key=len)
        if len(longest) >= 4:
            literal[message] = longest
    return literal


def _visible(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    attributes = " ".join(re.findall(r'(?:aria-label|data-confirm|title)="([^"]*)"', page))
    text = re.sub(r"<[^>]+>", " ", page)
    return html.unescape(f"{text} {attributes}").replace("\u00a0", " ").replace("\u202f", " ")


def _move_to_the_past(forum: Any, status: str) -> None:
    forum.starts_at = utcnow() - timedelta(hours=3)
    forum.ends_at = forum.signup_closes_at = forum.starts_at + forum.duration
    forum.status = status
    db.session.commit()


def _render_every_listener_page(client: Any, app: Any, language: str) -> dict[str, str]:
    """Render each public page (each branch that says something) in ``language``."""
    now = utcnow()
    everyone = list(i18n.shipped_languages())
    client.set_cookie("phonein_lang", language)
    pages: dict[str, str] = {}
    open_forum = make_forum(
        title="Zorba 2027", question="Zorba?", correspondent="Ngozi", languages=everyone
    )
    pages["index"] = client.get("/").text
    pages["forum"] = client.get(f"/forums/{open_forum.slug}").text
    bad = client.post(
        f"/forums/{open_forum.slug}",
        data={"name": "", "location": "", "phone": "12", "question": "", "sms_consent": "y"},
    )
    assert bad.status_code in (400, 422)
    pages["forum with errors"] = bad.text
    made = client.post(
        f"/forums/{open_forum.slug}",
        data={
            "name": "Ingrid",
            "location": "Bergen",
            "phone": "+47 412 34 567",
            "question": "Zorba!",
            "timezone": "Europe/Oslo",
            "language": language,
        },
    )
    assert made.status_code == 303, made.text[:300]
    pages["manage, created"] = client.get(made.headers["Location"]).text
    pages["manage, changed"] = client.post(
        "/manage/mine", data={"name": "", "location": "Bergen", "question": "Zorba!"}
    ).text
    signup = db.session.scalars(db.select(Signup).where(Signup.name == "Ingrid")).one()
    assert signup.language == language
    pages["withdrawn"] = client.post("/manage/mine/withdraw", follow_redirects=True).text
    pages["erased"] = client.post("/manage/mine/erase").text

    closed = make_forum(title="Zorba closed", languages=everyone)
    closed.signup_closes_at = now - timedelta(minutes=1)
    db.session.commit()
    pages["closed page"] = client.get(f"/forums/{closed.slug}").text
    pages["closed post"] = client.post(f"/forums/{closed.slug}", data={"name": "x"}).text
    cancelled = make_forum(title="Zorba cancelled", languages=everyone, status="cancelled")
    pages["cancelled"] = client.get(f"/forums/{cancelled.slug}").text
    over = make_forum(title="Zorba over", languages=everyone)
    _move_to_the_past(over, "closed")
    pages["debate closed"] = client.get(f"/forums/{over.slug}").text
    published = make_forum(title="Zorba published", languages=everyone)
    for stance in ("for", "against", "neutral", "other"):
        quoted = make_signup(published, name="Ngozi", location="Lagos", question="Zorba.")
        quoted.stance, quoted.published, quoted.pull_quote = stance, True, "Zorba"
        quoted.status = "done"
    _move_to_the_past(published, "published")
    pages["published"] = client.get(f"/forums/{published.slug}").text
    empty = make_forum(title="Zorba empty", languages=everyone)
    _move_to_the_past(empty, "published")
    pages["published, empty"] = client.get(f"/forums/{empty.slug}").text
    pages["not found"] = client.get("/forums/no-such-forum").text
    pages["no route"] = client.get("/nowhere").text

    # The code page (PHONEIN_VERIFY=sms), each of its modes.
    app.config.update(VERIFY="sms")
    coded = client.post(
        f"/forums/{open_forum.slug}",
        data={"name": "Amaru", "location": "Cusco", "phone": "+51 912 345 678", "question": "Z"},
    )
    assert coded.status_code == 303, coded.text[:300]
    pages["code"] = client.get(coded.headers["Location"]).text
    pages["wrong code"] = client.post(coded.headers["Location"], data={"code": "000000x"}).text
    pages["resent"] = client.post(
        coded.headers["Location"] + "/resend", data={"channel": "sms"}, follow_redirects=True
    ).text
    verification = db.session.scalars(db.select(Verification)).first()
    assert verification is not None
    pages["link choice gone"] = client.get(f"/verify/{verification.id}/link").text
    app.config.update(VERIFY="off")
    make_signup(open_forum, phone="+51 912 345 679")
    pages["known number"] = client.post(
        f"/forums/{open_forum.slug}",
        data={"name": "Amaru", "location": "Cusco", "phone": "+51 912 345 679", "question": "Z"},
    ).text
    return pages


@pytest.mark.parametrize("language", [lang for lang in i18n.shipped_languages() if lang != "en"])
def test_every_listener_page_is_wholly_in_each_shipped_language(
    client: Any, app: Any, language: str
) -> None:
    pages = _render_every_listener_page(client, app, language)
    english = _page_msgids()
    translated = {m.id: m.string for m in _po(language, "messages") if m.id}
    shown = 0
    for page_name, page in pages.items():
        assert f'<html lang="{language}" dir="{i18n.direction(language)}">' in page, page_name
        visible = _visible(page)
        for msgid, literal in english.items():
            target = translated[msgid]
            target = target if isinstance(target, str) else target[0]
            if literal.lower() in target.replace("\u00a0", " ").lower():
                continue  # the same words in both languages ("Forum", "%(field)s: …")
            assert not re.search(rf"(?<!\w){re.escape(literal)}(?!\w)", visible), (
                f"{page_name} in {language} shows English {msgid!r}"
            )
        shown += sum(
            1
            for msgstr in translated.values()
            if isinstance(msgstr, str)
            and len(msgstr) > 12
            and msgstr.replace("\u00a0", " ").replace("\u202f", " ") in visible
        )
    # Not vacuous: the pages carry many of the translated sentences.
    assert shown > 60, shown


def test_an_arabic_page_is_right_to_left_and_isolates_a_latin_name(client: Any) -> None:
    forum = make_forum(languages=["ar", "en"])
    quoted = make_signup(forum, name="Dana Whitfield", location="Newark, NJ", question="Q.")
    quoted.published, quoted.status = True, "done"
    _move_to_the_past(forum, "published")
    page = client.get(f"/forums/{forum.slug}").text
    assert '<html lang="ar" dir="rtl">' in page
    assert "<bdi>Dana Whitfield</bdi>، <bdi>Newark, NJ</bdi>" in page
