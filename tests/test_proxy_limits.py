"""Behind a proxy each listener has a bucket; IPv6 clients count by /64; logins per account."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

from waitress.server import create_server

from phonein.cli import waitress_options

from .conftest import make_forum, make_user


def _post(url: str, forwarded_for: str) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps({}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)


def _serve(app):  # type: ignore[no-untyped-def]
    """Serve ``app`` with waitress as `phonein serve` does; return the server and a stop."""
    server = create_server(app, host="127.0.0.1", port=0, threads=2, **waitress_options(app))
    stopping = threading.Event()

    def loop() -> None:
        # waitress's own run() cannot be stopped from another thread without a race on
        # its sockets: turn the loop here, and close the server once it has stopped.
        while not stopping.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=loop, name="waitress-test", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        for channel in list(server._map.values()):  # the listener and any open connection
            channel.close()

    return server, stop


def test_waitress_behind_one_proxy_gives_each_listener_a_bucket(make_app):
    """The audit: 25 listeners through one proxy got 20 answers, then 429 for everyone."""
    app = make_app(PROXY_COUNT=1, RATELIMIT_ENABLED=True, SIGNUP_RATE_LIMIT="20/minute")
    with app.app_context():
        forum = make_forum()
    server, stop = _serve(app)
    try:
        url = f"http://127.0.0.1:{server.effective_port}/api/v1/forums/{forum.slug}/signups"
        # The proxy appends the listener's address; a client-sent value before it is ignored.
        statuses = [_post(url, f"203.0.113.7, 198.51.100.{i}") for i in range(25)]
        assert 429 not in statuses, statuses
        # One listener still has one bucket.
        same = [_post(url, "198.51.100.200") for _ in range(21)]
        assert same[:20].count(429) == 0 and same[20] == 429, same
    finally:
        stop()


def test_without_proxies_waitress_is_given_no_proxy_trust(make_app):
    assert waitress_options(make_app(PROXY_COUNT=0)) == {}
    options = waitress_options(make_app(PROXY_COUNT=2))
    assert options["trusted_proxy_count"] == 2
    assert "x-forwarded-for" in options["trusted_proxy_headers"]


def test_ipv6_clients_are_limited_by_their_64(make_app):
    app = make_app(RATELIMIT_ENABLED=True, SIGNUP_RATE_LIMIT="20/minute")
    client = app.test_client()
    with app.app_context():
        forum = make_forum()
    url = f"/api/v1/forums/{forum.slug}/signups"

    def post(address: str) -> int:
        return client.post(url, json={}, environ_base={"REMOTE_ADDR": address}).status_code

    # 25 addresses of one /64: one customer, one bucket.
    statuses = [post(f"2001:db8:1:2::{i + 1:x}") for i in range(25)]
    assert statuses[:20].count(429) == 0 and set(statuses[20:]) == {429}
    # The next /64 is another customer.
    assert post("2001:db8:1:3::1") != 429
    # An IPv4-mapped address counts as its IPv4 address.
    assert post("::ffff:192.0.2.1") != 429


def test_failed_logins_are_limited_per_account_from_any_address(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="100/minute", LOGIN_ACCOUNT_RATE_LIMIT="3/hour"
    )
    client = app.test_client()
    with app.app_context():
        target, _ = make_user("producer")
        other, _ = make_user("producer")

    def attempt(email: str, password: str, address: str) -> int:
        return client.post(
            "/producer/login",
            data={"email": email, "password": password},
            environ_base={"REMOTE_ADDR": address},
        ).status_code

    # A right password counts nothing.
    assert attempt(other.email, "correct horse battery", "192.0.2.50") == 302
    guesses = [attempt(target.email, f"guess {i}", f"192.0.2.{i}") for i in range(4)]
    assert guesses == [401, 401, 401, 429]
    # Another account is not held back by guesses at the first.
    assert attempt(other.email, "correct horse battery", "192.0.2.9") == 302
    assert attempt(other.email, "wrong", "192.0.2.9") == 401
