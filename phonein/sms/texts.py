"""What each kind of text says, in the listener's language and zone, at the lowest cost.

One builder per kind (``BUILDERS``): a new kind is one function and one table entry.
Every sentence goes through the ``texts`` gettext domain in the listener's language
(``Signup.reads_in``: theirs, else the forum's first, else the station's). Bodies give the
time in the forum's zone and, where known and different, the listener's own, formatted
by Babel in the listener's locale, and end with the opt-out line.

Cost (``phonein.gsm``): the forum's title is folded to GSM forms (typographic quotes,
dashes, ellipses, odd spaces) and cut at a word boundary; a body in a Latin-script
language whose only non-GSM characters are accented letters GSM lacks (``ã``, ``ç``,
``á``) loses those accents, as SMS in those languages routinely do, so that it goes as
GSM-7 at half the cost. A body that needs UCS-2 anyway (Arabic, a title in another
script) keeps every letter as written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time, get_timezone_location
from flask import current_app, has_app_context

from .. import gsm, links
from ..i18n import text_gettext, text_ngettext
from ..models import Forum, MessageKind
from ..times import zone_or_none

# How long the forum's title may be in a text: at most 50 characters; down to 30 when
# that saves a segment, and further only to keep within the limit (2 GSM-7, 3 UCS-2),
# which as a last resort also drops the listener's own time (the forum's stays).
TITLE_MAX_IN_SMS = 50
FEWER_SEGMENT_TITLES = (40, 30)
WITHIN_LIMIT_TITLES = (40, 30, 20, 12)
# A link in a text is the listener's private link, filled in as it is sent: this stands in
# for it wherever a text's cost is worked out before then (preview, benchmark).
SAMPLE_TOKEN = "m." + "x" * 36


def _locale(language: str | None) -> Locale:
    try:
        return Locale.parse((language or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


@dataclass
class Text:
    """One text being written: for whom (zone, language), about what, at what moment."""

    forum: Forum | None
    zone: str | None
    language: str | None
    now: datetime
    extra: dict[str, str] = field(default_factory=dict)
    title_max: int = TITLE_MAX_IN_SMS
    # False: the forum's time only, when the listener's own would take the text past its
    # limit (a long link and a title in another script).
    own_time: bool = True
    # A confirmation promises a reminder only when one will come (sms.outbox.reminder_coming).
    reminder: bool = False

    @property
    def title(self) -> str:
        assert self.forum is not None
        # One line, GSM forms, cut between words: a title with a line break or a
        # typographic apostrophe must neither start a line the listener reads as ours nor
        # double the cost.
        title = " ".join(gsm.fold(self.forum.title).split())
        # The texts quote the title in double quotes: its own go in as single ones.
        return gsm.shorten(title.replace('"', "'"), self.title_max)

    def moment(self, moment: datetime, zone_name: str | None, *, date: bool = True) -> str:
        locale = _locale(self.language)
        zone = zone_or_none(zone_name)
        local = moment.astimezone(zone) if zone else moment
        clock = format_time(local, "HH:mm", locale=locale)
        if not date:
            return clock
        day = format_skeleton("MMMEd", local, locale=locale)
        return f"{day} {clock}"

    def place(self, zone_name: str | None) -> str:
        zone = zone_or_none(zone_name)
        if zone is None:
            return "UTC"
        return str(get_timezone_location(zone, locale=_locale(self.language), return_city=True))

    def when(self, moment: datetime | None = None, *, date: bool = True) -> str:
        """Say when the forum starts in its zone, and in the listener's where known and other.

        ``date`` False leaves the day out (a reminder hours before: the time is what counts).
        """
        assert self.forum is not None
        moment = moment or self.forum.starts_at
        forum_zone = self.forum.timezone
        text = text_gettext(
            self.language,
            "%(moment)s %(place)s time",
            moment=self.moment(moment, forum_zone, date=date),
            place=self.place(forum_zone),
        )
        own_zone = zone_or_none(self.zone)
        forum = zone_or_none(forum_zone)
        if own_zone is None or self.zone == forum_zone or not self.own_time:
            return text
        ours, theirs = moment.astimezone(forum) if forum else moment, moment.astimezone(own_zone)
        if ours.utcoffset() == theirs.utcoffset():
            return text
        same_day = ours.date() == theirs.date()
        return text_gettext(
            self.language,
            "%(forum_time)s (%(own)s your time)",
            forum_time=text,
            own=self.moment(moment, self.zone, date=date and not same_day),
        )

    def starts_in(self, delta: timedelta) -> str:
        minutes = max(1, round(delta.total_seconds() / 60))
        if minutes < 90:
            return text_ngettext(self.language, "%(num)d minute", "%(num)d minutes", minutes)
        hours = round(minutes / 60)
        if hours < 36:
            return text_ngettext(self.language, "%(num)d hour", "%(num)d hours", hours)
        return text_ngettext(self.language, "%(num)d day", "%(num)d days", round(hours / 24))


# One builder per kind.


def _confirmation(t: Text) -> str:
    # No link: with the title and both times it would take the text to two segments. The
    # listener saw their private link on the page when they proved the number, and a LINK
    # reply texts it to them (``_link``).
    if t.reminder:
        return text_gettext(
            t.language,
            'Signed up for "%(title)s", %(when)s. We\'ll text you a reminder. Reply LINK to change or cancel.',  # noqa: E501
            title=t.title,
            when=t.when(),
        )
    return text_gettext(
        t.language,
        'Signed up for "%(title)s", %(when)s. Reply LINK to change or cancel.',
        title=t.title,
        when=t.when(),
    )


def _link(t: Text) -> str:
    # The answer to LINK. The link goes in as the text is sent (links.fill): the stored
    # text, which producers read in the SMS log, holds no working private link.
    return text_gettext(
        t.language,
        'Your private link for "%(title)s" (change or cancel): %(link)s',
        title=t.title,
        link=links.PLACEHOLDER,
    )


# A reminder this close to the start gives the time without the day.
SAME_DAY = timedelta(hours=12)


def _reminder(t: Text) -> str:
    assert t.forum is not None
    ahead = t.forum.starts_at - t.now
    return text_gettext(
        t.language,
        'Reminder: "%(title)s" starts in %(in)s, %(when)s.',
        title=t.title,
        when=t.when(date=ahead > SAME_DAY),
        **{"in": t.starts_in(ahead)},
    )


def _next_up(t: Text) -> str:
    return text_gettext(
        t.language,
        'You\'re next on "%(title)s"! Keep your phone free: we will call you in a few minutes.',
        title=t.title,
    )


def _rescheduled(t: Text) -> str:
    return text_gettext(
        t.language, 'The phone-in "%(title)s" has moved to %(when)s.', title=t.title, when=t.when()
    )


def _cancelled(t: Text) -> str:
    return text_gettext(
        t.language,
        'Sorry: the phone-in "%(title)s" on %(when)s has been cancelled.',
        title=t.title,
        when=t.when(),
    )


def _goodbye(t: Text) -> str:
    # One literal: extraction does not read strings joined inside parentheses.
    return text_gettext(
        t.language,
        'Thank you for calling "%(title)s". We ran out of time before your turn, but your comment may still be published: %(url)s',  # noqa: E501
        title=t.title,
        url=t.extra["forum_url"],
    )


def _closed(t: Text) -> str:
    return text_gettext(
        t.language,
        'The phone-in "%(title)s" has now closed. We could not put you on air this time. Thank you for taking part.',  # noqa: E501
        title=t.title,
    )


def _help(t: Text) -> str:
    return text_gettext(
        t.language,
        "phonein texts you about phone-ins you signed up for. Reply LINK for your private link, START to get texts again.",  # noqa: E501
    )


BUILDERS: dict[str, Callable[[Text], str]] = {
    MessageKind.CONFIRMATION: _confirmation,
    MessageKind.REMINDER: _reminder,
    MessageKind.NEXT_UP: _next_up,
    MessageKind.RESCHEDULED: _rescheduled,
    MessageKind.CANCELLED: _cancelled,
    MessageKind.GOODBYE: _goodbye,
    MessageKind.CLOSED: _closed,
    MessageKind.HELP: _help,
    MessageKind.LINK: _link,
}
# What the forum editor's SMS preview shows for a forum, in this order.
FORUM_KINDS = (
    MessageKind.CONFIRMATION,
    MessageKind.REMINDER,
    MessageKind.NEXT_UP,
    MessageKind.RESCHEDULED,
    MessageKind.CANCELLED,
    MessageKind.GOODBYE,
    MessageKind.CLOSED,
    MessageKind.LINK,
)


def cheapest(text: str) -> str:
    """Return ``text`` in GSM-7 when losing accents GSM lacks is all it takes, else as is."""
    if gsm.is_gsm(text):
        return text
    plain = gsm.fold_letters(text)
    return plain if gsm.is_gsm(plain) else text


def stop_line(language: str | None) -> str:
    """The opt-out line that ends every text (the consent ledger's wording ``sms.stop.v1``)."""
    return text_gettext(language, "Reply STOP to opt out.")


def finish(text: Text, sentence: str) -> str:
    """Add the opt-out line and make the body as cheap as its language allows."""
    return cheapest(f"{sentence} {stop_line(text.language)}")


def forum_language(forum: Forum | None) -> str | None:
    """The forum's first language: what a listener who named none reads (None: the station's)."""
    languages: list[str] = (forum.languages if forum is not None else None) or []
    return languages[0] if languages else None


def body(
    kind: MessageKind | str,
    forum: Forum | None,
    zone: str | None,
    now: datetime,
    *,
    language: str | None = None,
    reminder: bool = False,
    **extra: str,
) -> str:
    """Return the text of a message of ``kind`` for a listener in ``zone`` and ``language``.

    ``reminder``: whether a confirmation may promise a reminder (one is on its way); the
    promise is left out rather than take the text past its segment limit.
    """
    if forum is None:
        kind = MessageKind.HELP
    build = BUILDERS.get(kind, _help)
    return _cheapest_body(
        build, forum, zone, now, language or forum_language(forum), reminder, extra
    )


def _cheapest_body(
    build: Callable[[Text], str],
    forum: Forum | None,
    zone: str | None,
    now: datetime,
    language: str | None,
    reminder: bool,
    extra: dict[str, str],
) -> str:
    """Write ``build``'s text in as few segments as a title of 30 characters or more allows."""

    def made(
        title_max: int, own_time: bool = True, promise: bool = reminder
    ) -> tuple[str, gsm.Cost]:
        text = Text(forum, zone, language, now, extra, title_max, own_time, promise)
        written = finish(text, build(text))
        return written, gsm.cost(as_sent(written, _public_url()))

    # The fewest segments a title of 30 characters or more allows, with the longest such
    # title (and, for a confirmation, its promise of a reminder if it still fits); else the
    # longest title within the limit. A title is the one part of a text worth shortening
    # (never the time, a link or the STOP line); a promise is worth less than a segment:
    # the reminder comes all the same.
    written, cost = made(TITLE_MAX_IN_SMS)
    shorter_forms = [(title_max, reminder) for title_max in FEWER_SEGMENT_TITLES]
    if reminder:
        shorter_forms += [(t, False) for t in (TITLE_MAX_IN_SMS, *FEWER_SEGMENT_TITLES)]
    for segments in range(1, cost.segments):
        for title_max, promise in shorter_forms:
            shorter, shorter_cost = made(title_max, promise=promise)
            if shorter_cost.segments <= segments and not shorter_cost.over:
                return shorter
    if not cost.over:
        return written
    # Last resorts, in order: a confirmation's promise of a reminder (the reminder still
    # comes; the text just does not say so), then the listener's own time.
    for own_time, promise in ((True, reminder), (True, False), (False, False)):
        for title_max in WITHIN_LIMIT_TITLES:
            written, cost = made(title_max, own_time, promise)
            if not cost.over:
                return written
    return written


def no_signup_reply(language: str | None) -> str:
    """The reply to LINK from a number with no signup to come: nothing to link to."""
    text = Text(None, None, language, datetime.min)
    return finish(
        text,
        text_gettext(
            text.language,
            "This number has no signup for a phone-in to come. Reply HELP for help.",
        ),
    )


def signed_up_again(forum: Forum, language: str | None, link: str, now: datetime) -> str:
    """The text to a known number signed up again with PHONEIN_VERIFY=off: ``link`` (a
    one-time link to its signup) and that nothing changed."""

    def build(t: Text) -> str:
        return text_gettext(
            t.language,
            'Someone signed up again for "%(title)s" with this number; nothing was changed. To open your signup: %(link)s',  # noqa: E501
            title=t.title,
            link=t.extra["link"],
        )

    return _cheapest_body(
        build, forum, None, now, language or forum_language(forum), False, {"link": link}
    )


def start_reply(language: str | None) -> str:
    """The reply to START (and its synonyms): texts come again."""
    text = Text(None, None, language, datetime.min)
    return finish(
        text, text_gettext(text.language, "You will get texts about your phone-ins again.")
    )


def stop_reply(language: str | None) -> str:
    """The reply to STOP (and its synonyms): no more texts, and how to get them back."""
    text = Text(None, None, language, datetime.min)
    return cheapest(
        text_gettext(
            text.language, "You will get no more texts from phonein. Reply START to get them again."
        )
    )


def code_text(code: str, language: str | None) -> str:
    """The text carrying a one-time code phonein made."""
    text = Text(None, None, language, datetime.min)
    return cheapest(
        text_gettext(
            text.language,
            "Your phonein code is %(code)s. It is good for 10 minutes. Never share it.",
            code=code,
        )
    )


def _public_url() -> str:
    return str(current_app.config["PUBLIC_URL"]) if has_app_context() else "https://x.example"


def as_sent(text: str, public_url: str) -> str:
    """``text`` with a link as long as the one it will carry, to work out its cost."""
    return text.replace(links.PLACEHOLDER, f"{public_url}/manage/{SAMPLE_TOKEN}")
