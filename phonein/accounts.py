"""Staff accounts, API tokens, and the checks that guard producer pages and endpoints."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, redirect, request, url_for
from flask_login import current_user
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import Conflict, Forbidden, Invalid, Unauthorized
from .extensions import csrf, db, login_manager
from .inputs import EMAIL_RE
from .models import ApiToken, Role, User
from .times import utcnow

USER_KEY = "phonein.api_user"


def create_user(email: str, role: str, password: str | None) -> User:
    email = email.strip().lower()
    errors = {}
    if not EMAIL_RE.match(email):
        errors["email"] = "Give a valid email address."
    if role not in {r.value for r in Role}:
        errors["role"] = "Use admin, producer or presenter."
    if password is not None and len(password) < 10:
        errors["password"] = "Use at least 10 characters."
    if errors:
        raise Invalid(errors)
    if db.session.scalar(sa.select(User.id).where(User.email == email)):
        raise Conflict(f"{email} already has an account.", code="user_exists")
    user = User(
        email=email,
        role=role,
        password_hash=generate_password_hash(password) if password else None,
    )
    db.session.add(user)
    db.session.flush()
    return user


def user_by_email(email: str) -> User | None:
    return db.session.scalars(
        sa.select(User).where(User.email == email.strip().lower())
    ).one_or_none()


def check_login(email: str, password: str) -> User | None:
    user = user_by_email(email)
    if user is None or not user.password_hash or not user.is_active:
        # Same work either way, so response time does not reveal who has an account.
        check_password_hash(_DUMMY_HASH(), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


@functools.cache
def _DUMMY_HASH() -> str:
    return generate_password_hash(secrets.token_hex(8))


def create_token(user: User) -> str:
    """Create an API token for ``user``; only its hash is stored, the token is returned."""
    token = "pi_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=hashlib.sha256(token.encode()).hexdigest()))
    db.session.flush()
    return token


def user_for_token(token: str, now: datetime) -> User | None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    user = db.session.scalars(
        sa.select(User).join(ApiToken).where(ApiToken.token_hash == digest)
    ).one_or_none()
    if user is None or not user.is_active:
        return None
    return user


def api_user() -> User | None:
    """Return the user behind this API request: bearer token, else the login session.

    A session-authenticated request that changes state must carry the CSRF token (the
    producer pages send it); a bearer request is not exposed to CSRF.
    """
    # Cached on the request, not on ``g``: an app context can outlive one request.
    if USER_KEY in request.environ:
        cached: User | None = request.environ[USER_KEY]
        return cached
    user = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use 'Authorization: Bearer TOKEN'.")
        user = user_for_token(token.strip(), utcnow())
        if user is None:
            raise Unauthorized("That API token is not valid.")
    elif current_user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf.protect()
        user = current_user._get_current_object()
    request.environ[USER_KEY] = user
    return user


def require_api(role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard an API view: 401 without credentials, 403 without the role."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = api_user()
            if user is None:
                raise Unauthorized("This needs an API token: 'Authorization: Bearer TOKEN'.")
            if not user.can(role):
                raise Forbidden(f"This needs the {role.value} role.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def require_staff(role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard a page: log in first, then need ``role``."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return redirect(url_for("producer.login", next=request.full_path))
            if not current_user.can(role):
                raise Forbidden(f"This page needs the {role.value} role.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "producer.login"
    # "basic", not "strong": strong drops the session whenever the client's address
    # changes, which would log a producer out mid-show on a mobile connection.
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id)) if user_id.isdigit() else None
