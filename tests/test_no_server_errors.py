"""No input produces a 500: the audit's cases, and a seeded fuzz over every route and page."""

from __future__ import annotations

import json
import random
import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import bearer, login, make_forum, make_signup, make_user, manage_token
from .fake_twilio import signed

SIGNUP = {
    "name": "Ann",
    "location": "Accra, Ghana",
    "phone": "+233 24 123 4567",
    "question": "Why?",
}


def assert_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return dict(error)


@pytest.mark.parametrize("path", ["/api/v1/forums/{slug}/signups", "/forums/{slug}"])
def test_json_nested_3000_deep_is_400_not_a_recursion_error(client, app, path):
    forum = make_forum()
    deep = b"[" * 3000 + b"]" * 3000
    response = client.post(
        path.format(slug=forum.slug),
        data=deep,
        content_type="application/json",
        headers={"Accept": "application/json"},
    )
    assert assert_json_error(response, 400)["code"] == "too_deep"


def test_deep_json_inside_a_string_is_not_counted(client, app):
    forum = make_forum()
    body = {**SIGNUP, "question": "[" * 3000}
    response = client.post(f"/api/v1/forums/{forum.slug}/signups", json=body)
    # 201 signed up, or 202 when the number must first be verified (PHONEIN_VERIFY=sms).
    assert response.status_code in (201, 202), response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SIGNUP, "name": "\ud800"}, "name"),
        ({**SIGNUP, "question": "ok \udfff then"}, "question"),
        ({**SIGNUP, "\ud800": 1}, "input"),
    ],
)
def test_a_lone_surrogate_in_a_signup_is_422_naming_the_field(client, app, body, field):
    forum = make_forum()
    response = client.post(
        f"/api/v1/forums/{forum.slug}/signups",
        data=json.dumps(body),  # ensure_ascii spells the surrogate as \\ud800
        content_type="application/json",
    )
    error = assert_json_error(response, 422)
    assert field in error["fields"]


def test_a_lone_surrogate_in_a_forum_patch_is_422(client, app, producer):
    forum = make_forum()
    response = client.patch(
        f"/api/v1/forums/{forum.slug}",
        data='{"title": "\\ud800"}',
        content_type="application/json",
        headers=producer,
    )
    assert assert_json_error(response, 422)["fields"] == {
        "title": "Contains a lone UTF-16 surrogate (like \\ud800), which is not text."
    }


@pytest.mark.parametrize("page", ["signups", "messages"])
def test_a_huge_page_number_on_producer_pages_is_422(client, app, page):
    forum = make_forum()
    login(client)
    response = client.get(f"/producer/forums/{forum.slug}/{page}?page=9223372036854775807")
    assert response.status_code == 422
    assert "Give a page from 1 to" in response.get_data(as_text=True)
    json_response = client.get(
        f"/producer/forums/{forum.slug}/{page}?page=9223372036854775807",
        headers={"Accept": "application/json"},
    )
    assert assert_json_error(json_response, 422)["fields"] == {
        "page": "Give a page from 1 to 100000."
    }


def test_an_api_call_with_a_session_but_no_csrf_token_says_so(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    with app.app_context():
        forum = make_forum()
        user, _ = make_user("producer")
        page = client.get("/producer/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert token is not None
        response = client.post(
            "/producer/login",
            data={
                "email": user.email,
                "password": "correct horse battery",
                "csrf_token": token.group(1),
            },
        )
        assert response.status_code == 302
        refused = client.post(f"/api/v1/forums/{forum.slug}/queue/next", json={})
    error = assert_json_error(refused, 400)
    assert error["code"] == "csrf_failed"
    assert "CSRF token is missing" in error["message"]
    assert "not valid JSON" not in error["message"]


@pytest.mark.parametrize("host", ["a..b", ".", "x" * 64 + ".example", "1" * 300])
@pytest.mark.parametrize("path", ["/", "/forums/{slug}", "/nothing-here", "/api/v1/forums"])
def test_a_host_header_the_url_map_cannot_bind_is_400_not_a_500(app, host, path):
    """werkzeug answers BadHost; the error page must not then need the URL map itself."""
    forum = make_forum()
    client = app.test_client()
    response = client.get(path.format(slug=forum.slug), headers={"Host": host})
    assert response.status_code == 400
    if path.startswith("/api/"):
        assert "Host" in assert_json_error(response, 400)["message"]
    else:
        assert "<h1>" in response.get_data(as_text=True)


# The fuzz: every rule of the URL map, each of its methods, random path values, query
# strings and bodies (JSON, forms, raw bytes), as a logged-in producer, with a bearer
# token and anonymously. Webhooks are signed half the time so that their bodies are read.

FIELD_NAMES = [
    # The forms' fields (web/forms.py) and the API's.
    "name",
    "location",
    "phone",
    "country",
    "email",
    "question",
    "sms_consent",
    "publish_consent",
    "timezone",
    "title",
    "slug",
    "correspondent",
    "description",
    "starts_at",
    "duration_minutes",
    "signup_closes_at",
    "reminder_offsets",
    "decision",
    "stance",
    "rating",
    "notes",
    "published",
    "pull_quote",
    "order",
    "status",
    "position",
    "signup_id",
    "password",
    "back",
    "muted",
    "held",
    "code",
    "channel",
    "languages",
    "language",
    # Twilio's webhook parameters.
    "From",
    "To",
    "Body",
    "MessageSid",
    "MessageStatus",
    "ErrorCode",
    "CallSid",
    "CallStatus",
    "StirVerstat",
    "QueueResult",
    "QueueTime",
    "StatusCallbackEvent",
    "ConferenceSid",
    "AnsweredBy",
    "Digits",
]
QUERY_NAMES = ["page", "per_page", "q", "status", "kind", "limit", "lang", "next", "full"]
WEIRD_TEXT = [
    "",
    " ",
    "\ud800",
    "\udfff\ud800",
    "\u202eevil",
    "\x00",
    "a\r\nb",
    "ñ" * 300,
    "x" * 6000,
    "9223372036854775807",
    "-9223372036854775808",
    "1e309",
    "NaN",
    "2026-02-30T25:61",
    "+447700900123",
    "00",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "%",
    "approve",
    "reject",
    "cancelled",
    "published",
    "for",
    "true",
]


def _scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.choice(WEIRD_TEXT),
            rng.randint(-(2**70), 2**70),
            rng.choice([0, 1, -1, 2**31, 2**63 - 1, 2**64]),
            rng.random() * 1e300,
            rng.choice([True, False, None]),
        ]
    )


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return _scalar(rng)
    if roll < 0.65:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(FIELD_NAMES): _json_value(rng, depth + 1) for _ in range(rng.randint(0, 8))}


