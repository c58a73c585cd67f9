"""JSON API v1 (flask-smorest), its OpenAPI document, and the health check."""

from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Api as SmorestApi

from .. import database
from ..extensions import csrf


class Api(SmorestApi):
    """flask-smorest without its app-wide error handler: phonein's own handlers answer
    every error in the contract's ``{"error": {...}}`` shape (and pages with HTML)."""

    def _register_error_handlers(self) -> None:
        pass


def init_app(app: Flask) -> None:
    app.config.update(
        API_TITLE="phonein",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = Api(
        app,
        spec_kwargs={
            "info": {
                "description": "Listener signups, screening, the caller queue and "
                "publication for a broadcaster's live phone-in."
            },
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "phonein tokens create"}
    )
    from . import calls, forums, queue, signups, verifications

    for blueprint in (forums.blp, signups.blp, queue.blp, calls.blp, verifications.blp):
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint, url_prefix="/api/v1")

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        # Within 2 s whatever the database does: a load balancer must see an outage.
        if database.healthy(within=1.5):
            return jsonify(status="ok")
        error = {"code": "unavailable", "message": "The database is not answering."}
        return jsonify(status="unavailable", error=error), 503
