"""Right to left and isolation as Chromium lays them out, with screenshots kept.

The screenshots land in ``tests/artefacts/`` (ignored by git; CI can upload the folder):
``i18n-fr-arabic-name.png`` (a French page quoting an Arabic listener) and
``i18n-ar-page.png`` (the same forum in Arabic, quoting a Latin name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from phonein.extensions import db
from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .headless import ExplainingWait

pytestmark = pytest.mark.browser
ARTEFACTS = Path(__file__).resolve().parent / "artefacts"
ARABIC_NAME = "ليلى حداد"
ARABIC_PLACE = "القاهرة، مصر"


def _published_forum(app: Any) -> str:
    with app.app_context():
        forum = make_forum(
            title="Les villes sans voitures",
            languages=["fr", "ar", "en"],
            timezone="Europe/Paris",
        )
        for name, place, quote in (
            (ARABIC_NAME, ARABIC_PLACE, "المدن للناس لا للسيارات"),
            ("Dana Whitfield", "Newark, NJ, USA", "Buses first, then bikes (2 lanes)."),
        ):
            signup = make_signup(forum, name=name, location=place, question=quote)
            signup.published, signup.status, signup.pull_quote = True, "done", quote
        # The debate is over and its comments published (times moved past, as producers do).
        forum.starts_at = utcnow().replace(microsecond=0) - forum.duration * 3
        forum.ends_at = forum.signup_closes_at = forum.starts_at + forum.duration
        forum.status = "published"
        db.session.commit()
        return forum.slug


def _direction_of(driver: Any, element: Any) -> str:
    return (
        "rtl"
        if driver.execute_script("return arguments[0].matches(':dir(rtl)')", element)
        else "ltr"
    )


def test_an_arabic_name_is_isolated_in_a_french_page_and_arabic_pages_run_right_to_left(
    live_app: tuple[Any, str], browser: Any
) -> None:
    app, base = live_app
    slug = _published_forum(app)
    ARTEFACTS.mkdir(exist_ok=True)

    browser.get(f"{base}/forums/{slug}?lang=fr")
    wait = ExplainingWait(browser)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "blockquote.comment footer"))
    assert browser.execute_script("return document.documentElement.lang") == "fr"
    assert browser.execute_script("return getComputedStyle(document.body).direction") == "ltr"
    (name,) = [
        el
        for el in browser.find_elements(By.CSS_SELECTOR, "blockquote.comment footer bdi")
        if el.text == ARABIC_NAME
    ]
    # Its own element, laid out right to left inside a left-to-right sentence.
    assert name.tag_name == "bdi"
    assert _direction_of(browser, name) == "rtl"
    footer = name.find_element(By.XPATH, "..")
    assert _direction_of(browser, footer) == "ltr"
    quote = browser.find_element(By.CSS_SELECTOR, "blockquote.comment .pull")
    assert quote.get_attribute("dir") == "auto" and _direction_of(browser, quote) == "rtl"
    # The visitor's own time (the browser is in New York): in French, the zone by region.
    local = browser.find_element(By.CSS_SELECTOR, ".local-time")
    assert local.is_displayed() and local.text.startswith("Chez vous")
    assert "America/" not in local.text and "UTC" not in local.text and "GMT" not in local.text
    browser.save_screenshot(str(ARTEFACTS / "i18n-fr-arabic-name.png"))

    browser.get(f"{base}/forums/{slug}?lang=ar")
    wait.until(lambda d: d.execute_script("return document.documentElement.lang") == "ar")
    assert browser.execute_script("return document.documentElement.dir") == "rtl"
    assert browser.execute_script("return getComputedStyle(document.body).direction") == "rtl"
    (latin,) = [
        el
        for el in browser.find_elements(By.CSS_SELECTOR, "blockquote.comment footer bdi")
        if el.text == "Dana Whitfield"
    ]
    assert _direction_of(browser, latin) == "ltr"
    assert _direction_of(browser, latin.find_element(By.XPATH, "..")) == "rtl"
    # The switch still offers French, written in French, left to right.
    switch = browser.find_element(By.CSS_SELECTOR, 'nav.languages a[hreflang="fr"]')
    assert switch.text == "Français" and switch.get_attribute("dir") == "ltr"
    browser.save_screenshot(str(ARTEFACTS / "i18n-ar-page.png"))
    assert (ARTEFACTS / "i18n-ar-page.png").stat().st_size > 1000


def test_the_country_list_is_named_and_sorted_for_the_reader(
    live_app: tuple[Any, str], browser: Any
) -> None:
    app, base = live_app
    with app.app_context():
        slug = make_forum(languages=["en", "fr"]).slug
    browser.get(f"{base}/forums/{slug}?lang=en")
    wait = ExplainingWait(browser)
    wait.until(lambda d: d.find_element(By.ID, "timezone").get_attribute("value"))
    names = browser.execute_script(
        "return Array.from(document.getElementById('country').options, o => o.text)"
    )
    assert names.index("Åland Islands (+358)") < names.index("Albania (+355)")
    assert names.index("United Kingdom (+44)") > names.index(
        "British Indian Ocean Territory (+246)"
    )
    browser.get(f"{base}/forums/{slug}?lang=fr")
    wait.until(lambda d: d.execute_script("return document.documentElement.lang") == "fr")
    names = browser.execute_script(
        "return Array.from(document.getElementById('country').options, o => o.text)"
    )
    assert names[0] == "Choisir…"
    assert (
        names.index("Égypte (+20)") < names.index("Espagne (+34)") < names.index("États-Unis (+1)")
    )
