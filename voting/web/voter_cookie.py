"""The voter's token travels in an HttpOnly cookie scoped to its poll, never in a URL."""

from __future__ import annotations

from flask import request, url_for
from werkzeug.wrappers import Response

from voting.models import Poll

COOKIE_PREFIX = "vt_"
COOKIE_MAX_AGE = 60 * 60 * 24 * 30


def cookie_name(poll: Poll) -> str:
    return f"{COOKIE_PREFIX}{poll.id}"


def set_voter_cookie(response: Response, poll: Poll, token: str) -> Response:
    """Store the token for this poll's pages only; no-store and no-referrer on the way."""
    response.set_cookie(
        cookie_name(poll),
        token,
        max_age=COOKIE_MAX_AGE,
        path=url_for("public.ballot", slug=poll.slug),
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
