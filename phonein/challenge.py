"""A self-hosted proof-of-work on signups (PHONEIN_CHALLENGE=pow), in ALTCHA's format.

The server issues ``{algorithm, challenge, salt, maxnumber, signature}``: ``challenge`` is
SHA-256(salt + n) for a secret random n ≤ maxnumber, and ``signature`` an HMAC of it under
the app's secret, so no state is kept until a solution comes back. The browser (or an API
client) tries numbers until SHA-256(salt + number) matches and sends
``{algorithm, challenge, number, salt, signature}`` back, as JSON or base64 of it. The salt
carries its expiry; a solution is accepted once (``ChallengeUse``). No third party, nothing
tracked: the cost is CPU, about ``maxnumber / 2`` hashes on average.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .database import per_dialect, upsert_insert
from .errors import DomainError
from .extensions import db
from .i18n import _
from .models import ChallengeUse

ALGORITHM = "SHA-256"


class ChallengeFailed(DomainError):
    """No valid proof-of-work solution came with the signup."""

    status = 400
    code = "challenge"

    def __init__(self, why: str):
        super().__init__(
            f"challenge: {why}",
            fields={"challenge": why},
        )


def required(config: Any) -> bool:
    """Say whether signups must carry a solution (PHONEIN_CHALLENGE=pow)."""
    return str(config.get("CHALLENGE", "off")).lower() == "pow"


def _sign(challenge: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"phonein-pow:" + challenge.encode(), hashlib.sha256).hexdigest()


def _digest(salt: str, number: int) -> str:
    return hashlib.sha256(f"{salt}{number}".encode()).hexdigest()


def issue(now: datetime) -> dict[str, Any]:
    """Return a new challenge for a browser or API client to solve."""
    config = current_app.config
    maxnumber = int(config["CHALLENGE_MAX_NUMBER"])
    expires = now + timedelta(seconds=int(config["CHALLENGE_SECONDS"]))
    salt = f"{secrets.token_hex(12)}?expires={int(expires.timestamp())}&"
    challenge = _digest(salt, secrets.randbelow(maxnumber + 1))
    return {
        "algorithm": ALGORITHM,
        "challenge": challenge,
        "salt": salt,
        "maxnumber": maxnumber,
        "signature": _sign(challenge),
    }


def _payload(solution: Any) -> dict[str, Any]:
    if isinstance(solution, dict):
        return solution
    if isinstance(solution, str) and solution.strip():
        text = solution.strip()
        if not text.startswith("{"):
            try:
                text = base64.b64decode(text, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise ChallengeFailed(_("The solution is not readable.")) from None
        try:
            found = json.loads(text)
        except ValueError:
            raise ChallengeFailed(_("The solution is not readable.")) from None
        if isinstance(found, dict):
            return found
    raise ChallengeFailed(_("Please solve the challenge from GET /api/v1/challenge first."))


def check(solution: Any, now: datetime) -> None:
    """Accept a solution once; raise ChallengeFailed (400 naming ``challenge``) otherwise."""
    payload = _payload(solution)
    challenge, salt = payload.get("challenge"), payload.get("salt")
    number, signature = payload.get("number"), payload.get("signature")
    if (
        payload.get("algorithm") != ALGORITHM
        or not isinstance(challenge, str)
        or not isinstance(salt, str)
        or not isinstance(signature, str)
        or isinstance(number, bool)
        or not isinstance(number, int)
        or len(challenge) != 64
        or len(salt) > 100
        # What we issue is ASCII: compare_digest refuses other text, and a lone
        # surrogate cannot be hashed (both a 500 otherwise).
        or not (challenge.isascii() and salt.isascii() and signature.isascii())
    ):
        raise ChallengeFailed(_("The solution is incomplete."))
    if not hmac.compare_digest(signature, _sign(challenge)):
        raise ChallengeFailed(_("That challenge was not issued here."))
    if not 0 <= number <= int(current_app.config["CHALLENGE_MAX_NUMBER"]) or not (
        hmac.compare_digest(_digest(salt, number), challenge)
    ):
        raise ChallengeFailed(_("That is not the solution."))
    expires = _expiry(salt)
    if expires is None or expires <= now:
        raise ChallengeFailed(_("The challenge has expired: please solve a new one."))
    used = db.session.scalar(_use_statement(), {"challenge": challenge, "expires_at": expires})
    if used is None:
        raise ChallengeFailed(_("That solution was used already: please solve a new challenge."))
    _forget_expired(now)


# The INSERT … ON CONFLICT DO NOTHING RETURNING that spends a solution, built once per
# dialect and given the row as parameters rather than rebuilt (and its cache key computed)
# for every signup.
@per_dialect
def _use_statement() -> Any:
    return (
        upsert_insert(ChallengeUse.__table__)
        .on_conflict_do_nothing(index_elements=["challenge"])
        .returning(ChallengeUse.__table__.c.challenge)
    )


# Spent solutions past their expiry are only housekeeping (an expired solution is refused
# before its use is looked up), so each process deletes them at most once a minute rather
# than on every signup: one statement fewer on the signup path, and the table still holds
# no more than the challenge lifetime plus a minute of solutions.
CLEANUP_EVERY = timedelta(minutes=1)
_cleanup_due = datetime.min.replace(tzinfo=UTC)


def _forget_expired(now: datetime) -> None:
    global _cleanup_due
    if now < _cleanup_due:
        return
    _cleanup_due = now + CLEANUP_EVERY
    db.session.execute(sa.delete(ChallengeUse).where(ChallengeUse.expires_at < now))


def _expiry(salt: str) -> datetime | None:
    for part in salt.split("?", 1)[-1].split("&"):
        name, _, value = part.partition("=")
        if name == "expires" and value.isdigit():
            return datetime.fromtimestamp(int(value), UTC)
    return None
