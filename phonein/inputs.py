"""Hostile input made tame: text cleaning and the small checks every form shares."""

from __future__ import annotations

import re
from typing import Any

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Control characters other than tab and newline: PostgreSQL refuses NUL in text, and none
# of them belongs in a name or a question.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(value: Any) -> str:
    """Return ``value`` as text with newlines normalised and control characters removed."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return CONTROL_RE.sub("", text).strip()


def as_bool(value: Any) -> bool:
    """Read a checkbox or JSON flag: 'on', 'true', 'yes', '1' and True are yes."""
    if isinstance(value, str):
        return value.lower() in ("1", "true", "on", "yes", "y")
    return bool(value)
