"""Rate limits shared by the pages and the API (Flask-Limiter), declared once."""

from __future__ import annotations

from flask import current_app

from .extensions import limiter


def _signup_limit() -> str:
    return str(current_app.config["SIGNUP_RATE_LIMIT"])


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


# One budget per client for the API's signups and the signup page together.
signup_rate = limiter.shared_limit(_signup_limit, scope="signup", methods=["POST"])
# Password guesses per client on the staff login.
login_rate = limiter.limit(_login_limit, methods=["POST"])
