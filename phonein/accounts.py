"""Staff accounts, API tokens, and the checks that guard producer pages and endpoints."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from flask import (
    Flask,
    Response,
    after_this_request,
    current_app,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user, logout_user
from sqlalchemy.orm import aliased
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from .database import Ride, commit, rollback
from .errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from .extensions import csrf, db, login_manager
from .inputs import EMAIL_RE
from .models import ApiToken, Role, User, roles_that_can
from .times import UTCDateTime, utcnow

USER_KEY = "phonein.api_user"
# Methods that change nothing: a session request by any other needs its CSRF token.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
RIDER_KEY = "phonein.auth_rider"
PASSWORD_MIN_LENGTH = 10
# zxcvbn's score runs 0 (guessed at once) to 4; 3 means "safely unguessable: moderate
# protection from an offline attack", the floor for an account that can reach every
# listener's phone number.
PASSWORD_MIN_SCORE = 3
COMMON_PASSWORDS = Path(__file__).resolve().parent / "common_passwords.txt"
# The session key holding when the staff member was last seen (epoch seconds).
SEEN_KEY = "_seen"
# last_used_at is written at most this often per token: not one UPDATE per request.
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


@functools.cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_problem(password: str, email: str = "") -> str | None:
    """Return why ``password`` is too weak for a staff account, or None when it will do."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"Use at least {PASSWORD_MIN_LENGTH} characters."
    if password.lower() in _common_passwords():
        return "That is one of the most common passwords: choose another."
    # zxcvbn is slow on very long inputs; a long passphrase is strong enough by length.
    result = zxcvbn(password[:100], user_inputs=[email, *email.split("@"), "phonein"])
    if result["score"] < PASSWORD_MIN_SCORE:
        hint = result["feedback"].get("warning") or "It would be guessed too easily."
        return f"That password is too weak: {hint.rstrip('.')}. Add words or characters."
    return None


def email_taken(email: str) -> bool:
    return bool(db.session.scalar(sa.select(User.id).where(User.email == email.strip().lower())))


def create_user(email: str, role: str, password: str | None) -> User:
    email = email.strip().lower()
    errors = {}
    if not EMAIL_RE.match(email):
        errors["email"] = "Give a valid email address."
    if role not in {r.value for r in Role}:
        errors["role"] = "Use admin, producer or presenter."
    if password is not None:
        problem = password_problem(password, email)
        if problem:
            errors["password"] = problem
    if errors:
        raise Invalid(errors)
    if email_taken(email):
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


def required_user(email: str) -> User:
    user = user_by_email(email)
    if user is None:
        raise NotFound(f"No staff account for {email}: use 'phonein users add'.")
    return user


def end_sessions(user: User) -> None:
    """Make every session ``user`` has logged in with invalid (the next request is anonymous)."""
    user.session_version += 1


def set_password(user: User, password: str) -> None:
    """Change ``user``'s password (checked for strength) and end their sessions."""
    problem = password_problem(password, user.email)
    if problem:
        raise Invalid({"password": problem})
    user.password_hash = generate_password_hash(password)
    end_sessions(user)


def set_active(user: User, active: bool, now: datetime) -> None:
    """Enable or disable ``user``; disabling ends their sessions and revokes their tokens."""
    user.is_active_user = active
    if not active:
        end_sessions(user)
        for token in user.tokens:
            if token.revoked_at is None:
                token.revoked_at = now


def list_users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.email)))


def create_token(user: User, expires_at: datetime | None = None) -> str:
    """Create an API token for ``user``; only its hash is stored, the token is returned."""
    token = "pi_" + secrets.token_urlsafe(32)
    db.session.add(
        ApiToken(
            user=user,
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            expires_at=expires_at,
        )
    )
    db.session.flush()
    return token


