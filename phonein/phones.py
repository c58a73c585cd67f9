"""Phone numbers in, E.164 out; which numbers phonein may text or call; countries and zones
for the signup form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import phonenumbers
from phonenumbers import CountryCodeSource, PhoneNumberType
from phonenumbers import timezone as number_zones

from .errors import Invalid
from .i18n import _, country_name, lazy_gettext, page_language


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


# The international prefix the ITU recommends and most of the world dials ("00 44 …"),
# tried last for a number that reads as nothing else.
ITU_PREFIX = "00"
# Translated when it is said, like the refusals below.
VANITY = lazy_gettext(
    "Please type the number in digits. A number spelt with letters (like 1-800-FLOWERS) "
    "cannot receive our texts or calls."
)


def _dialled_abroad(digits: str, regions: list[str]) -> phonenumbers.PhoneNumber | None:
    """Read ``digits`` as dialled with an international prefix ("009 44 …" from Nigeria).

    The prefix is the one of any of ``regions`` (where the listener is, the number's
    country, the station's), as phonenumbers knows it, or the ITU's "00".
    """
    for region in regions:
        try:
            number = phonenumbers.parse(digits, region, keep_raw_input=True)
        except phonenumbers.NumberParseException:
            continue
        # Only a number that came with that region's prefix: "06 12 34 56 78" typed with
        # the wrong country chosen is not read as a number of the listener's own.
        dialled = number.country_code_source == CountryCodeSource.FROM_NUMBER_WITH_IDD
        if dialled and phonenumbers.is_valid_number(number):
            return number
    if digits.startswith(ITU_PREFIX):
        try:
            number = phonenumbers.parse("+" + digits.removeprefix(ITU_PREFIX), None)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(number):
            return number
    return None


def normalize(raw: str, *, country: str | None, timezone: str | None, default_region: str) -> str:
    """Return ``raw`` as E.164, or raise Invalid naming the ``phone`` field.

    A number written without ``+`` is read as a number of ``country``, else of the country
    of ``timezone``, else of ``default_region``. One that starts with an international
    prefix ("00 44 …", "009 44 …" from Nigeria, "011 44 …" from the US) is read as dialled
    from the listener's country (their zone's), the number's, or the station's. Letters
    (vanity numbers like 1-800-FLOWERS) are refused: nobody can text a word.
    """
    text = (raw or "").strip()
    if not text:
        raise Invalid({"phone": _("Please give a phone number.")})
    if len(text) > 40:
        raise Invalid({"phone": _("That is too long to be a phone number.")})
    if any(char.isalpha() for char in text):
        raise Invalid({"phone": str(VANITY)})
    region = (country or country_for_timezone(timezone) or default_region).upper()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise Invalid(
            {
                "phone": _(
                    "That does not look like a phone number. Include the country code, "
                    "like +44 20 7946 0000."
                )
            }
        ) from None
    digits = "".join(char for char in text if char.isdigit())
    if not phonenumbers.is_valid_number(number) and not text.startswith("+"):
        regions = [country_for_timezone(timezone), country, default_region]
        abroad = _dialled_abroad(digits, [r.upper() for r in dict.fromkeys(regions) if r])
        number = abroad or number
    if not phonenumbers.is_valid_number(number):
        where = phonenumbers.region_code_for_number(number) or region
        raise Invalid(
            {
                "phone": _(
                    "%(number)s is not a valid phone number for %(country)s. Check the digits, "
                    "or include the country code (+…).",
                    # What the listener typed, isolated left to right (LRI … PDI): in an
                    # Arabic sentence "+44 7700" would otherwise show as "7700 44+". The
                    # message is text, not markup, so <bdi> cannot do it here.
                    number=f"\u2066{text}\u2069",
                    country=country_name(where, page_language()),
                )
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


def masked(e164: str | None) -> str:
    """Format a number with all but its country code and last three digits hidden:
    '+44 •••• ••0123' style, for a page reached by a link that can end up in logs."""
    shown = display(e164)
    if not e164 or not shown:
        return ""
    prefix = f"+{phonenumbers.parse(e164).country_code}"
    rest = shown.removeprefix(prefix)
    keep = len([c for c in rest if c.isdigit()]) - 3
    out = []
    for char in rest:
        if char.isdigit():
            out.append("\u2022" if keep > 0 else char)
            keep -= 1
        else:
            out.append(char)
    return prefix + "".join(out)


class Reach(StrEnum):
    """What phonein may do with a number."""

    TEXT_AND_CALL = "text_and_call"  # mobile (or a plan that cannot tell mobile from fixed)
    CALL_ONLY = "call_only"  # a fixed line: called back, never texted
    NONE = "none"  # refused: costs the station money or reaches no listener


# Numbers whose cost falls on the caller's network, or that reach no one person: premium
# rate, shared cost, toll free, UAN, pager, personal, VoIP, voicemail access. These are what
# SMS pumping and toll fraud use; no listener needs them for a phone-in.
# Each refusal is one whole sentence, translated when it is said (``reach``).
REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: lazy_gettext(
        "That is a premium-rate number. Please give a mobile or home phone number."
    ),
    PhoneNumberType.SHARED_COST: lazy_gettext(
        "That is a shared-cost number. Please give a mobile or home phone number."
    ),
    PhoneNumberType.TOLL_FREE: lazy_gettext(
        "That is a toll-free number. Please give a mobile or home phone number."
    ),
    PhoneNumberType.UAN: lazy_gettext(
        "That is a company switchboard (UAN) number. Please give a mobile or home phone number."
    ),
    PhoneNumberType.PAGER: lazy_gettext(
        "That is a pager number. Please give a mobile or home phone number."
    ),
    PhoneNumberType.PERSONAL_NUMBER: lazy_gettext(
        "That is a personal forwarding number. Please give a mobile or home phone number."
    ),
    PhoneNumberType.VOIP: lazy_gettext(
        "That is an internet (VoIP) number. Please give a mobile or home phone number."
    ),
    PhoneNumberType.VOICEMAIL: lazy_gettext(
        "That is a voicemail access number. Please give a mobile or home phone number."
    ),
}


@dataclass(frozen=True)
class Policy:
    """Where phonein texts and calls (PHONEIN_SMS_COUNTRIES, PHONEIN_SMS_DENY_PREFIXES)."""

    # ISO 3166 codes whose numbers may be texted or called; None: every country.
    countries: frozenset[str] | None
    # E.164 prefixes ("+882") never texted or called, whatever their type.
    deny_prefixes: tuple[str, ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        """Read the policy from settings (lists, as ``settings`` leaves them)."""
        countries = config.get("SMS_COUNTRIES")
        return cls(frozenset(countries) if countries else None, tuple(config["SMS_DENY_PREFIXES"]))


def reach(e164: str, policy: Policy) -> tuple[Reach, str | None]:
    """Say what phonein may do with ``e164`` under ``policy``, and why not when it may not."""
    number = phonenumbers.parse(e164)
    if any(e164.startswith(prefix) for prefix in policy.deny_prefixes):
        return Reach.NONE, _("We cannot text or call numbers of that range.")
    region = phonenumbers.region_code_for_number(number)
    if policy.countries is not None and region not in policy.countries:
        if not region or region == "001":
            return Reach.NONE, _("We cannot text or call numbers of that range.")
        return Reach.NONE, _(
            "We cannot text or call numbers from %(country)s for this programme.",
            country=country_name(region, page_language()),
        )
    kind = phonenumbers.number_type(number)
    if kind in REFUSED_TYPES:
        return Reach.NONE, str(REFUSED_TYPES[kind])
    if kind == PhoneNumberType.FIXED_LINE:
        return Reach.CALL_ONLY, _("That is a landline, which cannot receive texts.")
    return Reach.TEXT_AND_CALL, None


# National digits that name a number's range: enough to tell a run of sequential numbers
# (a script working through a block) from listeners of one country.
RANGE_DIGITS = 4


def number_range(e164: str) -> str:
    """Return the range of a number: its country code and first national digits."""
    number = phonenumbers.parse(e164)
    national = phonenumbers.national_significant_number(number)
    return f"+{number.country_code}{national[:RANGE_DIGITS]}"
