"""Marshmallow schemas: the shapes of the API, and its OpenAPI document."""

from __future__ import annotations

from typing import Any, cast

from marshmallow import Schema, fields, missing, validate
from marshmallow.utils import ensure_text_type

from .. import consents
from ..models import (
    EMAIL_MAX,
    LOCATION_MAX,
    MAX_ID,
    NAME_MAX,
    NOTES_MAX,
    PRONUNCIATION_MAX,
    PULL_QUOTE_MAX,
    QUESTION_MAX,
    TITLE_MAX,
    CallDirection,
    CallState,
    ForumStatus,
    MessageKind,
    MessageStatus,
    SignupStatus,
    Stance,
)
from ..times import rfc3339
from ..views import BoardCaller, SignupView, View

# How ``ViewSchema`` dumps a field of one of these exact types by itself: what the
# field's own ``_serialize`` does to the value (None stays None, except for UTC, whose
# own answer to None is None too); a Method field is its schema's method of the object.
_STR, _INT, _AS_IS, _UTC, _METHOD = range(5)


def _fast_kind(field: fields.Field[Any]) -> int | None:
    """The kind of a field ``ViewSchema`` dumps itself, or None: marshmallow dumps it."""
    if (field.attribute or "").count(".") or field.dump_default is not missing:
        return None
    kind = type(field)
    if kind is fields.Method and cast(fields.Method, field).serialize_method_name:
        return _METHOD
    if kind is fields.String:
        return _STR
    if kind is fields.Integer and not cast(fields.Integer, field).as_string:
        return _INT
    if kind is fields.Boolean:
        return _AS_IS  # marshmallow's Boolean dumps the value as it is
    if kind is UTC:
        return _UTC
    return None


class ViewSchema(Schema):
    """Dump a view object (``phonein.views``): its own fields first, then its row's."""

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        # Asked once per field per item (a page of 50 signups is over a thousand): the
        # view's own fields are known by name, and a plain name is a plain getattr.
        if isinstance(obj, View) and attr not in obj.own_fields():
            obj = obj.row
        if "." in attr or isinstance(obj, dict):
            return super().get_attribute(obj, attr, default)
        return getattr(obj, attr, default)

    def _serialize(self, obj: Any, *, many: bool = False) -> Any:
        # marshmallow's own loop costs about 15 µs a field through Field.serialize,
        # get_value and get_attribute: 0.4 ms a signup, 20 ms for the board's 50 waiting
        # (issue 10). Plain columns (str, int, bool, time) are read and converted here,
        # as their fields would, and Method fields call their method; every other field
        # (dotted, Nested) is still marshmallow's. The plan is made once per schema
        # instance.
        if many and obj is not None:
            return [self._serialize(item) for item in obj]
        if isinstance(obj, dict):
            return super()._serialize(obj)
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = self._plan = [
                (
                    name if field.data_key is None else field.data_key,
                    name,
                    # A Method field's attribute here is the name of its method.
                    (cast(fields.Method, field).serialize_method_name if kind == _METHOD else None)
                    or field.attribute
                    or name,
                    kind,
                    field,
                )
                for name, field in self.dump_fields.items()
                for kind in (_fast_kind(field),)
            ]
        own = obj.own_fields() if isinstance(obj, View) else None
        row = obj.row if own is not None else obj
        # A loaded column of an ORM row is in its __dict__, where getattr would find it
        # through the attribute's descriptor; anything else (a property, a column not
        # loaded) is read by getattr.
        loaded = getattr(row, "__dict__", {})
        ret = self.dict_class()
        for key, name, attr, kind, field in plan:
            if kind is None:
                value = field.serialize(name, obj, accessor=self.get_attribute)
            elif kind == _METHOD:
                # What Method._serialize does, without Field.serialize around it.
                value = getattr(self, attr)(obj)
            else:
                if own is not None and attr in own:
                    value = getattr(obj, attr, missing)
                elif attr in loaded:
                    value = loaded[attr]
                else:
                    value = getattr(row, attr, missing)
                if kind == _UTC:
                    value = rfc3339(value) if value is not missing else value
                elif value is None or value is missing:
                    pass
                elif kind == _STR:
                    if type(value) is not str:
                        value = ensure_text_type(value)
                elif kind == _INT:
                    value = int(value)
            if value is missing:
                continue
            ret[key] = value
        return ret


