"""Languages: catalogues, the reader's language, and dates, zones and countries in it.

Two gettext domains live under ``phonein/translations/<language>/LC_MESSAGES``:
``messages`` (the pages, through Flask-Babel's ``_()`` and ``gettext``) and ``texts`` (SMS
bodies and voice prompts, through :func:`text_gettext`, which needs no request and so
works in the worker). Languages are BCP 47 tags (``fr``, ``pt-BR``); a language is
*shipped* when it has a folder there. The build compiles the ``.po`` files to ``.mo``
(``pybabel compile``); a checkout without ``.mo`` files reads the ``.po`` files directly,
so ``pip install -e .`` serves every language without a compile step.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache, cached_property
from gettext import NullTranslations
from pathlib import Path
from typing import Any

import flask_babel
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_timezone_location
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, Domain, force_locale, get_locale, refresh
from markupsafe import Markup, escape
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Response

from .settings import ConfigError
from .times import zone_or_none

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
PAGES = "messages"
TEXTS = "texts"
DOMAINS = (PAGES, TEXTS)
# The switch link sets it; it outlives the visit so that the next forum opens in it too.
COOKIE = "phonein_lang"
COOKIE_DAYS = 365
QUERY = "lang"
# The producers' and presenters' pages are written in English only.
STAFF_LANGUAGE = "en"

__all__ = [
    "_",
    "force_locale",
    "lazy_gettext",
    "ngettext",
    "text_gettext",
    "text_ngettext",
]


# --- Marking page strings (the ``messages`` domain) -------------------------------------------


def _(msgid: str, **variables: Any) -> str:
    """Translate a page string into the page's language (``%(name)s`` placeholders)."""
    return str(flask_babel.gettext(msgid, **variables))


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """Translate a page string that depends on a count (``%(num)d``)."""
    return str(flask_babel.ngettext(singular, plural, num, **variables))


def N_(msgid: str) -> str:
    """Mark a page string kept as data (a consent wording) for extraction; return it as is.

    Whoever shows it translates it then (``_()``, ``lazy_gettext`` or ``translate_page``).
    """
    return msgid


def translate_page(language: str | None, msgid: str) -> str:
    """Return page string ``msgid`` as a reader of ``language`` sees it (no request needed)."""
    return catalogue(language or default_language(), PAGES).gettext(msgid)


def lazy_gettext(msgid: str, **variables: Any) -> Any:
    """Mark a page string defined at import time (form labels), translated when shown."""
    return flask_babel.lazy_gettext(msgid, **variables)


# --- Which languages phonein speaks -------------------------------------------------------


def bcp47(locale: Locale | str) -> str:
    """Return the BCP 47 tag of a Babel locale or locale name (``pt_BR`` -> ``pt-BR``)."""
    return str(locale).replace("_", "-")


def _babel_name(tag: str) -> str:
    return tag.replace("-", "_")


@cache
def shipped_languages() -> tuple[str, ...]:
    """Return the languages phonein has catalogues for, as BCP 47 tags, sorted."""
    if not TRANSLATIONS.is_dir():
        return ("en",)
    found = {
        bcp47(folder.name) for folder in TRANSLATIONS.iterdir() if (folder / "LC_MESSAGES").is_dir()
    }
    return tuple(sorted(found | {"en"}))


def supported(tag: str | None, offered: Sequence[str] | None = None) -> str | None:
    """Return the language of ``offered`` (default: every shipped one) that ``tag`` names.

    Case does not matter, and a regional tag falls back to its language: ``FR-ca`` is
    ``fr`` when only ``fr`` is offered. None when nothing matches.
    """
    if not tag or not isinstance(tag, str) or len(tag) > 35:
        return None
    languages = list(offered) if offered else list(shipped_languages())
    wanted = tag.strip().replace("_", "-").lower()
    by_lower = {language.lower(): language for language in languages}
    if wanted in by_lower:
        return by_lower[wanted]
    primary = wanted.split("-")[0]
    if primary in by_lower:
        return by_lower[primary]
    for language in languages:  # pt-BR offered, "pt" asked
        if language.lower().split("-")[0] == primary:
            return language
    return None


