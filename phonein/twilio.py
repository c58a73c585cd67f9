"""Twilio in one place: the SDK client, what its errors mean, and the webhook signature check.

Every Twilio REST call phonein makes (Messages, Calls, Queues, Conferences) goes through a
client made by ``client``; ``PHONEIN_TWILIO_API_URL`` sends them all to another base URL
(sandboxes, and the fake Twilio of the tests). ``failure`` turns whatever the SDK raised
into one ``TwilioFailure`` that says whether trying again can help; each feature decides
what that means for a text or a call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast
from urllib.parse import urlsplit

import requests
from flask import Response, abort, current_app, request
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator

if TYPE_CHECKING:
    from twilio.rest import Client

TIMEOUT_SECONDS = 10

# Twilio error codes phonein acts on.
OPTED_OUT = 21610  # the number replied STOP: record an opt-out
CALL_NOT_IN_PROGRESS = 21220
NOT_FOUND = 20404

P = ParamSpec("P")
R = TypeVar("R")


class SettledSession(requests.Session):
    """A requests Session that reads the environment's network settings once per host.

    requests looks up the proxy and CA-bundle variables (``HTTPS_PROXY``, ``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``…) for every request, by walking all of ``os.environ`` twice:
    about a third of the CPU of a Verify call. A process's environment does not change
    under it, so the answer is kept per scheme, host and the request's own settings.
    """

    def __init__(self) -> None:
        super().__init__()
        self._settled: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        parts = urlsplit(str(url))
        key = (
            parts.scheme,
            parts.netloc,
            tuple(sorted((proxies or {}).items())),
            stream,
            verify,
            cert if not isinstance(cert, list) else tuple(cert),
        )
        found = self._settled.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._settled[key] = found
        return {**found, "proxies": dict(found["proxies"])}


class RedirectingHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending every ``*.twilio.com`` request to ``base_url``."""

    def __init__(self, base_url: str | None, timeout: float = TIMEOUT_SECONDS):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        sdk_session: requests.Session | None = getattr(self, "session", None)
        if sdk_session is not None:
            settled = SettledSession()
            settled.adapters = sdk_session.adapters  # the SDK's pool sizes
            self.session = settled

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        if self.base_url and (parts.hostname or "").endswith("twilio.com"):
            url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, url, *args, **kwargs)


def client(account_sid: str, auth_token: str, api_url: str | None) -> Client:
    """Return an SDK client for the account, honouring the API-URL override."""
    from twilio.rest import Client

    return Client(account_sid, auth_token, http_client=RedirectingHttpClient(api_url))


@dataclass(eq=False)
class TwilioFailure(Exception):
    """A Twilio REST request failed.

    ``status`` is the HTTP status, None when Twilio did not answer (the outcome is then
    unknown). ``retryable``: trying again later can help (429, 5xx, no answer). ``gone``:
    the call or resource no longer exists, so the request no longer applies.
    """

    message: str
    code: int | None = None
    status: int | None = None
    retryable: bool = False
    gone: bool = False

    def __str__(self) -> str:
        return self.message


def failure(error: Exception) -> TwilioFailure:
    """Map an exception the SDK raised to a TwilioFailure (the one mapping phonein has)."""
    if isinstance(error, TwilioRestException):
        status = int(error.status)
        return TwilioFailure(
            str(error.msg),
            code=error.code,
            status=status,
            retryable=status == 429 or status >= 500,
            gone=error.code in (CALL_NOT_IN_PROGRESS, NOT_FOUND) or status == 404,
        )
    # Timeouts and broken connections: Twilio may or may not have acted.
    return TwilioFailure(f"no answer from Twilio: {error}", retryable=True)


def call(action: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run one SDK request; raise TwilioFailure when it fails."""
    try:
        return action(*args, **kwargs)
    except (TwilioRestException, requests.RequestException, TwilioException) as error:
        raise failure(error) from error


def signed(view: Callable[P, R]) -> Callable[P, R]:
    """Refuse webhook requests without a valid Twilio signature (403).

    The signature covers ``PUBLIC_URL`` + path: the URL Twilio was given, whatever proxies
    stand between it and this process.
    """

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        token = current_app.config.get("TWILIO_AUTH_TOKEN")
        signature = request.headers.get("X-Twilio-Signature", "")
        url = current_app.config["PUBLIC_URL"] + request.full_path.rstrip("?")
        if (
            not token
            or not signature
            # Every value of every field (the SDK reads a MultiDict's lists): a value added
            # beside a signed one must break the signature, not slip past it.
            or not RequestValidator(token).validate(url, request.form, signature)
        ):
            abort(403)
        given = (*request.args.listvalues(), *request.form.listvalues())
        if any("\x00" in value for values in given for value in values):
            # Twilio sends no NUL, and PostgreSQL refuses it in text (a 500 at the first
            # query): nothing to act on. Empty 204, as webhooks answer what they ignore.
            return cast(R, Response(status=204))
        return view(*args, **kwargs)

    return wrapped
