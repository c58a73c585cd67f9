"""The forum editor's preview of every text a forum sends, with its encoding and cost.

For each of the forum's languages, each kind of text (a reminder per offset) as a listener
in another zone than the forum's would get it (the longest form: both times), with its
encoding and segment count worked out with a link as long as the real one (the private
link, which only the text answering LINK carries; the goodbye's forum link). Texts above
two segments (GSM-7) or three (UCS-2) are flagged: the producer can shorten the title.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app

from .. import gsm
from ..i18n import direction, language_name
from ..models import Forum, MessageKind
from ..sms import quiet, texts

# A listener somewhere else, so the preview shows the longer form with their own time.
ELSEWHERE = ("America/New_York", "Asia/Tokyo")


@dataclass(frozen=True)
class PreviewedText:
    label: str
    body: str
    cost: gsm.Cost


@dataclass(frozen=True)
class PreviewedLanguage:
    language: str
    name: str
    direction: str
    texts: list[PreviewedText]

    @property
    def over(self) -> int:
        return sum(1 for text in self.texts if text.cost.over)


def _label(kind: str, offset: int | None = None) -> str:
    if kind == MessageKind.LINK:
        return "private link (on request: LINK)"
    if offset is None:
        return kind.replace("_", " ")
    hours, rest = divmod(offset, 3600)
    before = f"{hours} h" if not rest else f"{offset // 60} min"
    return f"reminder, {before} before"


def preview(forum: Forum) -> list[PreviewedLanguage]:
    """Return every text ``forum`` sends, in each of its languages, with its cost."""
    zone = ELSEWHERE[0] if forum.timezone != ELSEWHERE[0] else ELSEWHERE[1]
    public_url = str(current_app.config["PUBLIC_URL"])
    forum_url = f"{public_url}/forums/{forum.slug}"
    out = []
    languages: list[str | None] = list(forum.languages or []) or [None]
    for language in languages:
        made: list[PreviewedText] = []
        for kind in texts.FORUM_KINDS:
            if kind == MessageKind.REMINDER:
                for offset in sorted(forum.reminder_offsets or [], reverse=True):
                    now = forum.starts_at - timedelta(seconds=int(offset))
                    label = _label(kind, int(offset))
                    made.append(
                        _text(label, forum, kind, zone, now, language, public_url, forum_url)
                    )
                continue
            made.append(
                _text(
                    _label(kind),
                    forum,
                    kind,
                    zone,
                    forum.starts_at,
                    language,
                    public_url,
                    forum_url,
                )
            )
        tag = language or texts.forum_language(forum) or "en"
        out.append(PreviewedLanguage(tag, language_name(tag), direction(tag), made))
    return out


def _text(
    label: str,
    forum: Forum,
    kind: str,
    zone: str,
    now: datetime,
    language: str | None,
    public_url: str,
    forum_url: str,
) -> PreviewedText:
    # A confirmation as most listeners get it: with the promise of a reminder, if any.
    promise = kind == MessageKind.CONFIRMATION and bool(forum.reminder_offsets)
    body = texts.body(
        kind, forum, zone, now, language=language, reminder=promise, forum_url=forum_url
    )
    return PreviewedText(label, body, gsm.cost(texts.as_sent(body, public_url)))


def init_app(app: Flask) -> None:
    """Give templates the preview and the SMS log's note on moved reminders."""
    app.add_template_global(preview, "texts_preview")
    app.add_template_global(quiet.note, "quiet_note")
