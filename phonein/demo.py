"""Demo data: an upcoming forum with screened signups, and a past published one.

All text here was written for phonein; the people are fictional, but their numbers are
well-formed and could belong to someone: demo signups never agree to texts, so no
confirmation, reminder or "you're next" goes to them, whatever SMS backend is configured.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from . import accounts, consents, publication, signups
from .extensions import db
from .live import queue
from .models import Forum, Role, Signup, User

UPCOMING = {
    "slug": "car-free-city-centres",
    "title": "Car-free city centres: your questions",
    "question": "Should cities ban private cars from their centres?",
    "correspondent": "Amara Okafor, our transport correspondent",
    "description": (
        "Several capitals now close their historic centres to private cars at weekends, and "
        "some plan to make it permanent. Shopkeepers warn of empty streets; cyclists and "
        "parents welcome cleaner air.\n\nPut your question to Amara live on air."
    ),
    "timezone": "Europe/London",
    "duration_minutes": 60,
}

PAST = {
    "slug": "four-day-week-verdict",
    "title": "The four-day week: your verdict",
    "question": "Would a four-day working week work where you live?",
    "correspondent": "Tomás Lindqvist, our economics correspondent",
    "description": "A year after the first national trials, we asked you how it went.",
    "timezone": "Europe/London",
    "duration_minutes": 45,
}

# name, location, phone, zone, stance, rating, status, publish consent, text
PEOPLE = [
    (
        "Mariana Costa",
        "Porto, Portugal",
        "+351 912 345 678",
        "Europe/Lisbon",
        "for",
        5,
        "queued",
        True,
        "Our old town closed to cars three years ago. The first summer was hard for the cafés, "
        "but now the squares are full every evening.\n\nWhy do other cities wait so long?",
    ),
    (
        "Dele Adeyemi",
        "Lagos, Nigeria",
        "+234 803 123 4567",
        "Africa/Lagos",
        "against",
        4,
        "queued",
        True,
        "Where I live the buses are not reliable enough. Banning cars before fixing public "
        "transport punishes the people who commute furthest.",
    ),
    (
        "Hannah Berg",
        "Hamburg, Germany",
        "+49 1512 3456789",
        "Europe/Berlin",
        "neutral",
        4,
        "queued",
        True,
        "I cycle to work but my father needs the car to reach his doctor. How do schemes like "
        "this handle disabled drivers and carers?",
    ),
    (
        "Ravi Menon",
        "Bengaluru, India",
        "+91 98450 12345",
        "Asia/Kolkata",
        "for",
        3,
        "approved",
        True,
        "Traffic here costs us two hours a day. Even one car-free street would show people "
        "what is possible.",
    ),
    (
        "Chloe Martin",
        "Lyon, France",
        "+33 6 12 34 56 78",
        "Europe/Paris",
        "against",
        3,
        "approved",
        False,
        "Shops on my street lost a third of their customers. Who compensates them?",
    ),
    (
        "Kenji Sato",
        "Osaka, Japan",
        "+81 90-1234-5678",
        "Asia/Tokyo",
        "for",
        4,
        "approved",
        True,
        "Osaka closes some streets on Sundays and families love it. Could the guest say whether "
        "air quality really improves, or does traffic just move to the ring road?",
    ),
    (
        "Sam O'Brien",
        "Cork, Ireland",
        "+353 85 123 4567",
        "Europe/Dublin",
        "other",
        2,
        "approved",
        True,
        "It is not cars or no cars: it is delivery vans. Solve deliveries and the rest follows.",
    ),
    (
        "Lucía Fernández",
        "Mendoza, Argentina",
        "+54 9 261 412 3456",
        "America/Argentina/Mendoza",
        "for",
        3,
        "pending",
        True,
        "We have wide avenues built for cars. Could they become parks instead?",
    ),
    (
        "Peter Novak",
        "Brno, Czechia",
        "+420 601 123 456",
        "Europe/Prague",
        "against",
        2,
        "pending",
        False,
        "Another rule made by people who live in the centre for people who do not.",
    ),
    (
        "Grace Wanjiru",
        "Nairobi, Kenya",
        "+254 712 345678",
        "Africa/Nairobi",
        "neutral",
        None,
        "pending",
        True,
        "Matatus carry most people here. Would they be banned too, or only private cars?",
    ),
    (
        "Tom Hughes",
        "Leeds, England, UK",
        "+44 7400 123456",
        "Europe/London",
        "for",
        5,
        "pending",
        True,
        "My children walk to school along a road with 2,000 cars an hour. I would take a "
        "ban tomorrow.",
    ),
    (
        "Jenny Park",
        "Portland, OR, USA",
        "(503) 555-0142",
        "America/Los_Angeles",
        "against",
        3,
        "rejected",
        False,
        "Our downtown is already struggling. Please don't make it harder to visit.",
    ),
]

PAST_PEOPLE = [
    (
        "Ingrid Solberg",
        "Bergen, Norway",
        "+47 412 34 567",
        "Europe/Oslo",
        "for",
        5,
        True,
        1,
        "Nobody at my firm wants to go back.",
        "Nobody at my firm wants to go back. We finish the same work in four days because "
        "meetings got shorter and people stopped pretending to be busy.",
    ),
    (
        "Marcus Reid",
        "Glasgow, Scotland, UK",
        "+44 7400 654321",
        "Europe/London",
        "against",
        4,
        True,
        2,
        None,
        "I work in a care home. Residents need looking after seven days a week, so for us the "
        "four-day week just meant longer shifts.",
    ),
    (
        "Aiko Tanaka",
        "Sapporo, Japan",
        "+81 80-2345-6789",
        "Asia/Tokyo",
        "neutral",
        4,
        True,
        3,
        "The hours fell but the pressure did not.",
        "The hours fell but the pressure did not. I like the long weekend; I do not like "
        "answering emails on it.",
    ),
    (
        "Bruno Lima",
        "Recife, Brazil",
        "+55 81 91234-5678",
        "America/Recife",
        "for",
        3,
        False,
        None,
        None,
        "My team is happier, and our clients have not noticed any difference.",
    ),
]


def _make_forum(spec: dict, starts_at: datetime, now: datetime) -> Forum:
    existing = db.session.scalars(sa.select(Forum).where(Forum.slug == spec["slug"])).first()
    if existing is not None:
        db.session.delete(existing)
        db.session.flush()
    ends_at = starts_at + timedelta(minutes=spec["duration_minutes"])
    forum = Forum(
        **spec,
        starts_at=starts_at,
        ends_at=ends_at,
        signup_closes_at=ends_at,
        reminder_offsets=[86400, 3600, 600],
        status="open",
        queue_version=0,
    )
    db.session.add(forum)
    db.session.flush()
    return forum


def _person(
    forum: Forum,
    name: str,
    location: str,
    phone: str,
    zone: str,
    publish: bool,
    text: str,
    now: datetime,
) -> Signup:
    data = {
        "name": name,
        "location": location,
        "phone": phone,
        "timezone": zone,
        "question": text,
        # Never texted (see above): the numbers may be real people's.
        "sms_consent": False,
        "publish_consent": publish,
    }
    # Register through the real operation: same validation, same E.164 numbers.
    return signups.register(
        forum, data, now, default_region="GB", source=consents.web_form(None)
    ).signup


def load(now: datetime, public_url: str) -> str:
    """Create (or recreate) the demo forums; return a summary for the terminal.

    Links start with ``public_url`` (PHONEIN_PUBLIC_URL, where listeners reach the site).
    """
    upcoming = _make_forum(
        UPCOMING, (now + timedelta(days=2)).replace(minute=0, second=0, microsecond=0), now
    )
    for name, location, phone, zone, stance, rating, status, publish, text in PEOPLE:
        signup = _person(upcoming, name, location, phone, zone, publish, text, now)
        if status != "pending":
            decision = "reject" if status == "rejected" else "approve"
            signups.screen(signup, {"decision": decision, "stance": stance, "rating": rating}, now)
        else:
            signups.screen(signup, {"stance": stance, "rating": rating}, now)
        if status == "queued":
            queue.place(upcoming.slug, signup.id, None, now)

    past_start = (now - timedelta(days=9)).replace(minute=0, second=0, microsecond=0)
    past = _make_forum(PAST, past_start + timedelta(days=30), now)
    for name, location, phone, zone, stance, rating, publish, order, quote, text in PAST_PEOPLE:
        signup = _person(past, name, location, phone, zone, publish, text, now)
        signups.screen(signup, {"decision": "approve", "stance": stance, "rating": rating}, now)
        signup.status = "done"
        if publish:
            publication.set_published(
                signup, {"published": True, "pull_quote": quote, "order": order}, now
            )
    past.starts_at = past_start
    past.ends_at = past_start + past.duration
    past.signup_closes_at = past.ends_at
    past.status = "published"
    past.closed_at = past.ends_at
    db.session.flush()

    lines = [
        f"Demo forum: {public_url}/forums/{upcoming.slug} ({len(PEOPLE)} signups, never texted)",
        f"Past, published forum: {public_url}/forums/{past.slug}",
        f"Producers: {public_url}/producer/",
        f"Presenter's board: {public_url}/board/{upcoming.slug}",
    ]
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0:
        password = secrets.token_urlsafe(12)
        accounts.create_user("producer@demo.phonein", Role.PRODUCER, password)
        lines.append(f"Producer login: producer@demo.phonein / {password}  (shown once)")
    return "\n".join(lines)
