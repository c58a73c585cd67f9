"""The TwiML phonein answers Twilio with, and the names and URLs it puts in it.

Built with the SDK's ``VoiceResponse``, never by hand: escaping is the SDK's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import current_app
from twilio.twiml.voice_response import Dial, VoiceResponse

from ..models import Call, CallCommand, CallDirection, Forum, ForumStatus

VOICE = "Polly.Amy"
HOLD_SECONDS = 20


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


def conference_twiml(response: VoiceResponse, forum: Forum, *, studio: bool) -> VoiceResponse:
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
        response.say(f"Thank you for calling {forum.title}. Goodbye.", voice=VOICE)
    return response


def farewell_twiml(command: str, forum: Forum, call: Call) -> str:
    response = VoiceResponse()
    if call.direction != CallDirection.STUDIO:
        if command == CallCommand.GOODBYE and forum.status == ForumStatus.CANCELLED:
            response.say(
                f"Sorry: {forum.title} has been cancelled, so we cannot take your call. "
                "Thank you for calling. Goodbye.",
                voice=VOICE,
            )
        elif command == CallCommand.GOODBYE:
            response.say(
                f"{forum.title} is now over, and we could not take your call today. Thank "
                "you for waiting. Your question may still be published with the selection "
                "of comments on our website. Goodbye.",
                voice=VOICE,
            )
        else:
            response.say(f"Thank you for calling {forum.title}. Goodbye.", voice=VOICE)
    response.hangup()
    return str(response)
