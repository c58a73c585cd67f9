"""Phone numbers in, E.164 out; countries and zones for the signup form."""

from __future__ import annotations

from functools import cache
from importlib import resources

import phonenumbers
from phonenumbers import timezone as number_zones

from .errors import Invalid


def _read_tab(name: str) -> list[list[str]]:
    text = resources.files("tzdata").joinpath("zoneinfo", name).read_text("utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@cache
def country_names() -> dict[str, str]:
    """Return ISO 3166 alpha-2 code -> English name, for the countries phonenumbers knows."""
    names = {row[0]: row[1] for row in _read_tab("iso3166.tab")}
    regions = phonenumbers.SUPPORTED_REGIONS
    return dict(sorted(((c, n) for c, n in names.items() if c in regions), key=lambda i: i[1]))


@cache
def _zone_countries() -> dict[str, str]:
    # zone.tab maps each zone to the one country it belongs to (zone1970.tab may list
    # several, which cannot pick a dialling region).
    return {row[2]: row[0] for row in _read_tab("zone.tab")}


def zone_countries() -> dict[str, str]:
    """Return IANA zone -> country code, for the browser to preselect the country."""
    return _zone_countries()


def country_for_timezone(zone: str | None) -> str | None:
    """Return the country of an IANA zone ('America/New_York' -> 'US'), if there is one."""
    if not zone:
        return None
    return _zone_countries().get(zone)


def calling_code(country: str) -> int:
    return phonenumbers.country_code_for_region(country)


def normalize(raw: str, *, country: str | None, timezone: str | None, default_region: str) -> str:
    """Return ``raw`` as E.164, or raise Invalid naming the ``phone`` field.

    A number written without ``+`` is read as a number of ``country``, else of the country
    of ``timezone``, else of ``default_region``.
    """
    text = (raw or "").strip()
    if not text:
        raise Invalid({"phone": "Please give a phone number."})
    if len(text) > 40:
        raise Invalid({"phone": "That is too long to be a phone number."})
    region = (country or country_for_timezone(timezone) or default_region).upper()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise Invalid(
            {
                "phone": "That does not look like a phone number. Include the country code, "
                "like +44 20 7946 0000."
            }
        ) from None
    if not phonenumbers.is_valid_number(number):
        where = phonenumbers.region_code_for_number(number) or region
        country_name = country_names().get(where, where)
        raise Invalid(
            {
                "phone": f"{text} is not a valid phone number for {country_name}."
                " Check the digits, or include the country code (+…)."
            }
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def caller_id(raw: str, default_region: str) -> str | None:
    """Return a caller ID (an SMS sender, a caller's number) as E.164, or None when it is
    withheld, a short code or otherwise not a phone number."""
    try:
        return normalize(raw, country=None, timezone=None, default_region=default_region)
    except Invalid:
        return None


def guess_timezone(e164: str) -> str | None:
    """Return the zone of a number when the numbering plan says it has exactly one."""
    zones = [
        z
        for z in number_zones.time_zones_for_number(phonenumbers.parse(e164))
        if z != "Etc/Unknown"
    ]
    return zones[0] if len(zones) == 1 else None


def display(e164: str | None) -> str:
    """Format an E.164 number for people: '+44 20 7946 0000'."""
    if not e164:
        return ""
    number = phonenumbers.parse(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
