"""Rate limits: the key functions and the limits, declared beside the routes they guard.

No key may ever be empty: flask-limiter skips a limit whose key is empty.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, request

from voting.extensions import client_address
from voting.web.voter_cookie import any_cookie_token, decode_token


def address_key() -> str:
    """The client address as ProxyFix settled it (X-Forwarded-For only with VOTING_PROXY_HOPS)."""
    return "addr:" + client_address()


def ballot_token_key() -> str:
    """A ballot POST: the decoded token id (signature checked), else the client address."""
    body = request.get_json(silent=True)
    token = decode_token(body.get("token") if isinstance(body, dict) else None)
    return "token:" + token.token_id if token is not None else address_key()


def cookie_token_key() -> str:
    """Form ballots: the decoded token id from a voter cookie, else the client address."""
    token = any_cookie_token()
    return "token:" + token.token_id if token is not None else address_key()


def login_username_key() -> str:
    """Organizer login attempts per username, so one account cannot be guessed from many IPs."""
    username = request.form.get("username", "").strip().casefold()[:80]
    return "user:" + (username or "(empty)")


def setting(name: str) -> Callable[[], str]:
    """A limit read from config at request time, so VOTING_RATELIMIT_* can change it."""

    def limit() -> str:
        return str(current_app.config[name])

    return limit
