"""Pieces every API module uses: documented errors, auth doc, URLs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_smorest import Blueprint

from ..models import Role, User
from .schemas import ApiError

PRODUCER_DOC: dict[str, Any] = {"security": [{"bearerAuth": []}]}
ERRORS = {
    401: "No or bad credentials",
    403: "Role not allowed",
    404: "Not found",
    409: "The state forbids the action",
    422: "Invalid fields",
}


View = Callable[..., Any]


def documented_errors(blp: Blueprint, *codes: int) -> Callable[[View], View]:
    """Stack ``alt_response`` for each error code so the OpenAPI document lists them."""

    def decorator(view: View) -> View:
        for code in codes:
            view = blp.alt_response(code, schema=ApiError, description=ERRORS[code])(view)
        return view

    return decorator


def is_producer(user: User | None) -> bool:
    return user is not None and user.can(Role.PRODUCER)
