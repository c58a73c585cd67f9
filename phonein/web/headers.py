"""Security headers for every response, in one place (Flask-Talisman plus two page rules).

- A CSP with no inline script or style: every script and stylesheet is a file under
  /static, and confirmations are ``data-confirm`` attributes read by static/confirm.js.
- ``frame-ancestors 'none'`` (and X-Frame-Options DENY for old browsers): no page, the
  switchboard least of all, can be framed and clickjacked.
- ``nosniff``; ``Referrer-Policy: no-referrer`` on the listener's private pages (their URL
  must not leave in a Referer), ``strict-origin-when-cross-origin`` elsewhere.
- ``Cache-Control: no-store`` on staff pages, private pages and authenticated API answers:
  a shared computer's back button or a proxy must not keep listeners' numbers.
- HSTS whenever cookies are Secure (production, or an https ``PUBLIC_URL``).
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_login import current_user
from flask_talisman import Talisman

talisman = Talisman()

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
}
PRIVATE_ENDPOINTS = ("public.manage",)
STAFF_BLUEPRINTS = ("producer", "board")
HSTS = "max-age=31536000; includeSubDomains"


def _is_private() -> bool:
    endpoint = request.endpoint or ""
    return endpoint.startswith(PRIVATE_ENDPOINTS)


def _is_staff() -> bool:
    if request.blueprint in STAFF_BLUEPRINTS:
        return True
    return request.path.startswith("/api/") and bool(
        request.headers.get("Authorization") or current_user.is_authenticated
    )


def _page_rules(response: Response) -> Response:
    if _is_private():
        response.headers["Referrer-Policy"] = "no-referrer"
    if _is_private() or _is_staff():
        response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Expires", None)
    return response


def _hsts(response: Response) -> Response:
    response.headers["Strict-Transport-Security"] = HSTS
    return response


def init_app(app: Flask) -> None:
    secure = bool(app.config["SESSION_COOKIE_SECURE"])
    # Flask runs after_request functions last-registered first: these two are registered
    # before Talisman's so that they run after it and their Referrer-Policy wins.
    app.after_request(_page_rules)
    if secure:
        app.after_request(_hsts)
    talisman.init_app(
        app,
        # TLS ends at the proxy; redirecting here would loop where PROXY_COUNT is wrong.
        force_https=False,
        # Sent by _hsts from the configuration, not from a request header anyone can set.
        strict_transport_security=False,
        session_cookie_secure=secure,
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        frame_options="DENY",
        content_security_policy=CSP,
        content_security_policy_nonce_in=[],
        referrer_policy="strict-origin-when-cross-origin",
        x_xss_protection=False,
    )
