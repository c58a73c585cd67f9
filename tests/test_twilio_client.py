"""The SDK client's HTTP session: environment proxies still apply, read once per host."""

from __future__ import annotations

import pytest

from phonein.twilio import RedirectingHttpClient, SettledSession


def test_the_environment_proxy_applies_per_host_and_is_read_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "verify.twilio.com")
    http = RedirectingHttpClient(None)
    assert isinstance(http.session, SettledSession)
    assert http.session.adapters["https://"].__class__.__name__ == "HTTPAdapter"
    merge = http.session.merge_environment_settings
    api = merge("https://api.twilio.com/2010-04-01/Accounts", {}, None, None, None)
    assert api["proxies"].get("https") == "http://proxy.example:3128"
    # NO_PROXY still counts, host by host.
    verify = merge("https://verify.twilio.com/v2/Services", {}, None, None, None)
    assert "https" not in verify["proxies"]
    # Read once: a later change of the environment does not reach a known host...
    monkeypatch.setenv("HTTPS_PROXY", "http://other.example:3128")
    assert merge("https://api.twilio.com/x", {}, None, None, None)["proxies"]["https"] == (
        "http://proxy.example:3128"
    )
    # ...and what a caller does to its copy does not change the kept answer.
    api["proxies"]["https"] = "changed"
    assert merge("https://api.twilio.com/y", {}, None, None, None)["proxies"]["https"] == (
        "http://proxy.example:3128"
    )


@pytest.mark.parametrize("verify", [None, False, "/etc/ssl/certs/ca.pem"])
def test_the_request_settings_are_part_of_the_answer(monkeypatch, verify):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    session = SettledSession()
    found = session.merge_environment_settings("https://api.twilio.com/", {}, None, verify, None)
    assert found["verify"] == (verify if verify is not None else "/env/bundle.pem")