class UTC(fields.AwareDateTime):
    """An RFC 3339 time with its offset in; UTC with a 'Z' out."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return rfc3339(value)


class ErrorDetail(Schema):
    code = fields.Str(required=True)
    message = fields.Str(required=True)
    # Not named "fields": that name is the Schema's own.
    fields_ = fields.Dict(keys=fields.Str(), values=fields.Str(), data_key="fields")


class ApiError(Schema):
    error = fields.Nested(ErrorDetail, required=True)


class ForumOut(Schema):
    slug = fields.Str()
    title = fields.Str()
    question = fields.Str()
    correspondent = fields.Str()
    description = fields.Str()
    starts_at = UTC()
    ends_at = UTC()
    duration_minutes = fields.Int()
    timezone = fields.Str()
    signup_closes_at = UTC()
    reminder_offsets = fields.List(fields.Int())
    languages = fields.List(
        fields.Str(), metadata={"description": "BCP 47; the forum's own language first."}
    )
    status = fields.Str(metadata={"enum": [s.value for s in ForumStatus]})
    accepting_signups = fields.Bool()
    url = fields.Str()
    counts = fields.Dict(
        keys=fields.Str(),
        values=fields.Int(),
        metadata={"description": "Signups by status; only for producers."},
    )


class ForumList(Schema):
    forums = fields.List(fields.Nested(ForumOut))


class ForumFields(Schema):
    slug = fields.Str(validate=validate.Length(1, 80))
    title = fields.Str(validate=validate.Length(1, TITLE_MAX))
    question = fields.Str(validate=validate.Length(max=QUESTION_MAX))
    correspondent = fields.Str(validate=validate.Length(max=TITLE_MAX))
    description = fields.Str(validate=validate.Length(max=20000))
    starts_at = UTC()
    duration_minutes = fields.Int(strict=True)
    timezone = fields.Str(validate=validate.Length(1, 64))
    signup_closes_at = UTC(allow_none=True)
    reminder_offsets = fields.List(fields.Int(strict=True), validate=validate.Length(max=20))
    languages = fields.List(
        fields.Str(validate=validate.Length(1, 35)),
        validate=validate.Length(1, 20),
        metadata={"description": "BCP 47 tags phonein ships (en, fr, es, ar), own first."},
    )


class ForumCreate(ForumFields):
    title = fields.Str(required=True, validate=validate.Length(1, TITLE_MAX))
    starts_at = UTC(required=True)


class ForumPatch(ForumFields):
    status = fields.Str(validate=validate.OneOf(["live", "closed", "published", "cancelled"]))


class SignupIn(Schema):
    name = fields.Str(required=True, validate=validate.Length(max=NAME_MAX * 4))
    location = fields.Str(required=True, validate=validate.Length(max=LOCATION_MAX * 4))
    phone = fields.Str(required=True, validate=validate.Length(max=40))
    country = fields.Str(allow_none=True, validate=validate.Length(max=2))
    email = fields.Str(allow_none=True, validate=validate.Length(max=EMAIL_MAX))
    question = fields.Str(required=True, validate=validate.Length(max=QUESTION_MAX * 2))
    sms_consent = fields.Bool(
        load_default=False,
        metadata={
            "description": "Recorded in the consent ledger with the wording "
            f"{consents.SIGNUP_FORM[consents.SMS]}: show the listener "
            f'"{consents.text(consents.SIGNUP_FORM[consents.SMS])}".'
        },
    )
    publish_consent = fields.Bool(
        load_default=False,
        metadata={
            "description": "Recorded in the consent ledger with the wording "
            f"{consents.SIGNUP_FORM[consents.PUBLISH]}: show the listener "
            f'"{consents.text(consents.SIGNUP_FORM[consents.PUBLISH])}".'
        },
    )
    timezone = fields.Str(allow_none=True, validate=validate.Length(max=64))
    language = fields.Str(
        allow_none=True,
        metadata={
            "description": "BCP 47. Default: Accept-Language among the forum's languages; "
            "one the forum does not offer becomes its first."
        },
    )


class SignupCreated(ViewSchema):
    id = fields.Int()
    forum = fields.Str(attribute="forum.slug")
    status = fields.Str()
    name = fields.Str()
    location = fields.Str()
    phone = fields.Str(metadata={"description": "E.164"})
    country = fields.Str(allow_none=True)
    timezone = fields.Str(allow_none=True)
    language = fields.Str(attribute="reads_in")
    sms_consent = fields.Bool()
    publish_consent = fields.Bool()
    manage_url = fields.Str(metadata={"description": "The listener's private link."})


class CallBrief(Schema):
    """A call as the boards show it: its line state and timers."""

    id = fields.Int()
    signup_id = fields.Int(allow_none=True)
    direction = fields.Str(metadata={"enum": [d.value for d in CallDirection]})
    state = fields.Str(metadata={"enum": [s.value for s in CallState]})
    waiting_since = UTC(allow_none=True, metadata={"description": "When they began to hold."})
    on_air_since = UTC(attribute="on_air_at", allow_none=True)
    ended_at = UTC(allow_none=True)
    end_reason = fields.Str(allow_none=True)
    muted = fields.Bool()
    held = fields.Bool(metadata={"description": "On hold in the on-air conference."})
    error = fields.Str(allow_none=True, metadata={"description": "The last Twilio error."})
    created_at = UTC()
    caller_unverified = fields.Bool(
        metadata={
            "description": "The caller ID is a listener's, but its carrier could not vouch "
            "for it (STIR/SHAKEN): screen them before believing it."
        }
    )


class CallOut(CallBrief):
    """A call as producers see it: with the number."""

    forum = fields.Str(attribute="forum.slug")
    number = fields.Str(allow_none=True, metadata={"description": "E.164; null if withheld."})
    sid = fields.Str(allow_none=True, metadata={"description": "Twilio's CallSid."})
    wanted = fields.Str(
        allow_none=True, metadata={"description": "The last request phonein made of the call."}
    )


class SignupOut(ViewSchema):
    id = fields.Int()
    forum = fields.Str(attribute="forum.slug")
    name = fields.Str()
    location = fields.Str()
    phone = fields.Str(allow_none=True)
    country = fields.Str(allow_none=True)
    email = fields.Str(allow_none=True)
    question = fields.Str()
    sms_consent = fields.Bool()
    publish_consent = fields.Bool()
    timezone = fields.Str(allow_none=True)
    language = fields.Str(attribute="reads_in")
    status = fields.Str(metadata={"enum": [s.value for s in SignupStatus]})
    stance = fields.Str(allow_none=True)
    rating = fields.Int(allow_none=True)
    notes = fields.Str(allow_none=True)
    pronunciation = fields.Str(
        allow_none=True,
        metadata={"description": "A producer's note of how to say the caller's name."},
    )
    queue_position = fields.Method("_position", allow_none=True)
    published = fields.Bool()
    pull_quote = fields.Str(allow_none=True)
    publish_order = fields.Int(allow_none=True)
    created_at = UTC()
    updated_at = UTC()
    screened_at = UTC(allow_none=True)
    on_air_at = UTC(allow_none=True)
    done_at = UTC(allow_none=True)
    call = fields.Method(
        "_call",
        allow_none=True,
        metadata={"description": "In the queue: the caller's live call, if on the line."},
    )
    expected_on_air_at = fields.Method(
        "_expected",
        allow_none=True,
        metadata={"description": "In the queue: back-timed estimate of going on air."},
    )
    will_make_it = fields.Method(
        "_makes_it",
        allow_none=True,
        metadata={"description": "In the queue: false when the forum will end first."},
    )

    # Method fields keep these out of the row's columns in the OpenAPI document; they are
    # the view's (SignupView, BoardCaller), computed by the operation that built it.
    def _position(self, view: SignupView | BoardCaller) -> int | None:
        return view.queue_position

    def _call(self, view: SignupView | BoardCaller) -> Any:
        return CallBrief().dump(view.call) if view.call is not None else None

    def _expected(self, view: SignupView | BoardCaller) -> str | None:
        return rfc3339(view.expected_on_air_at)

    def _makes_it(self, view: SignupView | BoardCaller) -> bool | None:
        return view.will_make_it


class SignupPage(Schema):
    items = fields.List(fields.Nested(SignupOut))
    total = fields.Int(
        allow_none=True,
        metadata={
            "description": "How many match. Null on pages asked for with ``after``: "
            "the first page's total stands, and a forum of 100,000 is not counted again."
        },
    )
    page = fields.Int()
    per_page = fields.Int()
    next_after = fields.Int(
        allow_none=True,
        metadata={"description": "Give it as ``after`` for the next page; null on the last page."},
    )


class SignupQuery(Schema):
    status = fields.Str(validate=validate.OneOf([s.value for s in SignupStatus]))
    q = fields.Str(validate=validate.Length(max=200))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))
    after = fields.Int(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={
            "description": "The page after this signup (the previous answer's "
            "``next_after``): read from the index however deep, and stable while new "
            "signups arrive. ``page`` is then ignored."
        },
    )


class ScreenIn(Schema):
    decision = fields.Str(validate=validate.OneOf(["approve", "reject"]))
    stance = fields.Str(allow_none=True, validate=validate.OneOf([s.value for s in Stance]))
    rating = fields.Int(strict=True, allow_none=True, validate=validate.Range(1, 5))
    notes = fields.Str(allow_none=True, validate=validate.Length(max=NOTES_MAX))


class UnscreenedCall(ViewSchema, CallBrief):
    number = fields.Str(allow_none=True, metadata={"description": "Only for producers."})
    name = fields.Str(
        allow_none=True, metadata={"description": "A signup's name, when the number has one."}
    )


class ActionOut(Schema):
    id = fields.Int()
    kind = fields.Str(
        metadata={"enum": ["next", "finish", "remove", "requeue", "go_live", "close", "cancel"]}
    )
    message = fields.Str()
    created_at = UTC()
    expires_at = UTC(metadata={"description": "Undo it before then (the server's clock)."})


class QueueOut(Schema):
    status = fields.Str(
        metadata={"description": "The forum's status: callers go on air only while it is live."}
    )
    starts_at = UTC(metadata={"description": "The announced start."})
    undo = fields.Nested(
        ActionOut,
        allow_none=True,
        metadata={"description": "Producers: the last live action, while it can be undone."},
    )
    on_air = fields.Nested(SignupOut, allow_none=True)
    waiting = fields.List(fields.Nested(SignupOut))
    total_waiting = fields.Int()
    version = fields.Int()
    unscreened = fields.List(
        fields.Nested(UnscreenedCall),
        metadata={"description": "Callers on the line who are not approved: screen them live."},
    )
    studio = fields.Nested(CallBrief, allow_none=True)
    now = UTC(metadata={"description": "The server's time, for the boards' timers."})
    ends_at = UTC()
    average_call_seconds = fields.Int()
    remaining_seconds = fields.Int()


class QueueNext(Schema):
    signup_id = fields.Int(
        strict=True,
        validate=validate.Range(1, MAX_ID),
        metadata={"description": "Put this waiting caller on air instead of the first."},
    )


class CallFlags(Schema):
    muted = fields.Bool()
    held = fields.Bool()


class ScreenCallIn(Schema):
    name = fields.Str(required=True, validate=validate.Length(max=NAME_MAX * 4))
    location = fields.Str(required=True, validate=validate.Length(max=LOCATION_MAX * 4))
    question = fields.Str(required=True, validate=validate.Length(max=QUESTION_MAX * 2))
    stance = fields.Str(allow_none=True, validate=validate.OneOf([s.value for s in Stance]))
    rating = fields.Int(strict=True, allow_none=True, validate=validate.Range(1, 5))
    notes = fields.Str(allow_none=True, validate=validate.Length(max=NOTES_MAX))
    sms_consent = fields.Bool(
        allow_none=True, metadata={"description": "Absent: keep what they gave online (or no)."}
    )
    publish_consent = fields.Bool(allow_none=True)
    queue = fields.Bool(load_default=True, metadata={"description": "Add to the queue too."})
    position = fields.Int(strict=True, allow_none=True, validate=validate.Range(min=1, max=MAX_ID))


class ScreenedCall(Schema):
    call = fields.Nested(CallOut)
    signup = fields.Nested(SignupOut)
    position = fields.Int(allow_none=True)


class CallList(Schema):
    calls = fields.List(fields.Nested(CallOut))


class QueueQuery(Schema):
    limit = fields.Int(validate=validate.Range(min=0, max=100000))


class QueuePlace(Schema):
    signup_id = fields.Int(required=True, strict=True, validate=validate.Range(1, MAX_ID))
    position = fields.Int(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "1-based; past the end (or absent) means last."},
    )


class QueuePlaced(Schema):
    signup = fields.Nested(SignupOut)
    position = fields.Int(allow_none=True)
    version = fields.Int()
    action = fields.Nested(ActionOut, allow_none=True, metadata={"description": "To undo it."})


class QueueStep(Schema):
    done = fields.Nested(SignupOut, allow_none=True)
    on_air = fields.Nested(SignupOut, allow_none=True)
    next_up = fields.Nested(SignupOut, allow_none=True)
    version = fields.Int()
    message = fields.Str(metadata={"description": "What happened, in a sentence or two."})
    action = fields.Nested(
        ActionOut, allow_none=True, metadata={"description": "To undo it; null: nothing changed."}
    )


class LiveStatusIn(Schema):
    status = fields.Str(required=True, validate=validate.OneOf(["live", "closed", "cancelled"]))
    announce = fields.Str(
        load_default="keep",
        validate=validate.OneOf(["keep", "text"]),
        metadata={
            "description": "Going live before the announced start: keep that start for "
            "listeners (their reminders go out as planned), or text them the change."
        },
    )


class LiveStatusOut(Schema):
    status = fields.Str()
    starts_at = UTC()
    ends_at = UTC()
    message = fields.Str()
    action = fields.Nested(ActionOut, allow_none=True)
    version = fields.Int()


class UndoOut(Schema):
    message = fields.Str(metadata={"description": "What undo did and what it could not."})
    already = fields.Bool(metadata={"description": "It had been undone before."})
    lines_ended = fields.List(fields.Str())
    version = fields.Int()


class PronunciationIn(Schema):
    pronunciation = fields.Str(
        required=True, allow_none=True, validate=validate.Length(max=PRONUNCIATION_MAX)
    )


class PublishIn(Schema):
    published = fields.Bool(required=True)
    pull_quote = fields.Str(allow_none=True, validate=validate.Length(max=PULL_QUOTE_MAX))
    order = fields.Int(strict=True, allow_none=True, validate=validate.Range(-MAX_ID, MAX_ID))


class MessageOut(Schema):
    id = fields.Int()
    signup_id = fields.Int(allow_none=True)
    to = fields.Str()
    kind = fields.Str(metadata={"enum": [k.value for k in MessageKind]})
    body = fields.Str()
    send_at = UTC()
    status = fields.Str(metadata={"enum": [s.value for s in MessageStatus]})
    provider_sid = fields.Str(allow_none=True)
    error_code = fields.Int(allow_none=True)
    error_message = fields.Str(allow_none=True)
    attempts = fields.Int()
    sent_at = UTC(allow_none=True)
    created_at = UTC()


class MessagePage(Schema):
    items = fields.List(fields.Nested(MessageOut))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()


class MessageQuery(Schema):
    kind = fields.Str(validate=validate.OneOf([k.value for k in MessageKind]))
    status = fields.Str(validate=validate.OneOf([s.value for s in MessageStatus]))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100000))
    per_page = fields.Int(load_default=100, validate=validate.Range(min=1, max=500))
