"""The JSON API (DESIGN.md's contract table)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from voting import live
from voting.domain.errors import InvalidRequest, InvalidToken, VotingError
from voting.domain.timestamps import iso
from voting.extensions import csrf, limiter
from voting.links import public_url
from voting.services import ballots, polls, receipts
from voting.web import limits, openapi, published
from voting.web.sessions import organizer_signed_in

bp = Blueprint("api", __name__, url_prefix="/api")
# Ballots authenticate with the token in the body, never with a cookie: no CSRF surface.
csrf.exempt(bp)


@bp.get("/polls/<slug>")
def poll(slug: str) -> ResponseReturnValue:
    return jsonify(polls.poll_document(polls.get_poll(slug)))


@bp.post("/polls/<slug>/ballots")
@limiter.exempt  # web.limits counts what must be counted; a first ballot consults no counter
def cast(slug: str) -> ResponseReturnValue:
    limits.check_ballot(limits.api_ballot_token())
    try:
        return _cast(slug)
    except VotingError:
        limits.count_refused()  # past a limit this raises RateLimitExceeded instead (429)
        raise


def _cast(slug: str) -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest(
            'Send a JSON object like {"token": "...", "choices": ["project-slug"]}.'
        )
    if "token" not in body:
        raise InvalidToken("The ballot has no token.")
    if "choices" not in body:
        raise InvalidRequest('The ballot has no "choices".')
    result = ballots.cast_ballot(
        slug, body["token"], body["choices"], on_repeat=limits.count_token_repeat
    )
    return jsonify(receipt=result.receipt), 201


# Exempt, like the results page and the stream: a hall refreshes it from one NAT, and an
# answer cut from the held snapshot costs less than the Redis call that would count it.
@bp.get("/polls/<slug>/results")
@limiter.exempt
def results(slug: str) -> ResponseReturnValue:
    """From the live snapshot cache (web.published), with an ETag; 304 for a repeat."""
    organizer = organizer_signed_in()
    snap = published.snapshot(slug)
    audience = live.ORGANIZER if organizer else live.PUBLIC
    etag = published.document_etag(snap, audience)
    if published.unchanged(etag):
        response = published.not_modified(etag)
    else:
        response = published.conditional(
            published.document(snap, audience), etag, shared=not organizer
        )
    if organizer:
        # Counts the public may not see yet: no cache (nginx's micro-cache included) keeps it.
        response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/polls/<slug>/receipts")
def receipt_board(slug: str) -> ResponseReturnValue:
    """The public receipt board (services.receipts): a page of it, or one receipt (?q=)."""
    poll = polls.get_poll(slug)
    publication = receipts.publication(poll)
    doc: dict[str, object] = {
        "poll": poll.slug,
        "published": publication.published,
        "publishes": publication.at,
        "publishes_at": iso(publication.expected_at),
    }
    typed = request.args.get("q", "").strip()
    number = receipts.page_number(request.args.get("page"))  # refused even beside ?q=
    if typed:
        receipt, row = receipts.find(poll, typed)
        doc["total"] = receipts.total(poll) if publication.published else 0
        doc["receipt"] = receipt
        doc["ballots"] = [row.as_dict()] if row else []
        doc["next"] = None
        return jsonify(doc)
    page = receipts.board_page(poll, number)
    following = page.next_number
    doc.update(
        total=page.total,
        page=page.number,
        pages=page.pages,
        ballots=[r.as_dict() for r in page.rows],
        next=public_url("api.receipt_board", slug=poll.slug, page=following) if following else None,
    )
    return jsonify(doc)


@bp.get("/openapi.json")
def openapi_document() -> ResponseReturnValue:
    return jsonify(openapi.document())
