"""Benchmark: SMS segments per listener, before and after GSM-7-aware, translated texts.

What: one forum shaped like the seed (its title carries a typographic apostrophe and a
dash, its start is in Europe/London, reminders at 24 h, 1 h and 10 min, in English,
French, Spanish and Arabic), and one listener in each of 30 countries, each with their own
zone and one of the four languages. For every listener the texts they receive are built
(confirmation, three reminders, "you're next"), any private link filled in with one of the
real length for ``--public-url``, and each text's segments counted with
``phonein.gsm.cost`` (GSM-7 with its extension table, else UCS-2; 153/67 per part). Before,
the confirmation carried the private link; after, it carries none (it says to reply LINK),
and the text that answers LINK, sent only on request, is counted apart (``link_on_request``:
the most segments it takes per language).

Before: the text builder of ``--base`` (default 6d9c5e1, the last commit before
multilingual, GSM-7-aware texts), read from git (``git show 6d9c5e1:phonein/sms/texts.py``) and
loaded beside the new one, for the same listeners: English only, the title unfolded.
After: this tree's ``phonein.sms.texts`` in each listener's language.

No network, no database: the forum is built in memory inside an app context (for the
public URL and the catalogues). Goal: at most 5 segments per listener in total for
GSM-7 languages (en, fr, es).

Usage: ``python bench/sms_cost.py [--public-url URL] [--base main] [--title T] [--json]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phonein import create_app, gsm  # noqa: E402
from phonein.models import Forum, MessageKind  # noqa: E402
from phonein.sms import texts  # noqa: E402

TITLE = "Who\u2019s paying for the coast \u2014 and who\u2019s moving inland?"
OFFSETS = [86400, 3600, 600]
LANGUAGES = ["en", "fr", "es", "ar"]
# Thirty countries: a zone each and the language their listener reads (written for this
# benchmark: the shape of a global phone-in, not anyone's data).
LISTENERS = [
    ("GB", "Europe/London", "en"),
    ("IE", "Europe/Dublin", "en"),
    ("US", "America/Chicago", "en"),
    ("CA", "America/Toronto", "fr"),
    ("NG", "Africa/Lagos", "en"),
    ("KE", "Africa/Nairobi", "en"),
    ("ZA", "Africa/Johannesburg", "en"),
    ("IN", "Asia/Kolkata", "en"),
    ("PK", "Asia/Karachi", "en"),
    ("AU", "Australia/Sydney", "en"),
    ("NZ", "Pacific/Auckland", "en"),
    ("SG", "Asia/Singapore", "en"),
    ("FR", "Europe/Paris", "fr"),
    ("BE", "Europe/Brussels", "fr"),
    ("SN", "Africa/Dakar", "fr"),
    ("CI", "Africa/Abidjan", "fr"),
    ("CM", "Africa/Douala", "fr"),
    ("HT", "America/Port-au-Prince", "fr"),
    ("ES", "Europe/Madrid", "es"),
    ("MX", "America/Mexico_City", "es"),
    ("AR", "America/Argentina/Buenos_Aires", "es"),
    ("CO", "America/Bogota", "es"),
    ("CL", "America/Santiago", "es"),
    ("PE", "America/Lima", "es"),
    ("EG", "Africa/Cairo", "ar"),
    ("MA", "Africa/Casablanca", "ar"),
    ("SA", "Asia/Riyadh", "ar"),
    ("AE", "Asia/Dubai", "ar"),
    ("JO", "Asia/Amman", "ar"),
    ("IQ", "Asia/Baghdad", "ar"),
]


def _main_builder(base: str) -> ModuleType:
    """Load ``base``'s ``phonein/sms/texts.py`` as a sibling module of the new one."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{base}:phonein/sms/texts.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "texts_before.py"
    path.write_text(source, "utf-8")
    spec = importlib.util.spec_from_file_location("phonein.sms._texts_before", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _forum(title: str) -> Forum:
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(
        hour=19, minute=0, second=0, microsecond=0
    )
    return Forum(
        slug="coast",
        title=title,
        question="Q",
        correspondent="C",
        description="",
        starts_at=starts,
        duration_minutes=60,
        timezone="Europe/London",
        signup_closes_at=starts,
        reminder_offsets=OFFSETS,
        languages=LANGUAGES,
    )


def _received(build: Any, forum: Forum, zone: str, public_url: str) -> list[int]:
    """Segments of each text one listener receives, links filled in at their real length."""
    moments = [(MessageKind.CONFIRMATION, forum.starts_at - timedelta(days=5))]
    moments += [(MessageKind.REMINDER, forum.starts_at - timedelta(seconds=o)) for o in OFFSETS]
    moments += [(MessageKind.NEXT_UP, forum.starts_at + timedelta(minutes=20))]
    return [gsm.cost(texts.as_sent(build(kind, now), public_url)).segments for kind, now in moments]


def run(public_url: str, base: str, title: str = TITLE) -> dict[str, Any]:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-00000",
            "PUBLIC_URL": public_url,
            "SMS_BACKEND": "console",
        }
    )
    before_module = _main_builder(base)
    result: dict[str, Any] = {"public_url": public_url, "base": base, "title": title}
    with app.app_context():
        forum = _forum(title)
        per: dict[str, dict[str, list[int]]] = {
            "before": defaultdict(list),
            "after": defaultdict(list),
        }
        encodings: dict[str, set[str]] = defaultdict(set)
        link_text: dict[str, int] = defaultdict(int)
        for _country, zone, language in LISTENERS:
            before = _received(
                lambda kind, now, z=zone: before_module.body(kind, forum, z, now, manage_url=""),
                forum,
                zone,
                public_url,
            )
            after = _received(
                # The confirmation as these listeners get it: reminders are coming, so it
                # promises one (within its segment limit).
                lambda kind, now, z=zone, lang=language: texts.body(
                    kind, forum, z, now, language=lang, reminder=kind == MessageKind.CONFIRMATION
                ),
                forum,
                zone,
                public_url,
            )
            asked = texts.body(MessageKind.LINK, forum, zone, forum.starts_at, language=language)
            link_text[language] = max(
                link_text[language], gsm.cost(texts.as_sent(asked, public_url)).segments
            )
            per["before"][language].append(sum(before))
            per["after"][language].append(sum(after))
            encodings[language].add(
                gsm.cost(
                    texts.body(
                        MessageKind.REMINDER, forum, zone, forum.starts_at, language=language
                    )
                ).encoding
            )
    for when in ("before", "after"):
        rows = {}
        for group, languages in (
            ("GSM-7 languages (en, fr, es)", ["en", "fr", "es"]),
            ("ar", ["ar"]),
            ("all", LANGUAGES),
        ):
            totals = [n for lang in languages for n in per[when][lang]]
            rows[group] = {
                "listeners": len(totals),
                "mean": round(statistics.mean(totals), 2),
                "max": max(totals),
            }
        result[when] = rows
    result["encodings_after"] = {lang: sorted(found) for lang, found in encodings.items()}
    result["link_on_request"] = dict(link_text)
    gsm_after = result["after"]["GSM-7 languages (en, fr, es)"]
    result["goal_met"] = gsm_after["max"] <= 5
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public-url", default="https://phonein.example.org")
    parser.add_argument(
        "--base",
        default="6d9c5e1",
        help="git revision whose texts are 'before' (default: the last one before "
        "multilingual, GSM-7-aware texts)",
    )
    parser.add_argument("--title", default=TITLE, help="the forum's title")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.public_url, args.base, args.title)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"title: {result['title']!r}; link base {result['public_url']}")
    for when in ("before", "after"):
        for group, row in result[when].items():
            counts = f"mean {row['mean']:5}  max {row['max']}"
            print(f"{when:6} {group:30} listeners {row['listeners']:2}  {counts}")
    print("encodings after:", result["encodings_after"])
    print("the LINK answer (on request, not counted above):", result["link_on_request"])
    print("goal (<= 5 segments per GSM-7 listener):", "met" if result["goal_met"] else "NOT met")


if __name__ == "__main__":
    main()
