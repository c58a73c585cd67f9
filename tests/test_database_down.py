"""The database refusing or hanging: 503 with the JSON error shape, a quick /healthz, recovery.

A small TCP proxy in the test process stands between the app and PostgreSQL; the test
makes it refuse connections (nothing listens) or hang (connections accepted, nothing
forwarded), then forward again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import PG_URL, make_forum

pytestmark = pytest.mark.postgres


class Proxy:
    """Forward 127.0.0.1:<port> to ``target``; or refuse, or hang, when told to."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.mode = "forward"
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.closing = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                if self.mode == "refuse" and not self.closing:
                    time.sleep(0.05)  # the listener is closed; wait for it to come back
                    continue
                return
            if self.mode == "hang":
                self._keep(client)  # accepted, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._keep(client, upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _keep(self, *sockets: socket.socket) -> None:
        with self.lock:
            self.sockets.extend(sockets)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.mode == "hang" and not self.closing:
                    time.sleep(0.05)  # hold it: the database does not answer
                if self.mode != "forward":
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        """Drop every connection open through the proxy (a restarted database)."""
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def refuse(self) -> None:
        self.mode = "refuse"
        self.listener.close()
        self.cut()

    def hang(self) -> None:
        self.mode = "hang"

    def forward(self) -> None:
        if self.mode == "refuse":
            self.listener = socket.create_server(("127.0.0.1", self.port))
            self.mode = "forward"
            self.thread = threading.Thread(target=self._accept, daemon=True)
            self.thread.start()
        else:
            self.mode = "forward"
            self.cut()  # what hung is over; clients connect afresh

    def close(self) -> None:
        self.closing = True
        self.mode = "closed"
        with contextlib.suppress(OSError):
            self.listener.close()
        self.cut()


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
