"""HTML pages: public (listeners), producer, and the presenter's board."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from .. import phones
from ..times import format_in_zone, rfc3339


def init_app(app: Flask) -> None:
    from . import board, headers, producer, public, texts_preview, verify

    headers.init_app(app)
    texts_preview.init_app(app)

    app.register_blueprint(public.bp)
    app.register_blueprint(verify.bp)
    app.register_blueprint(producer.bp)
    app.register_blueprint(board.bp)

    app.add_template_filter(rfc3339, "rfc3339")
    app.add_template_filter(phones.display, "phone")

    @app.template_filter("in_zone")
    def in_zone(moment: datetime | None, zone: str | None) -> str:
        return format_in_zone(moment, zone) if moment else ""

    @app.context_processor
    def board_settings() -> dict[str, int]:
        return {"poll_ms": int(app.config["BOARD_POLL_MS"])}
