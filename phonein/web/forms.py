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

from .. import consents, phones
from ..models import Stance


class SignupForm(FlaskForm):
    name = StringField("Your name")
    location = StringField("Where you are", description="Town and country, e.g. Accra, Ghana")
    phone = StringField("Phone number", description="We call or text you on this number.")
    country = SelectField("Country of that number", validate_choice=False)
    email = EmailField("Email (optional)")
    question = TextAreaField("Your question or comment")
    # The ledger stores these wordings by version: change them in phonein.consents only.
    sms_consent = BooleanField(consents.text(consents.SIGNUP_FORM[consents.SMS]))
    publish_consent = BooleanField(consents.text(consents.SIGNUP_FORM[consents.PUBLISH]))
    timezone = HiddenField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.country.choices = [SelectChoice("", "Choose…")] + [
            SelectChoice(code, f"{name} (+{phones.calling_code(code)})")
            for code, name in phones.country_names().items()
        ]


class ListenerEditForm(FlaskForm):
    name = StringField("Your name")
    location = StringField("Where you are")
    email = EmailField("Email (optional)")
    question = TextAreaField("Your question or comment")
    sms_consent = BooleanField(consents.text(consents.MANAGE_PAGE[consents.SMS]))
    publish_consent = BooleanField(consents.text(consents.MANAGE_PAGE[consents.PUBLISH]))


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
