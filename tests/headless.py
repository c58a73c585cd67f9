"""The live server and headless Chromium the browser tests share (loaded by conftest).

The fixtures serve the app as a real HTTP server with CSRF on and drive Chromium through
Selenium. Locally a missing Chromium or chromedriver skips the test; in CI (where ``CI``
is set and Chromium is installed) it is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import BaseWSGIServer, make_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BROWSER_ZONE = "America/New_York"  # not the machine's zone, so the test shows it is the browser's
# Seconds; each wait ends as soon as its condition holds, so a generous ceiling costs
# nothing when the machine is idle and keeps a loaded CI machine from failing the test.
WAIT = 30


def _require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    message = f"headless Chromium needs {' and '.join(missing)}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must install Chromium and chromedriver")
    pytest.skip(message)


@contextlib.contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 in a thread; yield its base URL."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=WAIT)


@pytest.fixture
def live_app(make_app: Any) -> Iterator[tuple[Flask, str]]:
    """Serve a CSRF-protected app on a free port of 127.0.0.1; yield it and its base URL."""
    app = make_app(WTF_CSRF_ENABLED=True)
    with serving(app) as base:
        yield app, base


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        "--lang=en-US",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    # The explicit driver path keeps Selenium Manager from downloading anything; TZ sets
    # the zone that Intl (and so forum.js) reports.
    service = Service(executable_path=CHROMEDRIVER, env={**os.environ, "TZ": BROWSER_ZONE})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        # Belt and braces: TZ reaches Chromium through chromedriver on Linux, and the
        # DevTools override makes the zone certain wherever it does not.
        driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": BROWSER_ZONE})
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


class ExplainingWait(WebDriverWait):
    """A WebDriverWait whose timeout says where the browser was and what it showed."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        # A condition may read an element of a page that a redirect or a board's redraw is
        # replacing: that is "not yet", not a failure.
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )

        super().__init__(
            driver,
            WAIT,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )
        self.browser = driver

    def until(self, method, message: str = ""):  # type: ignore[no-untyped-def, override]
        from selenium.common.exceptions import TimeoutException

        try:
            return super().until(method, message)
        except TimeoutException:
            text = self.browser.execute_script("return document.body.innerText") or ""
            raise AssertionError(
                f"timed out at {self.browser.current_url}; the page said: {text[:800]!r}"
            ) from None
