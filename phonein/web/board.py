"""The presenter's live board."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from .. import accounts, forums
from ..models import Role

bp = Blueprint("board", __name__)


@bp.get("/board/<slug>")
@accounts.require_staff(Role.PRESENTER)
def board(slug: str) -> ResponseReturnValue:
    return render_template("board/board.html", forum=forums.get_by_slug(slug))
