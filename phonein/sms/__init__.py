"""Texts to listeners: the outbox, its senders, delivery statuses and the SMS webhooks.

- ``backends``: the provider interface (twilio, console, memory), chosen by SMS_BACKEND.
- ``texts``: what each kind of text says.
- ``outbox``: messages written in the same transaction as their cause; reminder waves.
- ``rate``: the send rate shared by every sender process.
- ``quiet``: quiet hours, the listener's night that early reminders step around.
- ``wanted``: whether a text is still worth sending (cancelled, expired).
- ``dispatch``: claim by lane, re-check, confirm the claim, send and record.
- ``sender``: the thread pool that runs dispatch, and its heartbeat.
- ``recovery``: reconcile the claims a sender let go of or left behind.
- ``codes``: one-time codes (Twilio Verify, outbox, console, memory), by VERIFY_BACKEND.
- ``status``: delivery statuses, forward only.
- ``webhooks``: inbound keywords (STOP, START, HELP, LINK) and status callbacks.
"""

from __future__ import annotations

from flask import Flask

from . import backends, codes, quiet, webhooks


def init_app(app: Flask) -> None:
    quiet.parse(app.config.get("QUIET_HOURS"))  # a bad window stops the start, not a wave
    backends.init_app(app)
    codes.init_app(app)
    app.register_blueprint(webhooks.bp)
