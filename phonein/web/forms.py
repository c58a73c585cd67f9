"""WTForms for the pages. Field rules live in the operations; forms carry CSRF and shape."""

from __future__ import annotations

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
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Optional

from .. import i18n, phones
from ..i18n import lazy_gettext
from ..models import Stance


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
    sms_consent = BooleanField(
        lazy_gettext("Text me a confirmation, reminders and when it is my turn")
    )
    publish_consent = BooleanField(
        lazy_gettext("You may publish my comment with my name and location after the programme")
    )
    timezone = HiddenField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Named and sorted for the reader (accents and case aside: Åland sorts under A).
        language = i18n.page_language()
        self.country.choices = [SelectChoice("", i18n._("Choose…"))] + [
            SelectChoice(code, f"{name} (+{phones.calling_code(code)})")
            for code, name in i18n.sorted_countries(phones.country_names(), language)
        ]


class ListenerEditForm(FlaskForm):
    name = StringField(lazy_gettext("Your name"))
    location = StringField(lazy_gettext("Where you are"))
    email = EmailField(lazy_gettext("Email (optional)"))
    question = TextAreaField(lazy_gettext("Your question or comment"))
    sms_consent = BooleanField(lazy_gettext("Text me reminders and when it is my turn"))
    publish_consent = BooleanField(
        lazy_gettext("You may publish my comment with my name and location")
    )


class ConfirmForm(FlaskForm):
    """An empty form: a CSRF-protected button."""


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired()])
    password = PasswordField("Password", validators=[InputRequired()])


class ForumForm(FlaskForm):
    title = StringField("Title", validators=[InputRequired()])
    slug = StringField("Address (slug)", description="Left empty, made from the title.")
    question = TextAreaField("Lead question put to listeners")
    correspondent = StringField("Guest correspondent")
    description = TextAreaField("Description")
    timezone = StringField("Time zone (IANA)", default="Europe/London")
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
    reminder_offsets = StringField(
        "Reminders (minutes before the start, comma-separated)", default="1440, 60, 10"
    )
    languages = StringField(
        "Languages (the forum's own first, comma-separated)",
        description="Pages, texts and voice prompts are offered in these. phonein speaks: "
        + ", ".join(i18n.shipped_languages())
        + ". Empty: the station's language.",
    )


class ScreenForm(FlaskForm):
    decision = SelectField(
        "Decision",
        choices=[
            SelectChoice("", "—"),
            SelectChoice("approve", "Approve"),
            SelectChoice("reject", "Reject"),
        ],
        validate_choice=False,
    )
    stance = SelectField(
        "Stance",
        choices=[SelectChoice("", "—")] + [SelectChoice(s.value) for s in Stance],
        validate_choice=False,
    )
    rating = SelectField(
        "Rating",
        choices=[SelectChoice("", "—")] + [SelectChoice(str(i)) for i in range(1, 6)],
        validate_choice=False,
    )
    notes = TextAreaField("Notes")


class PublishForm(FlaskForm):
    published = BooleanField("Publish")
    pull_quote = StringField("Pull quote")
    order = IntegerField("Order", validators=[Optional()])
