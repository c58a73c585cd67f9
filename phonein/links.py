"""Links to listeners' pages, as listeners reach them (``PUBLIC_URL``)."""

from __future__ import annotations

from flask import current_app

from .models import Forum


def forum_url(forum: Forum) -> str:
    """The forum's public page."""
    return f"{current_app.config['PUBLIC_URL']}/forums/{forum.slug}"


def manage_url(token: str) -> str:
    """The listener's private link: see, change, withdraw or erase their signup."""
    return f"{current_app.config['PUBLIC_URL']}/manage/{token}"
