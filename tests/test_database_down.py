"""The database refusing or hanging: 503 with the JSON error shape, a quick /healthz, recovery.

A small TCP proxy in the test process stands between the app and PostgreSQL; the test
makes it refuse connections (nothing listens) or hang (connections accepted, nothing
forwarded), then forward again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import PG_URL, make_forum
from .processes import Proxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    parts = urlsplit(PG_URL)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield proxy
    proxy.close()


@pytest.fixture
def proxied(make_app: Any, proxy: Proxy) -> Any:
    make_app()  # the fixture's clean-up runs through this app, not the proxy
    parts = urlsplit(PG_URL)
    url = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    app = make_app(
        SQLALCHEMY_DATABASE_URI=url, DATABASE_STATEMENT_TIMEOUT=1, DATABASE_CONNECT_TIMEOUT=2
    )
    with app.app_context():
        forum = make_forum()
    app.forum_slug = forum.slug  # type: ignore[attr-defined]
    return app


def requests_answer(app: Any, expected: int) -> None:
    """A page, the API and a signup each answer ``expected`` (503: in their own shape)."""
    client = app.test_client()
    slug = app.forum_slug
    api = client.get("/api/v1/forums")
    assert api.status_code == expected, api.get_data(as_text=True)
    page = client.get(f"/forums/{slug}", headers={"Accept": "text/html"})
    assert page.status_code == expected, page.get_data(as_text=True)
    signup = client.post(
        f"/api/v1/forums/{slug}/signups",
        json={"name": "A", "location": "Leeds", "phone": "+447400123456", "question": "Q?"},
    )
    if expected == 503:
        assert signup.status_code == 503
        assert api.get_json()["error"]["code"] == "unavailable"
        assert signup.get_json()["error"]["code"] == "unavailable"
        assert page.mimetype == "text/html" and b"unavailable" in page.data
        assert api.headers["Retry-After"]
    else:
        # 201 the first time the database answers again; 202 for the number already signed up.
        assert signup.status_code in (201, 202), signup.get_data(as_text=True)


def healthz(app: Any) -> tuple[int, dict[str, Any]]:
    """Ask /healthz from another thread, as a load balancer would; it must answer."""
    answer: list[Any] = []
    asking = threading.Thread(
        target=lambda: answer.append(app.test_client().get("/healthz")), daemon=True
    )
    asking.start()
    asking.join(10)
    assert answer, "/healthz did not answer while the database was down"
    return answer[0].status_code, answer[0].get_json()


@pytest.mark.parametrize("fault", ["refuse", "hang"])
def test_an_unavailable_database_answers_503_and_recovers_by_itself(proxied, proxy, fault):
    requests_answer(proxied, 200)
    assert healthz(proxied) == (200, {"status": "ok"})
    getattr(proxy, fault)()
    requests_answer(proxied, 503)
    status, body = healthz(proxied)
    assert status == 503 and body["error"]["code"] == "unavailable"
    proxy.forward()
    deadline = time.monotonic() + 20
    while healthz(proxied)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert healthz(proxied) == (200, {"status": "ok"})
    requests_answer(proxied, 200)