def choose_language(
    offered: Sequence[str],
    *,
    requested: Iterable[str | None] = (),
    accept: str | LanguageAccept | None = None,
) -> str:
    """Choose the reader's language among ``offered`` (a forum's ``languages``).

    The first of ``requested`` that ``offered`` supports wins (``?lang=``, then the switch
    cookie, then what the signup stored); then the best match of the ``Accept-Language``
    header; then the first offered language. It never fails: an unknown or unsupported
    language falls back to the forum's first one.
    """
    offered = [language for language in offered if language] or [default_language()]
    for tag in requested:
        found = supported(tag, offered)
        if found:
            return found
    if accept:
        header = (
            accept
            if isinstance(accept, LanguageAccept)
            else parse_accept_header(accept, LanguageAccept)
        )
        for tag, quality in header:
            found = supported(tag, offered) if quality > 0 else None
            if found:
                return found
    return offered[0]


def default_language() -> str:
    """Return the station's language, ``PHONEIN_DEFAULT_LANGUAGE`` (``en`` outside an app)."""
    try:
        configured = current_app.config.get("DEFAULT_LANGUAGE")
    except RuntimeError:
        configured = None
    return supported(configured) or "en"


def direction(language: str) -> str:
    """Return ``rtl`` or ``ltr``: the direction of ``language``'s script."""
    return "rtl" if to_locale(language).character_order == "right-to-left" else "ltr"


