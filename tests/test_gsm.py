"""What a text costs: GSM-7 or UCS-2, segments, folding and cutting (phonein.gsm)."""

from __future__ import annotations

import pytest

from phonein import gsm


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", gsm.GSM7, 0),
        ("a" * 160, gsm.GSM7, 1),
        ("a" * 161, gsm.GSM7, 2),
        ("a" * 306, gsm.GSM7, 2),
        ("a" * 307, gsm.GSM7, 3),
        # The extension table costs two septets a character.
        ("€" * 80, gsm.GSM7, 1),
        ("€" * 81, gsm.GSM7, 2),
        # GSM has é, ñ, ü, à and ¿ but not ã, ç or a typographic apostrophe.
        ("¿Qué tal, señor? à bientôt"[:12], gsm.GSM7, 1),
        ("São" + "a" * 67, gsm.UCS2, 1),
        ("São" + "a" * 68, gsm.UCS2, 2),
        ("It\u2019s" + "a" * 130, gsm.UCS2, 2),
        ("ب" * 134, gsm.UCS2, 2),
        ("ب" * 135, gsm.UCS2, 3),
        # Outside the BMP: two UTF-16 units each, never split across parts.
        ("😀" * 35, gsm.UCS2, 1),
        ("😀" * 36, gsm.UCS2, 2),
        ("a" * 66 + "😀" + "a" * 66, gsm.UCS2, 3),
    ],
)
def test_cost_counts_encoding_and_segments(text, encoding, segments):
    cost = gsm.cost(text)
    assert (cost.encoding, cost.segments) == (encoding, segments)


def test_an_escape_never_straddles_two_parts():
    # 152 septets then a two-septet "€": the euro goes whole into the second part.
    text = "a" * 152 + "€" + "a" * 10
    assert gsm.cost(text).units == 164 and gsm.cost(text).segments == 2
    assert gsm.cost("a" * 152 + "€" + "a" * 152).segments == 3


def test_limits_are_two_gsm_segments_and_three_ucs2():
    assert gsm.cost("a" * 306).over is False and gsm.cost("a" * 307).over is True
    assert gsm.cost("ب" * 201).over is False and gsm.cost("ب" * 202).over is True


def test_fold_makes_typographic_titles_gsm_and_keeps_letters():
    title = "\u201cWho\u2019s next?\u201d \u2014 a debate\u2026 on\u00a0cities\u202f!"
    folded = gsm.fold(title)
    assert folded == '"Who\'s next?" - a debate... on cities !'
    assert gsm.is_gsm(folded)
    # Letters are not typography: "ã" and Arabic stay as written.
    assert gsm.fold("São Paulo \u2013 القاهرة") == "São Paulo - القاهرة"


def test_fold_letters_drops_only_the_accents_gsm_lacks():
    assert gsm.fold_letters("São Paulo, ça, août, ¿Qué?, señor, über") == (
        "Sao Paulo, ca, aout, ¿Qué?, señor, über"
    )
    assert gsm.fold_letters("القاهرة") == "القاهرة"


def test_shorten_cuts_between_words_and_never_inside_a_link():
    assert gsm.shorten("Short enough", 20) == "Short enough"
    assert gsm.shorten("Hello wonderful world of phone-ins", 20) == "Hello wonderful..."
    cut = gsm.shorten("Read https://example.org/a/very/long/path today please", 30)
    assert cut == "Read..."
    # A letter and its combining accent stay together.
    decomposed = "Cafe\u0301 " * 10
    short = gsm.shorten(decomposed, 13)
    assert not short.rstrip(".").endswith("e") or short.count("\u0301") == short.count("e")
    # Emoji joined by ZWJ are not split.
    family = "👩\u200d👩\u200d👧 " * 5
    assert "\u200d." not in gsm.shorten(family, 12)
