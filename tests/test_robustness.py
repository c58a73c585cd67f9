"""Bad input of every kind gets a clear JSON error, never a 500."""

from __future__ import annotations

import json
import random

import pytest

from .conftest import make_forum, make_signup

GOOD = {
    "name": "Ann",
    "location": "Accra, Ghana",
    "phone": "+233 24 123 4567",
    "question": "Why?",
}


# What a producer's request may get back: a success or a client error of the contract (the
# fuzzing producer is logged in and nothing is rate limited, so no 401, 403 or 429).
CONTRACT_STATUSES = (200, 201, 400, 404, 409, 422)


def assert_error(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": ',
        b"not json at all",
        b"\xff\xfe\xfa garbage",
        b'{"name": "\xc3\x28"}',  # invalid UTF-8 inside a string
    ],
)
def test_malformed_bodies_are_400(client, app, body):
    forum = make_forum()
    response = client.post(
        f"/api/v1/forums/{forum.slug}/signups", data=body, content_type="application/json"
    )
    assert assert_error(response, 400)["code"] == "bad_request"


def test_an_empty_body_is_422_naming_the_missing_fields(client, app):
    forum = make_forum()
    response = client.post(
        f"/api/v1/forums/{forum.slug}/signups", data=b"", content_type="application/json"
    )
    error = assert_error(response, 422)
    assert error["code"] == "invalid"
    assert {"name", "location", "phone", "question"} <= set(error["fields"])


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a string",
        42,
        None,
        {"name": 5, "location": [], "phone": {}, "question": True},
        {**GOOD, "sms_consent": "perhaps"},
        {**GOOD, "unexpected": 1},
        {**GOOD, "name": "x" * 5000},
    ],
)
def test_wrong_types_are_422(client, app, body):
    forum = make_forum()
    response = client.post(f"/api/v1/forums/{forum.slug}/signups", json=body)
    error = assert_error(response, 422)
    assert error["code"] == "invalid"


def test_nul_and_control_characters_are_removed_not_stored(client, app, producer):
    forum = make_forum()
    body = {**GOOD, "name": "An\x00n\x07", "question": "Line one\r\nLine\x00 two"}
    response = client.post(f"/api/v1/forums/{forum.slug}/signups", json=body)
    assert response.status_code == 201
    assert response.get_json()["name"] == "Ann"
    got = client.get(f"/api/v1/signups/{response.get_json()['id']}", headers=producer)
    assert got.get_json()["question"] == "Line one\nLine two"
    search = client.get(f"/api/v1/forums/{forum.slug}/signups?q=%00", headers=producer)
    assert search.status_code == 200


def test_huge_body_is_413(client, app):
    forum = make_forum()
    response = client.post(
        f"/api/v1/forums/{forum.slug}/signups",
        data=json.dumps({**GOOD, "question": "x" * 200_000}),
        content_type="application/json",
    )
    assert assert_error(response, 413)["code"] == "too_large"


def test_unknown_things_are_404(client, app, producer):
    assert_error(client.get("/api/v1/forums/no-such-forum"), 404)
    assert_error(client.get("/api/v1/signups/123456", headers=producer), 404)
    assert_error(client.get("/api/v1/nothing-here"), 404)
    assert_error(client.post("/api/v1/forums/no-such/queue/next", headers=producer), 404)
    assert_error(client.get("/api/v1/signups/99999999999999999999999", headers=producer), 404)


def test_wrong_method_is_405_json(client, app):
    assert_error(client.delete("/api/v1/forums"), 405)


def test_healthz(client, app):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def _random_value(rng: random.Random, depth: int = 0):  # type: ignore[no-untyped-def]
    kinds = ["str", "int", "float", "bool", "none", "list", "dict", "big", "unicode"]
    kind = rng.choice(kinds if depth < 3 else kinds[:5])
    if kind == "str":
        return "".join(chr(rng.randint(0, 0x7F)) for _ in range(rng.randint(0, 30)))
    if kind == "unicode":
        return "".join(
            chr(rng.choice([0x0, 0xFFFF, 0x1F600, 0x202E, 0xD7FF, 0x10FFFF]))
            for _ in range(rng.randint(1, 5))
        )
    if kind == "int":
        return rng.choice([0, -1, 1, 2**63, -(2**63) - 1, 10**30])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e308])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "big":
        return "y" * rng.randint(1000, 6000)
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = [
        "name",
        "location",
        "phone",
        "question",
        "status",
        "decision",
        "stance",
        "rating",
        "position",
        "signup_id",
        "published",
        "order",
        "starts_at",
        "title",
        "timezone",
        "country",
        "email",
        "reminder_offsets",
        "duration_minutes",
        "pull_quote",
        "notes",
    ]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def test_fuzzed_requests_get_a_contract_status_and_a_json_error(client, app, producer):
    """Send a bounded, seeded stream of random bodies to every API route.

    Every answer is a success or one of the contract's client errors (400 malformed body,
    404, 409, 422 invalid fields), never a server error.
    """
    forum = make_forum()
    signup = make_signup(forum, status="approved")
    routes = [
        ("POST", "/api/v1/forums"),
        ("PATCH", f"/api/v1/forums/{forum.slug}"),
        ("POST", f"/api/v1/forums/{forum.slug}/signups"),
        ("POST", f"/api/v1/signups/{signup.id}/screen"),
        ("POST", f"/api/v1/signups/{signup.id}/publish"),
        ("POST", f"/api/v1/forums/{forum.slug}/queue"),
        ("GET", f"/api/v1/forums/{forum.slug}/signups?page=-1&per_page=abc&q=%FF"),
        ("GET", f"/api/v1/forums/{forum.slug}/queue?limit=-5"),
    ]
    rng = random.Random(20261124)
    for i in range(400):
        method, path = routes[i % len(routes)]
        value = _random_value(rng)
        try:
            data = json.dumps(value).encode()
        except ValueError:
            data = b"{}"
        if rng.random() < 0.1:
            data = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 50)))
        response = client.open(
            path, method=method, data=data, content_type="application/json", headers=producer
        )
        assert response.status_code in CONTRACT_STATUSES, (
            method,
            path,
            data[:200],
            response.get_data()[:300],
        )
        if response.status_code >= 400:
            assert "error" in response.get_json(), (method, path)
