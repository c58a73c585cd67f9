"""What a text costs: its SMS encoding (GSM-7 or UCS-2) and how many segments it takes.

A text whose every character is in the GSM 03.38 default alphabet (or its extension table,
two septets each) goes as GSM-7: 160 characters in one segment, 153 per segment when it
takes several. One character outside it (a typographic quote, ``ã``, any Arabic letter)
sends the whole text as UCS-2: 70 code units in one segment, 67 per segment otherwise, a
character outside the Basic Multilingual Plane counting two. ``fold`` replaces the
typographic characters people paste into titles by their plain GSM forms, so a title does
not double the cost of every text it appears in; ``shorten`` cuts a text at a word
boundary, never inside a link or a character.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + septet).
BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE = {GSM7: 160, UCS2: 70}
MULTI = {GSM7: 153, UCS2: 67}

# Typographic characters and their GSM forms. Only characters whose plain form reads the
# same: accented letters of a language are kept (an "ã" is not an "a" in Portuguese).
FOLDS = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u00b4": "'",  # acute accent
    "`": "'",
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u00ab": '"',  # left-pointing double angle quotation mark
    "\u00bb": '"',  # right-pointing double angle quotation mark
    "\u2039": "'",  # single left-pointing angle quotation mark
    "\u203a": "'",  # single right-pointing angle quotation mark
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # horizontal ellipsis
    "\u2022": "-",  # bullet
    "\u00b7": "-",  # middle dot
    "\u00a0": " ",  # no-break space
    "\u202f": " ",  # narrow no-break space (French punctuation)
    "\u2009": " ",  # thin space
    "\u2002": " ",
    "\u2003": " ",
    "\u2007": " ",
    "\u200a": " ",
    "\u3000": " ",
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",
    "\u2122": "TM",
    "\u00a9": "(c)",
    "\u00ae": "(R)",
    "\u00d7": "x",
    "\u2044": "/",
}

JOINERS = "\u200d\ufe0f\ufe0e"
_URL = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class Cost:
    """A text's encoding, length in code units of that encoding, and segment count."""

    encoding: str
    units: int
    segments: int

    @property
    def limit(self) -> int:
        """The most segments a text of this encoding should take (2 GSM-7, 3 UCS-2)."""
        return 2 if self.encoding == GSM7 else 3

    @property
    def over(self) -> bool:
        return self.segments > self.limit


def is_gsm(text: str) -> bool:
    """Say whether every character of ``text`` is in the GSM-7 alphabet or its extension."""
    return all(ch in BASIC or ch in EXTENSION for ch in text)


def fold(text: str) -> str:
    """Replace typographic characters by their GSM forms; leave letters alone.

    Control characters (a stray line break in a title) become spaces.
    """
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in BASIC or ch in EXTENSION:
            out.append(ch)
        elif ch in FOLDS:
            out.append(FOLDS[ch])
        elif unicodedata.category(ch) in ("Zs", "Cc"):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


# Letters with no GSM form whose plain spelling readers of their language accept in a
# text (beyond dropping an accent).
LETTERS = {"œ": "oe", "Œ": "OE", "ð": "d", "þ": "th", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D"}


def fold_letters(text: str) -> str:
    """Drop the accents GSM lacks from Latin letters (``ã`` -> ``a``, ``ç`` -> ``c``).

    Letters GSM has (``é``, ``ñ``, ``ü``, ``à``, ``Ç``) are kept; letters of other scripts
    are left as they are.
    """
    out = []
    for ch in fold(text):
        if ch in BASIC or ch in EXTENSION:
            out.append(ch)
        elif ch in LETTERS:
            out.append(LETTERS[ch])
        else:
            base = "".join(
                part for part in unicodedata.normalize("NFD", ch) if not unicodedata.combining(part)
            )
            latin = (
                base
                and all(c in BASIC for c in base)
                and unicodedata.name(ch, "").startswith("LATIN")
            )
            out.append(base if latin else ch)
    return "".join(out)


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def cost(text: str) -> Cost:
    """Return the encoding, length and segment count of ``text`` as one SMS."""
    if is_gsm(text):
        encoding, units = GSM7, sum(2 if ch in EXTENSION else 1 for ch in text)
    else:
        encoding, units = UCS2, _utf16_units(text)
    if units <= SINGLE[encoding]:
        return Cost(encoding, units, 1 if units else 0)
    per = MULTI[encoding]
    # A part never ends between an escape and its septet, nor between the two halves of a
    # surrogate pair: carriers split on characters, so count part by part.
    segments, used = 1, 0
    for ch in text:
        size = (2 if ch in EXTENSION else 1) if encoding == GSM7 else _utf16_units(ch)
        if used + size > per:
            segments, used = segments + 1, 0
        used += size
    return Cost(encoding, units, segments)


def _protected(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _URL.finditer(text)]


def shorten(text: str, limit: int, ellipsis: str = "...") -> str:
    """Cut ``text`` to at most ``limit`` characters at a word boundary, adding ``ellipsis``.

    Never inside a link (a link that does not fit is dropped whole), never inside a
    grapheme (a letter and its combining marks, a surrogate pair, an emoji sequence).
    """
    if len(text) <= limit:
        return text
    room = max(0, limit - len(ellipsis))
    cut = room
    for start, end in _protected(text):
        if start < cut < end:
            cut = start
    # Back to the last space before the cut, so no word is cut in half.
    space = text.rfind(" ", 0, cut + 1)
    if space > 0:
        cut = space
    # Python strings hold code points, so a surrogate pair is never split; a letter and
    # its combining marks, or an emoji joined by ZWJ, are kept together.
    while 0 < cut < len(text) and (
        unicodedata.combining(text[cut]) or text[cut] in JOINERS or text[cut - 1] in JOINERS
    ):
        cut -= 1
    return text[:cut].rstrip(" ,;:-") + ellipsis
