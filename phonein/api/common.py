"""Pieces every API module uses: documented errors, auth doc, URLs."""

from __future__ import annotations

from ..models import Role
from .schemas import ApiError

PRODUCER_DOC = {"security": [{"bearerAuth": []}]}
ERRORS = {
    401: "No or bad credentials",
    403: "Role not allowed",
    404: "Not found",
    409: "The state forbids the action",
    422: "Invalid fields",
}


def documented_errors(blp, *codes: int):  # type: ignore[no-untyped-def]
    """Stack ``alt_response`` for each error code so the OpenAPI document lists them."""

    def decorator(view):  # type: ignore[no-untyped-def]
        for code in codes:
            view = blp.alt_response(code, schema=ApiError, description=ERRORS[code])(view)
        return view

    return decorator


def is_producer(user) -> bool:  # type: ignore[no-untyped-def]
    return user is not None and user.can(Role.PRODUCER)
