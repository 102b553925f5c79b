"""Rate limits: the key functions and the limits, declared beside the routes they guard.

No key may ever be empty: flask-limiter skips a limit whose key is empty.

Ballots (README "Rate limits"): a ballot whose token's signature holds, and that records a
first vote, consults no counter at all; the database already guarantees one vote per
token id. Counters are kept only for what records nothing: per address for every refused
ballot (a CPU cap, so a hall behind one NAT keeps getting the helpful 403), and per token
id for a signed token's repeats. The ballot routes are exempt from flask-limiter's own
per-route evaluation (it ran twice per request and was the largest cost left in the
profile); they call check_ballot and count_refused, whose counters are flask-limiter's.
"""

from __future__ import annotations

from collections.abc import Callable

import limits
from flask import current_app, g, request

from voting.domain.tokens import VoterToken
from voting.extensions import client_address, limiter
from voting.web.voter_cookie import any_cookie_token, decode_token

# Both ballot routes (API and form) share these counters.
REFUSED_SCOPE = "ballot-refused"
TOKEN_SCOPE = "ballot-token"  # noqa: S105 (a counter's name, not a secret)


def address_key() -> str:
    """The client address as ProxyFix settled it (X-Forwarded-For only with VOTING_PROXY_HOPS)."""
    return "addr:" + client_address()


def api_ballot_token() -> VoterToken | None:
    """A ballot POST's token from its JSON body, if its signature holds (checked once)."""
    if "ballot_token" not in g:
        body = request.get_json(silent=True)
        g.ballot_token = decode_token(body.get("token") if isinstance(body, dict) else None)
    token: VoterToken | None = g.ballot_token
    return token


def form_ballot_token() -> VoterToken | None:
    """A form ballot's token from its voter cookie, if its signature holds (checked once)."""
    if "ballot_token" not in g:
        g.ballot_token = any_cookie_token()
    token: VoterToken | None = g.ballot_token
    return token


def _ballot_token_key() -> str:
    token = g.get("ballot_token")
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


def token_repeats() -> str:
    """RATELIMIT_BALLOT_PER_TOKEN less one: a token's first ballot is one of its attempts,
    but it never reaches Redis (the database records it), so the counter holds the rest."""
    item = limits.parse(str(current_app.config["RATELIMIT_BALLOT_PER_TOKEN"]))
    return f"{max(item.amount - 1, 0)}/{item.multiples} {item.GRANULARITY.name}"


@limiter.shared_limit(setting("RATELIMIT_BALLOT_PER_IP"), scope=REFUSED_SCOPE, key_func=address_key)
def _refused_from_address() -> None:
    """Counts one refused ballot against its address (RateLimitExceeded past the cap)."""


@limiter.shared_limit(token_repeats, scope=TOKEN_SCOPE, key_func=_ballot_token_key)
def count_token_repeat() -> None:
    """Counts one more attempt of this request's signed token (RateLimitExceeded past its limit).

    Called for a refused ballot and, before anything is written, for a revote.
    """


def check_ballot(token: VoterToken | None) -> None:
    """Before a ballot route does any work: a token whose signature fails (or none at all)
    is refused without the database, so it is counted against its address right away."""
    if token is None:
        _refused_from_address()


def count_refused() -> None:
    """A ballot with a signed token was refused: count it per token and per address."""
    if g.get("ballot_token") is None:
        return  # counted already, by check_ballot
    count_token_repeat()
    _refused_from_address()
