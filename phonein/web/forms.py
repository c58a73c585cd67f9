"""WTForms for the pages. Field rules live in the operations; forms carry CSRF and shape."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from .. import consents, i18n, phones
from ..i18n import lazy_gettext


# Listener forms: labels are marked for translation and rendered in the page's language.
class SignupForm(FlaskForm):
    name = StringField(lazy_gettext("Your name"))
    location = StringField(
        lazy_gettext("Where you are"),
        description=lazy_gettext("Town and country, e.g. Accra, Ghana"),
    )
    phone = StringField(
        lazy_gettext("Phone number"),
        description=lazy_gettext("We call or text you on this number."),
    )
    country = SelectField(lazy_gettext("Country of that number"), validate_choice=False)
    email = EmailField(lazy_gettext("Email (optional)"))
    question = TextAreaField(lazy_gettext("Your question or comment"))
    # The ledger stores these wordings by version: change them in phonein.consents only.
    sms_consent = BooleanField(lazy_gettext(consents.text(consents.SIGNUP_FORM[consents.SMS])))
    publish_consent = BooleanField(
        lazy_gettext(consents.text(consents.SIGNUP_FORM[consents.PUBLISH]))
    )
    timezone = HiddenField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Named and sorted for the reader (accents and case aside: Åland sorts under A).
        self.country.choices = [SelectChoice("", i18n._("Choose…"))] + [
            SelectChoice(code, label) for code, label in _country_choices(i18n.page_language())
        ]


@cache
def _country_choices(language: str) -> tuple[tuple[str, str], ...]:
    """The country list of the signup form in ``language``: made once per language and
    process (naming and sorting some 240 countries cost a dozen milliseconds a page)."""
    return tuple(
        (code, f"{name} (+{phones.calling_code(code)})")
        for code, name in i18n.sorted_countries(phones.country_names(), language)
    )


class ListenerEditForm(FlaskForm):
    name = StringField(lazy_gettext("Your name"))
    location = StringField(lazy_gettext("Where you are"))
    email = EmailField(lazy_gettext("Email (optional)"))
    question = TextAreaField(lazy_gettext("Your question or comment"))
    sms_consent = BooleanField(lazy_gettext(consents.text(consents.MANAGE_PAGE[consents.SMS])))
    publish_consent = BooleanField(
        lazy_gettext(consents.text(consents.MANAGE_PAGE[consents.PUBLISH]))
    )


class ConfirmForm(FlaskForm):
    """An empty form: a CSRF-protected button."""


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired()])
    password = PasswordField("Password", validators=[InputRequired()])


class CheckboxesField(SelectMultipleField):
    """Several choices, each a checkbox."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


# The reminders a producer picks from; a forum's other offsets (set through the API) are
# added to its own form, so that saving it keeps them.
REMINDER_CHOICES = [(86400, "1 day before"), (3600, "1 hour before"), (600, "10 minutes before")]


def before(seconds: int) -> str:
    """Say an offset before the start the way producers do: '1 day before', '90 minutes before'."""
    if seconds == 0:
        return "at the start"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} before"
    return f"{seconds} seconds before"


class ForumForm(FlaskForm):
    title = StringField("Title", validators=[InputRequired()])
    slug = StringField(
        "Web address",
        description="The end of the forum's public link. Leave it empty to make it from the title.",
    )
    question = TextAreaField("Lead question put to listeners")
    correspondent = StringField("Guest correspondent")
    description = TextAreaField("Description")
    timezone = StringField(
        "Time zone",
        default="Europe/London",
        description="Type a city or region to search the list, like London or New York.",
    )
    # The one format <input type="datetime-local"> shows and sends; WTForms' default
    # renders a space and seconds, which browsers leave blank.
    starts_at = DateTimeLocalField(
        "Starts at (in that time zone)", format="%Y-%m-%dT%H:%M", validators=[InputRequired()]
    )
    duration_minutes = IntegerField("Duration (minutes)", default=60)
    signup_closes_at = DateTimeLocalField(
        "Signups close (optional; default the end)",
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
    )
    reminder_offsets = CheckboxesField(
        "Text reminders to listeners", coerce=int, validate_choice=False
    )
    languages = StringField(
        "Languages (the forum's own first, comma-separated)",
        description="Pages, texts and voice prompts are offered in these. phonein speaks: "
        + ", ".join(i18n.shipped_languages())
        + ". Empty: the station's language.",
    )

    def offer_reminders(self, offsets: list[int]) -> None:
        """Offer the usual reminders and any others in ``offsets``, longest first."""
        offered = dict(REMINDER_CHOICES)
        for offset in offsets:
            offered.setdefault(offset, before(offset))
        self.reminder_offsets.choices = sorted(offered.items(), reverse=True)
