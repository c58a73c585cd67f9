"""The live phone-in: the caller queue, the calls on the line, and Twilio Voice.

- ``backends``: the Voice REST interface (twilio, console, memory), chosen by VOICE_BACKEND.
- ``twiml``: what phonein answers Twilio with; queue and conference names, webhook URLs.
- ``calls``: calls as Twilio reports them; states only move forward.
- ``dispatch``: what phonein wants done with calls, made after the cause commits.
- ``queue``: the caller queue: add, move, remove, next, finish.
- ``switchboard``: the producers' actions on calls: call back, studio, drop, hold, mute.
- ``board``: the view both boards show.
- ``webhooks``: the TwiML Twilio runs for every call.

Imports run down that list, never up.
"""

from __future__ import annotations

from flask import Flask

from . import backends, webhooks


def init_app(app: Flask) -> None:
    backends.init_app(app)
    app.register_blueprint(webhooks.bp)
