"""axe-core in headless Chromium: no violation of any impact on the public forum page, the
manage page, the producers' pages and the presenter's board.

axe-core is an npm package; `.ci/run` installs it into a cache folder and this test injects
it into each page (``AXE_JS`` or the cache's copy). Locally a missing axe-core skips the
test, like a missing Chromium; in CI it is a failure.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from phonein.times import utcnow

from .conftest import make_forum, make_signup, make_user, manage_token
from .headless import ExplainingWait

pytestmark = pytest.mark.browser

AXE_JS = Path(
    os.environ.get(
        "AXE_JS",
        Path.home() / ".cache" / "phonein" / "axe" / "node_modules" / "axe-core" / "axe.min.js",
    )
)
# Every rule axe-core runs by default (WCAG 2.0-2.2 A and AA, best practices), at any impact.
RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]})
  .then(r => done(JSON.stringify(r.violations.map(v => ({
     id: v.id, impact: v.impact, help: v.help,
     nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)})))))
  .catch(e => done(JSON.stringify(
     [{id: "axe-error", impact: "critical", help: String(e), nodes: []}])));
"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE_JS.is_file():
        message = f"axe-core not found at {AXE_JS} (npm install --prefix … axe-core, see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return AXE_JS.read_text("utf-8")


def violations(browser, axe_source: str) -> list[dict]:  # type: ignore[no-untyped-def]
    browser.execute_script(axe_source)
    browser.set_script_timeout(60)
    return json.loads(browser.execute_async_script(RUN))


def test_axe_finds_no_violation_on_any_page(live_app, browser, axe_source):
    app, base = live_app
    with app.app_context():
        now = utcnow()
        live = make_forum(title="Fishing rights", starts_at=now - timedelta(minutes=5), now=now)
        make_signup(live, name="Mariana Costa", location="Porto", status="queued")
        make_signup(live, name="Kenji Sato", location="Osaka", status="approved")
        make_signup(live, name="سارا", location="Cairo")
        upcoming = make_forum(title="Car-free city centres", now=now)
        listener = make_signup(upcoming, name="Dele Adeyemi", location="Lagos")
        token = manage_token(upcoming, listener)
        user, _ = make_user("producer")
        live_slug, slug, email = live.slug, upcoming.slug, user.email

    wait = ExplainingWait(browser)
    found: dict[str, list[dict]] = {}

    def check(path: str, ready: str = "main") -> None:
        browser.get(base + path)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ready))
        found[path] = violations(browser, axe_source)

    # Listeners' pages (their templates: the i18n-pages work).
    check("/")
    check(f"/forums/{slug}")
    check(f"/forums/{slug}?lang=en", "form")
    check(f"/manage/{token}", "#manage-link")
    check("/producer/login", "form")

    browser.get(f"{base}/producer/login")
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys("correct horse battery")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/producer/login" not in d.current_url)

    # Producers' pages.
    check("/producer/")
    check("/producer/forums/new", "form")
    check(f"/producer/forums/{slug}/edit", "#public-link")
    check(f"/producer/forums/{live_slug}/signups")
    check(f"/producer/forums/{live_slug}/queue")
    check(f"/producer/forums/{live_slug}/messages")
    check(f"/producer/forums/{live_slug}/publication")
    # The presenter's board.
    check(f"/board/{live_slug}")
    # A form sent back with errors: the summary, the marked fields.
    browser.get(f"{base}/producer/forums/new")
    browser.find_element(By.ID, "title").send_keys("Oops")
    zone = browser.find_element(By.ID, "timezone")
    zone.clear()
    zone.send_keys("Nowhere/Land")
    browser.find_element(By.ID, "starts_at").send_keys("01012030\t1000AM")
    browser.find_element(By.CSS_SELECTOR, "form.narrow button[type=submit]").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[aria-invalid=true]"))
    found["/producer/forums/new (errors)"] = violations(browser, axe_source)

    bad = {path: v for path, v in found.items() if v}
    assert not bad, json.dumps(bad, indent=1, ensure_ascii=False)

    # The check can fail: the same run finds a field without a label once there is one.
    browser.execute_script(
        "const i = document.createElement('input'); i.type = 'text';"
        "document.querySelector('main').appendChild(i);"
    )
    assert "label" in {v["id"] for v in violations(browser, axe_source)}
