"""Hostile input made tame: text cleaning and the small checks every form shares."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from flask import request

from .errors import DomainError, Invalid

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Control characters other than tab and newline: PostgreSQL refuses NUL in text, and none
# of them belongs in a name or a question.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


# Format characters (Unicode category Cf) that are kept: the zero-width joiner and non-
# joiner spell words in Persian and Indic scripts and build emoji. Every other one goes:
# bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069) that make "Ann" read as
# someone else, marks, the BOM, invisible separators and tags.
KEPT_FORMAT = {"\u200c", "\u200d"}
# Line and paragraph separators: newlines to anything that prints them.
LINE_BREAKS_RE = re.compile("[\u0085\u2028\u2029]")
WHITESPACE_RE = re.compile(r"\s+")


def _without_format_characters(text: str) -> str:
    return "".join(c for c in text if c in KEPT_FORMAT or unicodedata.category(c) != "Cf")


def clean_text(value: Any) -> str:
    """Return ``value`` as text: newlines normalised, control and format characters removed."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = LINE_BREAKS_RE.sub("\n", text)
    return _without_format_characters(CONTROL_RE.sub("", text)).strip()


def clean_line(value: Any) -> str:
    """Return ``value`` as one line of clean text: every run of whitespace, newlines
    included, becomes one space (a title goes into SMS bodies and spoken TwiML)."""
    return WHITESPACE_RE.sub(" ", clean_text(value))


def as_bool(value: Any) -> bool:
    """Read a checkbox or JSON flag: 'on', 'true', 'yes', '1' and True are yes."""
    if isinstance(value, str):
        return value.lower() in ("1", "true", "on", "yes", "y")
    return bool(value)


# Deepest JSON nesting a request may have. phonein's own bodies are two levels deep; the
# bound stops a body like 3,000 '[' from exhausting Python's recursion while it is parsed.
JSON_MAX_DEPTH = 32
# A UTF-16 surrogate on its own: JSON can spell one ("\ud800") but it is not text, and
# encoding it for the database or a template raises.
SURROGATE_RE = re.compile("[\ud800-\udfff]")


def json_depth_exceeds(raw: bytes, limit: int = JSON_MAX_DEPTH) -> bool:
    """Say whether the JSON text ``raw`` nests arrays and objects deeper than ``limit``.

    A linear scan that skips strings, done before any parser recurses into the body.
    """
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def lone_surrogate_path(value: Any) -> str | None:
    """Return the dotted path of the first key or string in ``value`` holding a lone surrogate."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if SURROGATE_RE.search(node):
                return path or "input"
        elif isinstance(node, dict):
            for key, item in node.items():
                name = f"{path}.{key}" if path else str(key)
                if SURROGATE_RE.search(str(key)):
                    return path or "input"
                stack.append((name, item))
        elif isinstance(node, list):
            stack.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(node))
    return None


def _flat_object(value: Any) -> bool:
    scalars = (str, int, float, bool, type(None))
    return isinstance(value, dict) and all(isinstance(v, scalars) for v in value.values())


def guard_json_body() -> None:
    """Refuse a JSON body nested too deeply or holding a lone surrogate, before any view.

    Runs for every route (pages read JSON bodies too, through Flask-WTF): the parsers
    further on would otherwise fail with a RecursionError or a UnicodeEncodeError (a 500).
    """
    if not request.is_json:
        return
    raw = request.get_data(cache=True)
    if not raw:
        return
    if json_depth_exceeds(raw):
        raise DomainError(
            f"The JSON body is nested too deeply: at most {JSON_MAX_DEPTH} levels.",
            code="too_deep",
        )
    try:
        value = json.loads(raw)
    except ValueError:
        # Refused here for pages too: Flask-WTF reads a JSON body as the form, and its
        # failure would surface while the error page itself is rendered.
        raise DomainError("The request body is not valid JSON (or not UTF-8).") from None
    if not request.path.startswith("/api/") and not _flat_object(value):
        # Flask-WTF would hand a nested value to a text field, which fails as it renders.
        raise DomainError("A form takes a JSON object of its fields: text, numbers, true/false.")
    path = lone_surrogate_path(value)
    if path is not None:
        raise Invalid({path: "Contains a lone UTF-16 surrogate (like \\ud800), which is not text."})
