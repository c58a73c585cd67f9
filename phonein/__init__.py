"""phonein: a broadcaster's live phone-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import accounts, database, errors, i18n, inputs, links, settings
from .extensions import csrf, db, limiter, migrate

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the phonein app: configuration, extensions, blueprints."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(settings.shipped("templates")),
    )
    settings.load(app, test_config)
    links.redact_logs()
    if app.config["PROXY_COUNT"]:
        n = int(app.config["PROXY_COUNT"])
        # Flask's documented way to wrap the WSGI app; its type says a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n
        )

    i18n.init_app(app)
    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    csrf.init_app(app)
    limiter.init_app(app)
    accounts.init_app(app)
    errors.init_app(app)
    app.before_request(inputs.guard_json_body)

    from . import api, cli, live, metrics, sms, web

    api.init_app(app)
    sms.init_app(app)
    live.init_app(app)
    metrics.init_app(app)  # after sms: it counts the SMS backend's calls
    web.init_app(app)
    cli.init_app(app)
    return app
