"""HTML pages: public (listeners), producer, and the presenter's board."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, request

from .. import i18n, phones
from ..times import rfc3339


def _staff_language() -> None:
    if request.blueprint in ("producer", "board"):
        i18n.offer([i18n.STAFF_LANGUAGE])


def init_app(app: Flask) -> None:
    # report adds its pages to the producer blueprint, so it comes before registration.
    from . import board, headers, producer, public, report, texts_preview, verify  # noqa: F401

    # Importing the screening views adds their routes to the producer blueprint.
    from .screening import bp as _with_screening  # noqa: F401

    headers.init_app(app)
    texts_preview.init_app(app)

    # Staff pages are written in English only: their language is English, whatever the
    # browser asks, so that <html lang> and the dates on them agree with their words.
    app.before_request(_staff_language)

    app.register_blueprint(public.bp)
    app.register_blueprint(verify.bp)
    app.register_blueprint(producer.bp)
    app.register_blueprint(board.bp)

    app.add_template_filter(rfc3339, "rfc3339")
    app.add_template_filter(phones.display, "phone")
    app.add_template_filter(phones.masked, "masked_phone")

    @app.template_filter("in_zone")
    def in_zone(moment: datetime | None, zone: str | None) -> str:
        # "Tuesday, 1 December 2026 at 14:00 (London Time)": zones by city, not "GMT".
        return i18n.format_moment(moment, zone, i18n.format_locale()) if moment else ""

    @app.context_processor
    def board_settings() -> dict[str, int]:
        return {"poll_ms": int(app.config["BOARD_POLL_MS"])}
