"""What every shipped text costs, in every language, and the forum editor's preview of it.

Each text template (every kind a forum sends, each reminder offset, the code and keyword
replies) is built for a forum with a long Latin title full of typographic punctuation and
for one with an Arabic title, for a listener in another zone (the longer form), with a
private link as long as a production one: GSM-7 texts stay within 2 segments, UCS-2 ones
within 3, and English, French and Spanish texts with a Latin title go as GSM-7.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from phonein import gsm, i18n
from phonein.models import Forum, MessageKind
from phonein.sms import texts

from .conftest import login, make_forum

LATIN = (
    "\u201cWho\u2019s paying for the coast?\u201d \u2014 climate, insurance and the new map "
    "of S\u00e3o Paulo\u2019s suburbs\u2026"
)
ARABIC = "من يدفع ثمن الساحل؟ المناخ والتأمين والخريطة الجديدة للمدن الساحلية"
LANGUAGES = ("en", "fr", "es", "ar")
PUBLIC_URL = "https://phonein.example-broadcaster.org"
STARTS = datetime(2026, 12, 2, 19, 0, tzinfo=UTC)
OFFSETS = [86400, 3600, 600]


def _forum(title: str) -> Forum:
    return Forum(
        slug="coast",
        title=title,
        timezone="Europe/London",
        starts_at=STARTS,
        reminder_offsets=OFFSETS,
        languages=list(LANGUAGES),
    )


def _every_text(forum: Forum, language: str) -> dict[str, str]:
    zone = "America/Los_Angeles"
    made = {
        kind: texts.body(
            kind,
            forum,
            zone,
            STARTS - timedelta(days=3),
            language=language,
            forum_url=f"{PUBLIC_URL}/forums/coast",
        )
        for kind in texts.FORUM_KINDS
        if kind != MessageKind.REMINDER
    }
    for offset in OFFSETS:
        made[f"reminder {offset}"] = texts.body(
            MessageKind.REMINDER, forum, zone, STARTS - timedelta(seconds=offset), language=language
        )
    # The confirmation that promises a reminder (the longer of the two).
    made["confirmation with the promise"] = texts.body(
        MessageKind.CONFIRMATION,
        forum,
        zone,
        STARTS - timedelta(days=3),
        language=language,
        reminder=True,
    )
    made["help"] = texts.body(MessageKind.HELP, None, None, STARTS, language=language)
    made["no signup"] = texts.no_signup_reply(language)
    # PHONEIN_VERIFY=off: a known number's one-time link, as long as a production one.
    made["signed up again"] = texts.signed_up_again(
        forum, language, f"{PUBLIC_URL}/verify/VE{'0' * 32}?code=123456", STARTS
    )
    made["start"] = texts.start_reply(language)
    made["stop"] = texts.stop_reply(language)
    made["code"] = texts.code_text("123456", language)
    return made


@pytest.mark.parametrize("title", [LATIN, ARABIC], ids=["latin", "arabic"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_stays_within_its_segment_limit(make_app, title, language):
    app = make_app(PUBLIC_URL=PUBLIC_URL)
    with app.app_context():
        made = _every_text(_forum(title), language)
    for name, body in made.items():
        cost = gsm.cost(texts.as_sent(body, PUBLIC_URL))
        # The one exception: a one-time link of 93 characters (PHONEIN_VERIFY=off), a title
        # in another script and a Latin-script sentence take 4 UCS-2 segments whatever the
        # title's length (the English f-string it replaced took as many).
        if name == "signed up again" and title == ARABIC and language != "ar":
            assert cost.segments == cost.limit + 1, (name, cost, body)
            continue
        assert cost.segments <= cost.limit, (name, cost, body)
        assert "\n" not in body and texts.links.PLACEHOLDER not in body.replace(
            texts.links.PLACEHOLDER, ""
        )
        if title == LATIN and language != "ar":
            # A Latin title in a Latin-script language: GSM-7, half the price of UCS-2.
            assert cost.encoding == gsm.GSM7, (name, body)
        about_the_forum = name not in ("help", "start", "stop", "code", "no signup")
        if language == "ar" or (title == ARABIC and about_the_forum):
            assert cost.encoding == gsm.UCS2, (name, body)
    # No private link in a confirmation: the listener asks for it with LINK (its own text).
    for name in ("confirmation", "confirmation with the promise"):
        assert texts.links.PLACEHOLDER not in made[name] and "/manage/" not in made[name]
        assert "LINK" in made[name] or language != "en"
    assert texts.links.PLACEHOLDER in made["link"]
    # The texts every listener of a Latin forum gets in English, French or Spanish fit one
    # segment each: the confirmation, the three reminders and "you're next" (the goal of
    # bench/sms_cost.py: at most five in all).
    if title == LATIN and language != "ar":
        segments = {
            name: gsm.cost(texts.as_sent(body, PUBLIC_URL)).segments for name, body in made.items()
        }
        assert segments["confirmation"] == 1, made["confirmation"]
        assert segments["confirmation with the promise"] == 1, made["confirmation with the promise"]
        assert all(segments[f"reminder {offset}"] == 1 for offset in OFFSETS), segments
        assert segments["next_up"] == 1
        assert segments["help"] == 1, made["help"]


def test_a_shortened_title_is_cut_between_words_and_folded_to_gsm():
    forum = _forum(LATIN)
    folded = gsm.fold(LATIN).replace('"', "'")
    for title_max in (texts.TITLE_MAX_IN_SMS, *texts.WITHIN_LIMIT_TITLES):
        title = texts.Text(forum, None, "en", STARTS, title_max=title_max).title
        assert len(title) <= title_max and gsm.is_gsm(gsm.fold_letters(title))
        cut = title.removesuffix("...")
        assert title.endswith("...") and folded.startswith(cut)
        assert folded[len(cut)] in " ,"  # at a word boundary
    short = _forum("Cities \u2014 who are they for?")
    assert texts.Text(short, None, "en", STARTS).title == "Cities - who are they for?"


def test_the_texts_catalogues_hold_every_marked_sentence_translated():
    """Extract the texts domain from the code and compare it with every catalogue."""
    keywords = {"text_gettext": (2,), "text_ngettext": (2, 3)}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(i18n.TRANSLATIONS.parent),
        method_map=[("**.py", "python")],
        keywords=keywords,
    ):
        found.add(message if isinstance(message, str) else message[0])
    found.discard("")
    assert "Reply STOP to opt out." in found and "%(num)d minute" in found
    for language in LANGUAGES:
        po = i18n.TRANSLATIONS / language / "LC_MESSAGES" / "texts.po"
        catalog = read_po(io.BytesIO(po.read_bytes()), locale=language)
        ids = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
        assert found <= set(ids), (language, found - set(ids))
        for message in ids.values():
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(strings) and not message.fuzzy, (language, message.id)
    arabic = read_po(io.BytesIO((i18n.TRANSLATIONS / "ar/LC_MESSAGES/texts.po").read_bytes()))
    assert arabic.num_plurals == 6


def test_the_forum_editor_previews_every_text_with_its_cost(app, client: Any):
    login(client)
    forum = make_forum(title=LATIN[:150], languages=["fr", "ar"], timezone="Europe/Paris")
    page = client.get(f"/producer/forums/{forum.slug}/edit").get_data(as_text=True)
    assert 'id="texts-preview"' in page
    section = page.split('id="texts-preview"', 1)[1]
    # One table per language, a row per text (three reminders), encoding and segments.
    assert section.count("<table") == 2
    assert section.count("reminder, ") == 6 and section.count("confirmation") >= 2
    assert "GSM-7" in section and "UCS-2" in section
    assert 'dir="rtl"' in section and 'lang="ar"' in section
    assert "Inscription :" in section and "تم تسجيلك في" in section
    # The text answering LINK, the only one with the private link, as its placeholder.
    assert section.count("private link (on request: LINK)") == 2
    assert "Votre lien privé pour" in section and "[your private link]" in section


def test_the_preview_warns_about_texts_over_the_limit(app, client: Any, monkeypatch):
    login(client)
    forum = make_forum(title="Cities", languages=["en"])
    # A translation long enough to need three GSM-7 segments whatever the title.
    long = "Reminder: " + "very " * 70 + "%(title)s %(in)s %(when)s"
    monkeypatch.setattr(
        texts,
        "text_gettext",
        lambda language, msgid, **v: (long if msgid.startswith("Reminder") else msgid) % v,
    )
    page = client.get(f"/producer/forums/{forum.slug}/edit").get_data(as_text=True)
    section = page.split('id="texts-preview"', 1)[1]
    assert "3 over the limit" in section and "over 2" in section
