"""Typed view objects: what an answer or a page shows, built by operations.

A view carries its row and what is computed about it (a queue position, the call on the
line, back-timing, a private link shown once). Nothing is ever set on an ORM row that its
model does not declare. The API's schemas read a view's own fields first, then its row's
(``api.schemas.ViewSchema``), so a view adds fields without repeating the row's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from .models import Call, Signup


@dataclass(frozen=True)
class View:
    """A row and what is computed about it."""

    row: Any

    @classmethod
    def own_fields(cls) -> frozenset[str]:
        """Return the names of the view's own fields (the rest are its row's)."""
        names: frozenset[str] | None = cls.__dict__.get("_own_fields")
        if names is None:
            names = frozenset(f.name for f in fields(cls)) - {"row"}
            cls._own_fields = names  # type: ignore[attr-defined]
        return names


@dataclass(frozen=True)
class SignupView(View):
    """A signup as producers see it."""

    row: Signup
    # 1-based place in the caller queue, while queued.
    queue_position: int | None = None
    # The listener's call on the line, if any.
    call: Call | None = None
    # Back-timing, while queued: when they should go on air, and whether that is in time.
    expected_on_air_at: datetime | None = None
    will_make_it: bool | None = None
    # The listener's private link: only in the answer to the listener's own signup.
    manage_url: str | None = None


@dataclass(frozen=True)
class BoardCaller:
    """A caller as the presenter's board shows them: never the phone, email or notes."""

    id: int
    name: str
    location: str
    question: str
    status: str
    stance: str | None
    pronunciation: str | None
    updated_at: datetime
    on_air_at: datetime | None
    queue_position: int | None
    call: Call | None
    expected_on_air_at: datetime | None
    will_make_it: bool | None

    @classmethod
    def of(cls, view: SignupView) -> BoardCaller:
        signup = view.row
        return cls(
            id=signup.id,
            name=signup.name,
            location=signup.location,
            question=signup.question,
            status=signup.status,
            stance=signup.stance,
            pronunciation=signup.pronunciation,
            updated_at=signup.updated_at,
            on_air_at=signup.on_air_at,
            queue_position=view.queue_position,
            call=view.call,
            expected_on_air_at=view.expected_on_air_at,
            will_make_it=view.will_make_it,
        )


@dataclass(frozen=True)
class UnscreenedLine(View):
    """A caller on the line whom producers have not approved: to screen live."""

    row: Call
    # The name of the signup their number has, if any.
    name: str | None
    # Their number; None for presenters.
    number: str | None
