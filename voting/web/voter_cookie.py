"""The voter's token travels in an HttpOnly cookie scoped to its poll, never in a URL.

Decoding a token here checks its signature only; whether it was issued and is still good
is the services' question (voting.services.voters).
"""

from __future__ import annotations

from flask import request, url_for
from werkzeug.wrappers import Response

from voting.domain.errors import InvalidToken
from voting.domain.tokens import VoterToken, read_voter_token
from voting.models import Poll
from voting.services.issuing import voter_signer

COOKIE_PREFIX = "vt_"
COOKIE_MAX_AGE = 60 * 60 * 24 * 30


def cookie_name(poll: Poll) -> str:
    return f"{COOKIE_PREFIX}{poll.id}"


def raw_cookie_token(poll: Poll) -> str | None:
    """The token string this browser holds for the poll, unchecked, or None."""
    return request.cookies.get(cookie_name(poll)) or None


def decode_token(raw: object) -> VoterToken | None:
    """The token a string carries, if its signature holds; None for anything else."""
    if not isinstance(raw, str):
        return None
    try:
        return read_voter_token(voter_signer(), raw)
    except InvalidToken:
        return None


def cookie_token(poll: Poll) -> VoterToken | None:
    """The decoded token of this poll's cookie, if it is one for this poll."""
    token = decode_token(raw_cookie_token(poll))
    return token if token is not None and token.poll_id == poll.id else None


def any_cookie_token() -> VoterToken | None:
    """The first voter cookie that decodes, whatever its poll (a limiter key needs no poll)."""
    for name, raw in request.cookies.items():
        if name.startswith(COOKIE_PREFIX):
            token = decode_token(raw)
            if token is not None:
                return token
    return None


def set_voter_cookie(response: Response, poll: Poll, token: str) -> Response:
    """Store the token for this poll's pages only.

    Every route that calls this answers no-store and no-referrer (TOKEN_PAGE in
    voting.web.security); a new caller must be listed there too.
    """
    response.set_cookie(
        cookie_name(poll),
        token,
        max_age=COOKIE_MAX_AGE,
        path=url_for("public.ballot", slug=poll.slug),
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return response
