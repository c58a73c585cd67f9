"""Texts to listeners: the outbox, its senders, delivery statuses and the SMS webhooks.

- ``backends``: the provider interface (twilio, console, memory), chosen by SMS_BACKEND.
- ``texts``: what each kind of text says.
- ``outbox``: messages written in the same transaction as their cause; reminder waves.
- ``rate``: the send rate shared by every sender process.
- ``dispatch``: claim, re-check, send and record; recover what a dead sender left.
- ``codes``: one-time codes (Twilio Verify, outbox, console, memory), by VERIFY_BACKEND.
- ``status``: delivery statuses, forward only.
- ``webhooks``: inbound keywords (STOP, START, HELP) and status callbacks.
"""

from __future__ import annotations

from flask import Flask

from . import backends, codes, webhooks


def init_app(app: Flask) -> None:
    backends.init_app(app)
    codes.init_app(app)
    app.register_blueprint(webhooks.bp)
