"""The JSON API (DESIGN.md's contract table)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from voting.domain.errors import InvalidRequest, InvalidToken
from voting.extensions import csrf, limiter
from voting.services import ballots, polls
from voting.web import openapi
from voting.web.limits import address_key, ballot_token_key, setting

bp = Blueprint("api", __name__, url_prefix="/api")
# Ballots authenticate with the token in the body, never with a cookie: no CSRF surface.
csrf.exempt(bp)


@bp.get("/polls/<slug>")
def poll(slug: str) -> ResponseReturnValue:
    return jsonify(polls.poll_document(polls.get_poll(slug)))


@bp.post("/polls/<slug>/ballots")
@limiter.limit(setting("RATELIMIT_BALLOT_PER_TOKEN"), key_func=ballot_token_key)
@limiter.limit(setting("RATELIMIT_BALLOT_PER_IP"), key_func=address_key)
def cast(slug: str) -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest(
            'Send a JSON object like {"token": "...", "choices": ["project-slug"]}.'
        )
    if "token" not in body:
        raise InvalidToken("The ballot has no token.")
    if "choices" not in body:
        raise InvalidRequest('The ballot has no "choices".')
    result = ballots.cast_ballot(slug, body["token"], body["choices"])
    return jsonify(receipt=result.receipt), 201


@bp.get("/polls/<slug>/results")
def results(slug: str) -> ResponseReturnValue:
    organizer = bool(getattr(current_user, "is_authenticated", False))
    return jsonify(polls.results_view(polls.get_poll(slug), organizer=organizer))


@bp.get("/openapi.json")
def openapi_document() -> ResponseReturnValue:
    return jsonify(openapi.document())