def _text(rng: random.Random) -> str:
    value = _scalar(rng)
    return "" if value is None else str(value)


def _form_body(rng: random.Random) -> bytes:
    pairs = [(rng.choice(FIELD_NAMES), _text(rng)) for _ in range(rng.randint(0, 10))]
    # surrogatepass: the bytes a hostile client can send for a lone surrogate (%ED%A0%80).
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()


def _query(rng: random.Random) -> str:
    pairs = [(rng.choice(QUERY_NAMES), _text(rng)) for _ in range(rng.randint(0, 3))]
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass")


def _path_value(rng: random.Random, converter: str, known: dict[str, list[Any]]) -> str:
    if converter == "IntegerConverter":
        value = rng.choice([*known["int"], 0, 1, 2**31, 2**63 - 1, 10**30])
        return str(value)
    choices = known["path"] if converter == "PathConverter" else known["string"]
    value = rng.choice([*choices, rng.choice(WEIRD_TEXT) or "x"])
    return quote(str(value).encode("utf-8", "surrogatepass"), safe="")


def _url(rng: random.Random, rule: Any, known: dict[str, list[Any]]) -> str:
    def fill(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        if name == "slug":
            return _path_value(rng, "str", {**known, "string": known["slug"]})
        if name == "token":
            return _path_value(rng, "str", {**known, "string": known["token"]})
        converter = {"int": "IntegerConverter", "path": "PathConverter"}.get(kind or "", "str")
        return _path_value(rng, converter, known)

    path = re.sub(r"<(?:(\w+):)?(\w+)>", fill, rule.rule)
    query = _query(rng) if rng.random() < 0.5 else ""
    return path + (f"?{query}" if query else "")


def _request(
    rng: random.Random, client: FlaskClient, method: str, url: str, headers: dict[str, str]
) -> Any:
    roll = rng.random()
    headers = dict(headers)
    if rng.random() < 0.3:
        headers["Accept"] = "application/json"
    if method in ("GET", "DELETE") and roll < 0.8:
        return client.open(url, method=method, headers=headers)
    if url.startswith("/webhooks/"):
        params = {rng.choice(FIELD_NAMES): _text(rng) for _ in range(rng.randint(0, 8))}
        params = {k: v.encode("utf-8", "replace").decode() for k, v in params.items()}
        if rng.random() < 0.5:
            headers.update(signed("http://phonein.test" + url, params))
        return client.open(url, method=method, data=params, headers=headers)
    if roll < 0.45:
        body = json.dumps(_json_value(rng)).encode()
        kind = "application/json"
    elif roll < 0.85:
        body = _form_body(rng)
        kind = "application/x-www-form-urlencoded"
    elif roll < 0.92:
        body = b"[" * rng.randint(30, 5000)
        kind = "application/json"
    else:
        body = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 60)))
        kind = rng.choice(["application/json", "application/x-www-form-urlencoded", "text/plain"])
    return client.open(url, method=method, data=body, content_type=kind, headers=headers)


def test_seeded_fuzz_over_every_route_and_page_never_gets_a_500(app: Flask):
    forum = make_forum()
    other = make_forum(slug="second-forum", title="Second")
    approved = make_signup(forum, status="approved")
    queued = make_signup(forum, status="queued")
    token = manage_token(forum, make_signup(forum))
    _, api_token = make_user("producer")
    session = app.test_client()
    login(session, "admin")
    anonymous = app.test_client()
    known = {
        "slug": [forum.slug, other.slug],
        "token": [token],
        "int": [approved.id, queued.id, 1],
        "string": [forum.slug],
        "path": ["app.css", "forum.js"],
    }
    rules = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    assert len(rules) > 40  # every route, not a handful
    rng = random.Random(20261130)
    failures = []
    for i in range(900):
        rule, method = rules[i % len(rules)]
        url = _url(rng, rule, known)
        who = rng.random()
        if rule.endpoint == "producer.logout":
            client, headers = anonymous, {}
        elif who < 0.5:
            client, headers = session, {}
        elif who < 0.8:
            client, headers = anonymous, bearer(api_token)
        else:
            client, headers = anonymous, {}
        with _request(rng, client, method, url, headers) as response:
            if response.status_code >= 500:
                failures.append((method, url[:120], response.status_code))
            elif url.startswith("/api/") and response.status_code >= 400:
                error = response.get_json()["error"]
                assert isinstance(error["code"], str) and error["message"], (method, url)
    assert failures == []
