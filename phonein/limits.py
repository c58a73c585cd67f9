"""Rate limits shared by the pages and the API (Flask-Limiter), declared once.

Every limit is per client: the address the request came from (behind PROXY_COUNT proxies,
the one they forwarded), with an IPv6 client counted by its /64, the smallest network an
ISP hands one customer. A per-address key for IPv6 would give each customer 2^64 buckets.
"""

from __future__ import annotations

import ipaddress

from flask import Response, current_app, request

from .extensions import limiter

IPV6_CLIENT_PREFIX = 64


def client_key() -> str:
    """Return the rate-limit key for this request's client: its IPv4 address or IPv6 /64."""
    address = request.remote_addr or "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(ip)


def _login_account_key() -> str:
    return "account:" + str(request.form.get("email", "")).strip().lower()[:254]


def _signup_limit() -> str:
    return str(current_app.config["SIGNUP_RATE_LIMIT"])


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _login_account_limit() -> str:
    return str(current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"])


def _failed(response: Response) -> bool:
    return response.status_code == 401


# One budget per client for the API's signups and the signup page together.
signup_rate = limiter.shared_limit(
    _signup_limit, scope="signup", methods=["POST"], key_func=client_key
)
# Password guesses per client on the staff login.
login_rate = limiter.limit(_login_limit, methods=["POST"], key_func=client_key)
# Failed logins per account, from wherever they come: guessing one producer's password
# from many addresses. Only failures count, so a producer who types it right is not
# held back by someone else's guesses until those reach the limit.
login_account_rate = limiter.limit(
    _login_account_limit, methods=["POST"], key_func=_login_account_key, deduct_when=_failed
)
