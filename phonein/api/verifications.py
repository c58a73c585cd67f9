"""Proof of the number in the API: enter the code, or have it sent again."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from .. import challenge, verification
from ..database import commit
from ..errors import Invalid
from ..limits import signup_rate
from ..links import manage_url
from ..models import VerificationChannel
from ..times import utcnow
from ..views import SignupView
from .common import documented_errors
from .schemas import UTC, ApiError, SignupCreated, SignupIn

blp = Blueprint("api_verifications", __name__, description="Proof of the listener's number")
CHANNELS = [c.value for c in VerificationChannel]


class VerificationStarted(Schema):
    verification_id = fields.Str(
        metadata={"description": "Send the code to POST /api/v1/verifications/{id}."}
    )
    channel = fields.Str(
        metadata={"enum": CHANNELS, "description": "sms for mobiles, call for fixed lines"}
    )
    expires_at = UTC(metadata={"description": "The code works until then."})


class ChallengeOut(Schema):
    algorithm = fields.Str(metadata={"enum": ["SHA-256"]})
    challenge = fields.Str(metadata={"description": "hex SHA-256(salt + n) for a secret n"})
    salt = fields.Str(metadata={"description": "carries the expiry (expires=unix seconds)"})
    maxnumber = fields.Int(metadata={"description": "n is at most this"})
    signature = fields.Str(metadata={"description": "the server's HMAC of the challenge"})


class SignupWithChallenge(SignupIn):
    challenge = fields.Raw(
        allow_none=True,
        metadata={
            "description": "With PHONEIN_CHALLENGE=pow: the solution of a challenge from GET "
            "/api/v1/challenge, as an object {algorithm, challenge, number, salt, signature} "
            "(number: the n with SHA-256(salt + n) == challenge) or base64 of its JSON "
            "(ALTCHA's payload). Each solution is accepted once; without a valid one, 400 "
            "naming challenge.",
            "oneOf": [{"type": "object"}, {"type": "string"}],
        },
    )


class SignupKnown(Schema):
    message = fields.Str()


class CodeIn(Schema):
    code = fields.Str(required=True, validate=validate.Length(max=20))
    new_link = fields.Bool(
        load_default=False,
        metadata={
            "description": "For a number that had signed up: give the signup a new private "
            "link (returned as manage_url; the old one stops working). Left false, the old "
            "link keeps working and manage_url is null."
        },
    )


class ResendIn(Schema):
    channel = fields.Str(validate=validate.OneOf(CHANNELS))


def started(found: Any) -> Response:
    """Answer a signup waiting for its code: the same for every number but ids and times."""
    body = VerificationStarted().dump(
        {"verification_id": found.id, "channel": found.channel, "expires_at": found.expires_at}
    )
    response = jsonify(body)
    response.status_code = 202
    return response


def _too_many(view: Any) -> Any:
    return blp.alt_response(429, schema=ApiError, description="Too many codes or tries")(view)


@blp.route("/challenge", methods=["GET"])
@blp.response(200, ChallengeOut)
def get_challenge() -> dict[str, Any]:
    """Get a proof-of-work challenge to solve before signing up (PHONEIN_CHALLENGE=pow).

    Find the number n (0 ≤ n ≤ maxnumber) with hex SHA-256(salt + decimal n) == challenge,
    and send {algorithm, challenge, number: n, salt, signature} as the signup's
    ``challenge``. A browser does it in well under a second; each solution works once.
    """
    return challenge.issue(utcnow())


@blp.route("/verifications/<verification_id>", methods=["POST"])
@signup_rate
@blp.arguments(CodeIn)
@blp.response(201, SignupCreated, description="The number is proved: a new signup")
@blp.alt_response(200, schema=SignupCreated, description="The number is proved: updated")
@documented_errors(blp, 404, 409, 422)
@_too_many
def prove(data: dict[str, Any], verification_id: str) -> tuple[SignupView, int]:
    """Enter the code sent to the number; the signup counts from now on."""
    proof = verification.prove(
        verification_id, data["code"], utcnow(), new_link=bool(data.get("new_link"))
    )
    commit()  # a wrong code's try counts too
    if not proof.ok or proof.registration is None:
        raise Invalid({"code": "That is not the code we sent. Please check it and try again."})
    result = proof.registration
    link = manage_url(result.manage_token) if result.manage_token else None
    return SignupView(result.signup, manage_url=link), 201 if result.created else 200


@blp.route("/verifications/<verification_id>/resend", methods=["POST"])
@signup_rate
@blp.arguments(ResendIn)
@blp.response(202, VerificationStarted)
@documented_errors(blp, 404, 422)
@_too_many
def resend(data: dict[str, Any], verification_id: str) -> Response:
    """Send the code again, by text or by a voice call (at most 5 an hour, 10 a day)."""
    found = verification.resend(verification_id, data.get("channel"), utcnow())
    commit()
    verification.check_sent()  # the code leaves after the commit; was it refused?
    return started(found)
