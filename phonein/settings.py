"""Load configuration in one order: config/defaults.py, PHONEIN_* environment, test overrides."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask

PACKAGE = Path(__file__).resolve().parent
TWILIO_VARIABLES = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_VERIFY_SERVICE_SID",
)
T = TypeVar("T")
WEAK_SECRETS = {"", "dev", "secret", "changeme", "change-me", "replace-with-a-long-random-string"}


class ConfigError(RuntimeError):
    """The configuration cannot run safely; the message says what to set."""


def choose(app: Flask, setting: str, makers: Mapping[str, Callable[[], T]]) -> T:
    """Build the implementation that ``setting`` names (SMS_BACKEND: twilio, console, memory)."""
    name = app.config[setting]
    if name not in makers:
        raise ConfigError(f"PHONEIN_{setting} must be one of {', '.join(makers)}, not {name!r}.")
    return makers[name]()


def shipped(name: str) -> Path:
    """Return the folder ``name`` (templates, config) that ships with phonein.

    In the repository it stands at the top, beside the package; the build carries it into
    the package (``pyproject.toml``), so an installed wheel has it inside.
    """
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name


def load(app: Flask, overrides: dict[str, Any] | None) -> None:
    app.config.from_pyfile(str(shipped("config") / "defaults.py"))
    app.config.from_prefixed_env("PHONEIN")
    for name in TWILIO_VARIABLES:
        if os.environ.get(name):
            app.config[name] = os.environ[name]
    if overrides:
        app.config.update(overrides)
    _derive(app)


def _derive(app: Flask) -> None:
    config = app.config
    url = config.get("SQLALCHEMY_DATABASE_URI") or config.get("DATABASE_URL")
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        url = "sqlite:///" + str(Path(app.instance_path) / "phonein.sqlite3")
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    config["SQLALCHEMY_DATABASE_URI"] = url
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    # A failing statement's error (logged, and in tracebacks) leaves out its parameters:
    # listeners' numbers, names and questions.
    config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("hide_parameters", True)
    if url.startswith("postgresql"):
        config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("pool_pre_ping", True)

    production = config.get("ENV") == "production" or not url.startswith("sqlite")
    secret = config.get("SECRET_KEY")
    if not secret:
        if production and not config.get("TESTING"):
            raise ConfigError(
                "PHONEIN_SECRET_KEY is not set. A deployment on PostgreSQL (or with "
                "PHONEIN_ENV=production) needs a long random secret: "
                'python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        config["SECRET_KEY"] = _instance_secret(app)
    elif (
        production
        and not config.get("TESTING")
        and (str(secret).lower() in WEAK_SECRETS or len(str(secret)) < 32)
    ):
        raise ConfigError("PHONEIN_SECRET_KEY is too weak: use at least 32 random characters.")

    config["SMS_COUNTRIES"] = [c.upper() for c in _names(config.get("SMS_COUNTRIES"))] or None
    if any(len(c) != 2 or not c.isalpha() for c in config["SMS_COUNTRIES"] or []):
        raise ConfigError("PHONEIN_SMS_COUNTRIES takes two-letter ISO codes, like GB,IE,FR.")
    config["SMS_DENY_PREFIXES"] = _names(config.get("SMS_DENY_PREFIXES"))
    if any(not p.startswith("+") or not p[1:].isdigit() for p in config["SMS_DENY_PREFIXES"]):
        raise ConfigError("PHONEIN_SMS_DENY_PREFIXES takes E.164 prefixes, like +882,+883.")
    config["PUBLIC_URL"] = str(config["PUBLIC_URL"]).rstrip("/")
    config["DEFAULT_REGION"] = str(config["DEFAULT_REGION"]).upper()
    has_twilio = config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN")
    for backend in ("SMS_BACKEND", "VOICE_BACKEND"):
        if not config.get(backend):
            config[backend] = "twilio" if has_twilio else "console"
    if config["SMS_BACKEND"] == "twilio" and not (
        config.get("TWILIO_MESSAGING_SERVICE_SID") or config.get("TWILIO_FROM_NUMBER")
    ):
        raise ConfigError(
            "Twilio needs a sender: set TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER."
        )
    if float(config["SMS_RATE"]) <= 0:
        raise ConfigError("PHONEIN_SMS_RATE must be a positive number of messages a second.")
    # Flask defines SESSION_COOKIE_SECURE (False), so a setdefault never took: the cookies
    # are Secure in production and whenever listeners reach the site over https.
    # COOKIE_SECURE (None: derived) lets an operator say so explicitly.
    secure = config.get("COOKIE_SECURE")
    if secure is None:
        secure = config.get("ENV") == "production" or config["PUBLIC_URL"].startswith("https://")
    for cookie in ("SESSION_COOKIE", "REMEMBER_COOKIE"):
        config[f"{cookie}_SECURE"] = bool(secure)
        config[f"{cookie}_HTTPONLY"] = True
        config[f"{cookie}_SAMESITE"] = "Lax"
    config["WTF_CSRF_TIME_LIMIT"] = None


def _names(value: Any) -> list[str]:
    """Read a comma list ("GB, IE") or a JSON list from a setting."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def _instance_secret(app: Flask) -> str:
    """Return the dev secret kept in the instance folder, creating it on first use."""
    path = Path(app.instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