def list_tokens(user: User | None = None) -> list[ApiToken]:
    query = sa.select(ApiToken).join(User).order_by(User.email, ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(db.session.scalars(query))


def revoke_token(token_id: int, now: datetime) -> ApiToken:
    token = db.session.get(ApiToken, token_id) if 0 < token_id < 2**31 else None
    if token is None:
        raise NotFound(f"There is no token {token_id}.")
    if token.revoked_at is None:
        token.revoked_at = now
    return token


def user_for_token(token: str, now: datetime) -> User | None:
    """Return the active user behind a live (unrevoked, unexpired) token; note its use."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    # The token and its user in one join: every API request pays this, the boards' 304
    # polls included, and a second round trip for the user was a third of such a poll.
    rider = _rider()
    params: dict[str, Any] = {"token_digest": digest}
    if rider is not None:
        params.update(rider.ride.params)
        if rider.ride.writes:
            params["token_now"] = now
    found = db.session.execute(
        _token_query(rider.ride.extend, rider.guard) if rider is not None else _TOKEN_QUERY,
        params,
    ).one_or_none()
    if found is None:
        return None
    token_id, last_used_at, expires_at, revoked_at = found[: _TOKEN_WIDTH - 1]
    user: User = found[_TOKEN_WIDTH - 1]
    if rider is not None:
        rider.values = tuple(found[_TOKEN_WIDTH:])
    if revoked_at is not None:
        return None
    if expires_at is not None and expires_at <= now:
        return None
    if not user.is_active:
        return None
    if last_used_at is None or now - last_used_at >= TOKEN_USE_RESOLUTION:
        _stamp_after_request(token_id, now)
    return user


_TOKENS = ApiToken.__table__
_STAMP = (
    sa.update(_TOKENS)
    .where(
        _TOKENS.c.id == sa.bindparam("stamp_token"),
        sa.or_(
            _TOKENS.c.last_used_at.is_(None),
            _TOKENS.c.last_used_at <= sa.bindparam("stamp_since", type_=UTCDateTime),
        ),
    )
    .values(last_used_at=sa.bindparam("stamp_now", type_=UTCDateTime))
)


def _stamp_after_request(token_id: int, now: datetime) -> None:
    """Write the token's last use once the request succeeded and its view committed.

    Not in the request's own transaction: the token's row would be locked in the middle
    of it, before the queue lock on one request and after it on another (a lock taken
    with the check, ``Ride.writes``), and two producers sharing a token deadlocked. Here
    it comes last, after any other lock: a view that changes something has committed it
    already, and a GET, which commits nothing of its own, commits with it. A failed
    request rolled back and stamps nothing.
    """

    @after_this_request
    def remember_use(response: Response) -> Response:
        if response.status_code < 400:
            try:
                db.session.execute(
                    _STAMP,
                    {
                        "stamp_token": token_id,
                        "stamp_since": now - TOKEN_USE_RESOLUTION,
                        "stamp_now": now,
                    },
                )
                commit()
            except sa.exc.SQLAlchemyError:
                # A last-use stamp is not worth failing an answer that is ready.
                rollback()
                current_app.logger.warning("could not record an API token's last use")
        return response


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
        if request.method not in SAFE_METHODS:
            csrf.protect()
        user = current_user._get_current_object()
    request.environ[USER_KEY] = user
    return user


@dataclass
class _Rider:
    ride: Ride
    # The role the view needs: what a ride that writes is conditional on.
    role: Role
    # What the ride read (the columns it added, in order); None until it rode.
    values: tuple[Any, ...] | None = None

    @property
    def guard(self) -> Role | None:
        return self.role if self.ride.writes else None


# The token's columns that the check reads, not the token (every API request loads this
# row: an entity costs more to load than its four columns), then the user.
_TOKEN_COLUMNS = (ApiToken.id, ApiToken.last_used_at, ApiToken.expires_at, ApiToken.revoked_at)
_TOKEN_QUERY = (
    sa.select(*_TOKEN_COLUMNS, User)
    .join(ApiToken.user)
    .where(ApiToken.token_hash == sa.bindparam("token_digest"))
)
# What the check reads (the token's columns, the user); a ride's columns come after.
_TOKEN_WIDTH = len(_TOKEN_COLUMNS) + 1


def _passes_by_token(role: Role) -> sa.ColumnElement[bool]:
    """``user_for_token``'s check and ``require_api``'s role, in SQL (for a ride that writes)."""
    token, user = aliased(ApiToken), aliased(User)
    return sa.exists().where(
        token.token_hash == sa.bindparam("token_digest"),
        token.revoked_at.is_(None),
        sa.or_(token.expires_at.is_(None), token.expires_at > sa.bindparam("token_now")),
        user.id == token.user_id,
        user.is_active_user.is_(True),
        user.role.in_(roles_that_can(role)),
    )


def _passes_by_session(role: Role) -> sa.ColumnElement[bool]:
    """``user_for_session``'s check and ``require_api``'s role, in SQL."""
    user = aliased(User)
    return sa.exists().where(
        user.id == sa.bindparam("session_user"),
        user.session_version == sa.bindparam("session_version"),
        user.is_active_user.is_(True),
        user.role.in_(roles_that_can(role)),
    )


@functools.cache
def _token_query(extend: Callable[..., Any], guard: Role | None) -> Any:
    if guard is None:
        return extend(_TOKEN_QUERY)
    return extend(_TOKEN_QUERY, _passes_by_token(guard))


@functools.cache
def _session_query(extend: Callable[..., Any], guard: Role | None) -> Any:
    stmt = sa.select(User).where(User.id == sa.bindparam("session_user"))
    if guard is None:
        return extend(stmt)
    return extend(stmt, _passes_by_session(guard))


def _rider() -> _Rider | None:
    """This request's rider (``require_api(along=…)``) if it has not ridden yet."""
    if not has_request_context():
        return None
    rider: _Rider | None = request.environ.get(RIDER_KEY)
    return rider if rider is not None and rider.values is None else None


def ridden() -> tuple[Any, ...] | None:
    """What this request's authentication query read for ``require_api(along=…)``.

    None when it did not ride (the user was known before, or came another way): then the
    view reads it itself. The values are only ever handed out after the caller passed.
    """
    rider: _Rider | None = request.environ.get(RIDER_KEY)
    return rider.values if rider is not None else None


def _forged_writes_nothing() -> None:
    """Check a login session's CSRF token before a ride that writes, not after.

    ``api_user`` checks it once the user is loaded, and with such a ride loading the user
    is the write: a forged request would hold the write (a queue lock) until it failed.
    A request with a bearer token, or with no login session, is checked as ever.
    """
    if (
        request.method not in SAFE_METHODS
        and not request.headers.get("Authorization")
        and "_user_id" in session
    ):
        csrf.protect()


def require_api(
    role: Role, *, along: Callable[..., Ride | None] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard an API view: 401 without credentials, 403 without the role.

    ``along(**view_args)``: what the query that checks the caller should read (or, with
    ``Ride.writes``, change) as well, in the same round trip (a LEFT JOIN, so an unknown
    row never fails the check); the view finds it in ``ridden()``. None: nothing rides.
    The check itself is the same query, every request: a revoked token or a disabled user
    stops at once.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if along is not None and RIDER_KEY not in request.environ:
                ride = along(**kwargs)
                if ride is not None:
                    if ride.writes:
                        _forged_writes_nothing()
                    request.environ[RIDER_KEY] = _Rider(ride, role)
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


def session_id(user: User) -> str:
    """Return what a login session stores for ``user``: its id and session version.

    Flask-Login's ``alternative_id``: bumping the version (logout, disabling, a new
    password) makes every session made before it log in nobody.
    """
    return f"{user.id}:{user.session_version}"


def user_for_session(value: str) -> User | None:
    user_id, _, version = value.partition(":")
    if not user_id.isdigit() or not version.isdigit() or int(user_id) >= 2**31:
        return None
    rider = _rider()
    if rider is None:
        user = db.session.get(User, int(user_id))
    else:
        params: dict[str, Any] = {"session_user": int(user_id), **dict(rider.ride.params)}
        if rider.ride.writes:
            params["session_version"] = int(version)
        found = db.session.execute(
            _session_query(rider.ride.extend, rider.guard), params
        ).one_or_none()
        user = cast("User | None", found[0] if found is not None else None)
        if found is not None:
            rider.values = tuple(found[1:])
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def mark_seen(now: datetime) -> None:
    session[SEEN_KEY] = int(now.timestamp())


def _expire_idle_sessions() -> None:
    """Log out a staff session idle longer than STAFF_IDLE_MINUTES; note activity otherwise.

    The time is kept in the signed session, so a copied cookie also dies once idle.
    """
    if "_user_id" not in session:
        return
    now = utcnow()
    idle = timedelta(minutes=float(current_app.config["STAFF_IDLE_MINUTES"]))
    seen = session.get(SEEN_KEY)
    if not isinstance(seen, int) or now.timestamp() - seen > idle.total_seconds():
        logout_user()
        session.pop(SEEN_KEY, None)
        return
    # Rewriting the cookie on every request of a polling board is needless: once a minute.
    if now.timestamp() - seen >= 60:
        mark_seen(now)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "producer.login"
    # "basic", not "strong": strong drops the session whenever the client's address
    # changes, which would log a producer out mid-show on a mobile connection.
    login_manager.session_protection = "basic"
    app.before_request(_expire_idle_sessions)

    @login_manager.user_loader
    def load_user(value: str) -> User | None:
        return user_for_session(value)