def to_locale(language: str | Locale | None) -> Locale:
    """Return the Babel locale of a BCP 47 tag (English for anything unknown)."""
    if isinstance(language, Locale):
        return language
    try:
        return Locale.parse(_babel_name(language or "en"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse("en")


def language_name(language: str) -> str:
    """Return ``language``'s name in itself ("français", "العربية"), for the switch links."""
    name = to_locale(language).get_display_name() or language
    return name[:1].upper() + name[1:]


# --- Catalogues ---------------------------------------------------------------------------


@cache
def catalogue(language: str, domain: str) -> NullTranslations:
    """Return the translations of ``domain`` in ``language``: its ``.mo`` when it is as new
    as its ``.po``, else the ``.po`` compiled in memory; nothing (the English ids) else."""
    name = _babel_name(supported(language) or "en")
    folder = TRANSLATIONS / name / "LC_MESSAGES"
    po, mo = folder / f"{domain}.po", folder / f"{domain}.mo"
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return Translations(handle, domain=domain)
    if po.is_file():
        with po.open("rb") as handle:
            messages = read_po(handle, locale=name, domain=domain)
        compiled = io.BytesIO()
        write_mo(compiled, messages, use_fuzzy=False)
        compiled.seek(0)
        return Translations(compiled, domain=domain)
    return NullTranslations()


def text_gettext(language: str | None, msgid: str, **variables: Any) -> str:
    """Translate an SMS or voice ``msgid`` into ``language`` (no request needed).

    Placeholders are Python's named ones, as in the pages: ``%(title)s``.
    """
    text = catalogue(language or default_language(), TEXTS).gettext(msgid)
    return text % variables if variables else text


def text_ngettext(
    language: str | None, singular: str, plural: str, n: int, **variables: Any
) -> str:
    """Translate an SMS or voice text that depends on a count ``n`` (``%(num)d``)."""
    text = catalogue(language or default_language(), TEXTS).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


class _CatalogueDomain(Domain):
    """Flask-Babel's domain for the pages, reading catalogues through :func:`catalogue`."""

    def __init__(self) -> None:
        super().__init__(domain=PAGES)

    def get_translations(self) -> NullTranslations:
        locale = get_locale()
        return catalogue(bcp47(locale) if locale else default_language(), PAGES)


class _Babel(Babel):
    @cached_property
    def domain_instance(self) -> Domain:
        return _CatalogueDomain()


# --- The page's language ------------------------------------------------------------------


def offer(languages: Sequence[str] | None, *, stored: str | None = None) -> str:
    """Say which languages this page is offered in (a forum's), and choose among them.

    ``stored`` is a signup's language: the manage page opens in it unless the reader
    switched. Returns the chosen language; templates and ``gettext`` use it from here on.
    """
    g.phonein_offered = [language for language in (languages or []) if supported(language)]
    g.phonein_stored = stored
    refresh()  # Flask-Babel caches the locale per request: choose again
    return page_language()


def offered() -> list[str]:
    """Return the languages this page is offered in (every shipped one by default)."""
    if has_request_context() and g.get("phonein_offered"):
        return list(g.phonein_offered)
    return list(shipped_languages())


def page_language() -> str:
    """Return the language of the page being rendered, as a BCP 47 tag."""
    locale = get_locale()
    return bcp47(locale) if locale else default_language()


def format_locale() -> Locale:
    """Return the locale dates and numbers on this page are written in: the page's
    language in the reader's own region when their browser names one (``en-GB`` writes
    "14:00", ``en-US`` "2:00 PM"), else the language's CLDR default."""
    language = page_language()
    if has_request_context():
        primary = language.split("-")[0].lower()
        for tag, quality in request.accept_languages:
            if quality > 0 and tag.split("-")[0].lower() == primary and "-" in tag:
                try:
                    return Locale.parse(tag, sep="-")
                except (UnknownLocaleError, ValueError):
                    continue
    return to_locale(language)


def _posted_language() -> str | None:
    """Return the ``language`` a posted form names, if its body could be read at all.

    Also called while an error page for that very body (too large, malformed) is being
    rendered: reading it again must not raise again.
    """
    if request.method != "POST" or request.mimetype not in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        return None
    try:
        return request.form.get("language")
    except HTTPException:
        return None


def _select_locale() -> str:
    if not has_request_context():
        return _babel_name(default_language())
    choices = offered()
    if not g.get("phonein_offered"):
        # A page of no one forum (the list, errors): the station's language first.
        station = default_language()
        choices = [station, *(c for c in choices if c != station)]
    language = choose_language(
        choices,
        requested=(
            request.args.get(QUERY),
            # The signup form says which language it was read in (no cookie needed).
            _posted_language(),
            request.cookies.get(COOKIE),
            g.get("phonein_stored"),
        ),
        accept=request.accept_languages,
    )
    return _babel_name(language)


def _remember_switch(response: Response) -> Response:
    """Keep a language picked with ``?lang=`` (or a form read in it) in a cookie, so the
    pages that follow (the code page, the listener's own page) stay in it."""
    language = supported(request.args.get(QUERY)) or supported(_posted_language())
    if language and request.cookies.get(COOKIE) != language:
        response.set_cookie(
            COOKIE,
            language,
            max_age=COOKIE_DAYS * 86400,
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
            httponly=True,
            samesite="Lax",
        )
    return response


def switch_links() -> list[dict[str, str]]:
    """Return one link per offered language for the page's language switch."""
    if not has_request_context() or len(offered()) < 2:
        return []
    current = page_language()
    links = []
    for language in offered():
        links.append(
            {
                "language": language,
                "name": language_name(language),
                "dir": direction(language),
                "href": f"{request.path}?{QUERY}={language}",
                "current": "true" if language == current else "",
            }
        )
    return links


# --- Dates, zones, countries --------------------------------------------------------------


def zone_name(zone: str | None, locale: str | Locale | None = None) -> str:
    """Name an IANA zone for people in ``locale``: its city or region ("Paris", "Londres",
    "Kolkata" for Asia/Calcutta), never its ID or a bare offset (UTC stays "UTC")."""
    found = zone_or_none(zone)
    if found is None or zone in ("UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal"):
        return "UTC"
    place = get_timezone_location(found, locale=to_locale(locale), return_city=True)
    return str(place)


def zone_time_name(zone: str | None, locale: str | Locale | None = None) -> str:
    """Say "Paris Time" / "heure : Paris" / "توقيت باريس" with CLDR's own phrase."""
    where = zone_name(zone, locale)
    if where == "UTC":
        return "UTC"
    pattern = to_locale(locale).zone_formats.get("region", "%s")
    return str(pattern % where)


def format_moment(
    moment: datetime,
    zone: str | None,
    locale: str | Locale | None = None,
    *,
    zone_label: bool = True,
) -> str:
    """Format ``moment`` in ``zone`` for a reader of ``locale``.

    "Wednesday, December 2, 2026 at 8:00 PM (Paris Time)",
    "mercredi 2 décembre 2026 à 20:00 (heure : Paris)": the full date and short time
    joined by CLDR's "at" pattern, and the zone named by its city.
    """
    place = zone_or_none(zone) or UTC
    local = moment.astimezone(place)
    loc = to_locale(locale)
    relative = loc._data.get("datetime_formats_relative") or {}
    pattern = str(relative.get("full") or loc.datetime_formats["full"])
    text = (
        pattern.replace("'", "")
        .replace("{1}", format_date(local, "full", locale=loc))
        .replace("{0}", format_time(local, "short", locale=loc))
    )
    if zone_label:
        text = f"{text} ({zone_time_name(zone, loc)})"
    return text


def fold(text: str) -> str:
    """Return ``text`` without accents or case, for sorting ("Åland" sorts as "aland")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def country_name(code: str, locale: str | Locale | None = None) -> str:
    """Return the name of ISO 3166 country ``code`` in ``locale`` (the code if unknown)."""
    return str(to_locale(locale).territories.get(code.upper(), code.upper()))


def sorted_countries(
    codes: Iterable[str], locale: str | Locale | None = None
) -> list[tuple[str, str]]:
    """Return ``(code, name)`` pairs named in ``locale`` and sorted for its readers,
    ignoring accents and case."""
    named = [(code, country_name(code, locale)) for code in codes]
    return sorted(named, key=lambda pair: (fold(pair[1]), pair[1]))


# --- The app ------------------------------------------------------------------------------


@contextmanager
def in_language(language: str | None) -> Iterator[None]:
    """Render pages' strings (``gettext``, templates) in ``language`` for a while."""
    with force_locale(_babel_name(supported(language) or default_language())):
        yield


def init_app(app: Flask) -> None:
    """Bind Flask-Babel: the locale selector, the switch cookie, the template helpers."""
    app.config.setdefault("DEFAULT_LANGUAGE", "en")
    language = supported(str(app.config["DEFAULT_LANGUAGE"]))
    if language is None:
        raise ConfigError(
            "PHONEIN_DEFAULT_LANGUAGE must be one of the shipped languages: "
            + ", ".join(shipped_languages())
            + "."
        )
    app.config["DEFAULT_LANGUAGE"] = language
    _Babel(app, locale_selector=_select_locale, default_domain=PAGES)
    app.after_request(_remember_switch)

    @app.context_processor
    def language_context() -> dict[str, Any]:
        language = page_language()
        return {
            "page_language": language,
            "page_dir": direction(language),
            "language_links": switch_links(),
        }

    @app.template_filter("moment")
    def moment_filter(moment: datetime | None, zone: str | None) -> str:
        return format_moment(moment, zone, format_locale()) if moment else ""

    @app.template_filter("zone_name")
    def zone_filter(zone: str | None) -> str:
        return zone_name(zone, page_language())

    @app.template_filter("zone_time_name")
    def zone_time_filter(zone: str | None) -> str:
        return zone_time_name(zone, page_language())

    app.add_template_filter(bdi, "bdi")
    app.add_template_filter(strong, "strong")


def bdi(text: Any) -> Markup:
    """Isolate someone's own words (a name, a place) inside a sentence of the page.

    Without it, an Arabic name in a French sentence, or a Latin one in an Arabic sentence,
    takes the punctuation and numbers around it along in its direction.
    """
    # Markup.format costs 20 µs through string.Formatter; the comments of a published
    # page have two each. Escaping and joining gives the same markup.
    return Markup(f"<bdi>{escape(text)}</bdi>")


def strong(text: Any) -> Markup:
    return Markup(f"<strong>{escape(text)}</strong>")
