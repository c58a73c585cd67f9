"""The TwiML phonein answers Twilio with, the prompts it speaks, and the URLs it puts in it.

Built with the SDK's ``VoiceResponse``, never by hand: escaping is the SDK's. Every
prompt goes through the ``texts`` gettext domain in the caller's language (the signup's,
else the forum's first) and is spoken by a ``<Say language=… voice=…>`` for it
(``VOICES``); names and titles inside a prompt are read as written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time, get_timezone_location
from flask import current_app
from twilio.twiml.voice_response import Dial, VoiceResponse

from ..i18n import text_gettext
from ..models import Call, CallCommand, CallDirection, Forum, ForumStatus, Signup
from ..times import zone_or_none

HOLD_SECONDS = 20
# Twilio <Say> language and voice per language (Amazon Polly voices Twilio documents:
# https://www.twilio.com/docs/voice/twiml/say/text-speech#available-voices-and-languages).
# A language not listed is spoken in English by the default voice rather than not at all.
VOICES = {
    "en": ("en-GB", "Polly.Amy"),
    "fr": ("fr-FR", "Polly.Lea"),
    "es": ("es-ES", "Polly.Lucia"),
    "ar": ("arb", "Polly.Zeina"),
}
DEFAULT_VOICE = VOICES["en"]
VOICE = DEFAULT_VOICE[1]


def language_of(forum: Forum | None, signup: Signup | None = None) -> str | None:
    """The language a caller hears: their signup's, else the forum's first (None: station's)."""
    if signup is not None:
        return signup.reads_in
    languages = forum.languages if forum is not None else None
    return languages[0] if languages else None


def voice_for(language: str | None) -> tuple[str, str]:
    """Return Twilio's ``language`` and ``voice`` for a BCP 47 ``language``."""
    base = (language or "").split("-")[0].lower()
    return VOICES.get(base, DEFAULT_VOICE)


def spoken_moment(moment: datetime, zone_name: str | None, language: str | None) -> str:
    """Say a forum's start for a caller: its day, date and time where it happens, and where."""
    try:
        locale = Locale.parse((language or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse("en")
    zone = zone_or_none(zone_name)
    local = moment.astimezone(zone) if zone else moment
    day = format_skeleton("MMMMEEEEd", local, locale=locale)
    clock = format_time(local, "HH:mm", locale=locale)
    place = get_timezone_location(zone, locale=locale, return_city=True) if zone else "UTC"
    return text_gettext(
        language, "%(day)s at %(time)s, %(place)s time", day=day, time=clock, place=place
    )


def say(response: VoiceResponse, language: str | None, text: str) -> None:
    """Speak ``text`` (already in ``language``: ``text_gettext``) with that language's voice."""
    spoken, voice = voice_for(language)
    response.say(text, voice=voice, language=spoken)


def queue_name(forum: Forum) -> str:
    return f"phonein-{forum.slug}"[:64]


def conference_name(forum: Forum) -> str:
    return f"phonein-{forum.slug}-on-air"


def url(path: str, **query: Any) -> str:
    """The public URL of a voice webhook: what Twilio requests and signs."""
    base = f"{current_app.config['PUBLIC_URL']}/webhooks/twilio/voice{path}"
    return f"{base}?{urlencode(query)}" if query else base


# TwiML.


def hold_twiml(response: VoiceResponse, forum: Forum, call: Call) -> VoiceResponse:
    """Hold the caller in the forum's Twilio queue; the hold loop announces their place."""
    response.enqueue(
        queue_name(forum),
        wait_url=url("/wait", forum=forum.slug),
        wait_url_method="POST",
        action=url("/left", call=call.id),
        method="POST",
    )
    return response


def conference_twiml(
    response: VoiceResponse, forum: Forum, *, studio: bool, language: str | None = None
) -> VoiceResponse:
    """Join the on-air conference; a caller taken out of it is thanked afterwards."""
    dial = Dial()
    dial.conference(
        conference_name(forum),
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        beep=False,
        status_callback=url("/conference", forum=forum.slug),
        status_callback_method="POST",
        status_callback_event="start end join leave mute hold",
    )
    response.append(dial)
    if not studio:
        say(
            response,
            language,
            text_gettext(language, "Thank you for calling %(title)s. Goodbye.", title=forum.title),
        )
    return response


def farewell_twiml(command: str, forum: Forum, call: Call) -> str:
    response = VoiceResponse()
    if call.direction != CallDirection.STUDIO:
        language = language_of(forum, call.signup)
        if command == CallCommand.GOODBYE and forum.status == ForumStatus.CANCELLED:
            say(
                response,
                language,
                text_gettext(
                    language,
                    "Sorry: %(title)s has been cancelled, so we cannot take your call. "
                    "Thank you for calling. Goodbye.",
                    title=forum.title,
                ),
            )
        elif command == CallCommand.GOODBYE:
            say(
                response,
                language,
                text_gettext(
                    language,
                    "%(title)s is now over, and we could not take your call today. Thank you "
                    "for waiting. Your question may still be published with the selection of "
                    "comments on our website. Goodbye.",
                    title=forum.title,
                ),
            )
        else:
            say(
                response,
                language,
                text_gettext(
                    language, "Thank you for calling %(title)s. Goodbye.", title=forum.title
                ),
            )
    response.hangup()
    return str(response)
