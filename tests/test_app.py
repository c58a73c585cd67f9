"""Settings, the schema and the OpenAPI document."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from phonein import create_app
from phonein.extensions import db
from phonein.models import POSTGRESQL_ONLY_INDEXES
from phonein.settings import ConfigError


def test_settings_layer_defaults_env_then_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("PHONEIN_SMS_RATE", "5")
    monkeypatch.setenv("PHONEIN_DEFAULT_REGION", "us")
    monkeypatch.setenv("PHONEIN_RATELIMIT_ENABLED", "false")
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
            "DEFAULT_REGION": "FR",
            "TESTING": True,
        }
    )
    assert app.config["SMS_RATE"] == 5
    assert app.config["RATELIMIT_ENABLED"] is False
    assert app.config["DEFAULT_REGION"] == "FR"  # test override beats the environment
    assert app.config["SIGNUP_RATE_LIMIT"] == "20/minute"  # config/defaults.py
    assert app.config["SMS_BACKEND"] == "console"


def test_production_needs_a_real_secret(monkeypatch, tmp_path):
    monkeypatch.delenv("PHONEIN_SECRET_KEY", raising=False)
    pg = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    with pytest.raises(ConfigError, match="PHONEIN_SECRET_KEY"):
        create_app(pg)
    with pytest.raises(ConfigError, match="too weak"):
        create_app({**pg, "SECRET_KEY": "changeme"})
    with pytest.raises(ConfigError):
        create_app({"ENV": "production", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/a"})
    assert create_app({**pg, "SECRET_KEY": "k" * 40}).config["SECRET_KEY"] == "k" * 40


def test_dev_secret_is_generated_once_and_kept(tmp_path):
    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"}
    first = create_app(config)
    second = create_app(config)
    assert len(first.config["SECRET_KEY"]) > 40
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]


def test_twilio_credentials_choose_the_twilio_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"}
    with pytest.raises(ConfigError, match="needs a sender"):
        create_app(config)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15005550006")
    app = create_app(config)
    assert app.config["SMS_BACKEND"] == "twilio"
    assert type(app.extensions["phonein_sms"]).__name__ == "TwilioBackend"


def _not_postgresql_only(obj, name, type_, reflected, compare_to):
    # The pg_trgm search indexes exist only on PostgreSQL and only in migration 0005
    # (see phonein.models.POSTGRESQL_ONLY_INDEXES); everything else must match.
    return not (type_ == "index" and reflected and name in POSTGRESQL_ONLY_INDEXES)


def test_migrations_match_the_models(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": _not_postgresql_only}
        )
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_openapi_lists_every_contract_endpoint(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    expected = {
        "/api/v1/forums": {"get", "post"},
        "/api/v1/forums/{slug}": {"get", "patch"},
        "/api/v1/forums/{slug}/signups": {"get", "post"},
        "/api/v1/signups/{signup_id}": {"get"},
        "/api/v1/signups/{signup_id}/screen": {"post"},
        "/api/v1/signups/{signup_id}/publish": {"post"},
        "/api/v1/forums/{slug}/queue": {"get", "post"},
        "/api/v1/forums/{slug}/queue/{signup_id}": {"delete"},
        "/api/v1/forums/{slug}/queue/next": {"post"},
        "/api/v1/forums/{slug}/queue/finish": {"post"},
        "/api/v1/forums/{slug}/messages": {"get"},
        "/api/v1/verifications/{verification_id}": {"post"},
        "/api/v1/verifications/{verification_id}/resend": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    create = paths["/api/v1/forums/{slug}/signups"]["post"]
    assert {"202", "201", "422", "409"} <= set(create["responses"])
    prove = paths["/api/v1/verifications/{verification_id}"]["post"]
    assert {"201", "200", "404", "422", "429"} <= set(prove["responses"])
    assert "bearerAuth" in spec["components"]["securitySchemes"]
