"""The OpenAPI 3.1 description of the JSON API, closed so that drift fails tests/test_openapi*.

Every object schema that the code builds whole says `additionalProperties: false`, and every
error answer lists the codes it can carry: a field or a status the code returns and this
document does not know is a failing test, not a silent surprise for a client.
"""

from __future__ import annotations

from typing import Any

from voting.web.openapi_schemas import JSON, closed, components, error_schema, ref, sse_event

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _error(description: str, *codes: str, retry: bool = False, **extra: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": error_schema(*codes, **extra)}},
    }
    if retry:
        answer["headers"] = _RETRY_AFTER
    return answer


def _ok(description: str, schema: dict[str, Any], media: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


# Conditional requests (the results document): its version as a weak ETag.
_ETAG = {"ETag": {"required": True, "schema": {"type": "string", "pattern": '^W/".+"$'}}}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of a results document already held",
    "schema": {"type": "string"},
}
# Answers more than one route can give.
_NOT_FOUND = _error("not_found: no poll has this slug", "not_found")
_LIMITED = _error(
    "rate_limited: too many requests from this address; see Retry-After",
    "rate_limited",
    retry=True,
    retry_after=True,
)
_BUSY = _error(
    "busy: every database connection stayed busy; database_unavailable: the database does "
    "not answer; storage_full: it has no room to write. Try again after Retry-After",
    "busy",
    "database_unavailable",
    "storage_full",
    retry=True,
)
# A receipt code as a person may type it (voting.domain.receipts.normalise_receipt): twelve
# of Crockford's base32 characters in any case (O, I and L read as 0 and 1), with spaces,
# dashes, dots or underscores anywhere; empty (or blank) asks for no search.
_SEP = "[\\s._\\-\u2010-\u2015\u2212]*"
_RECEIPT_TYPED = f"^(?:\\s*|{_SEP}(?:[0-9A-HJKMNP-TV-Za-hjkmnp-tv-zOoIiLl]{_SEP}){{12}})$"
_SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "description": "The poll's slug",
    "schema": {"type": "string", "minLength": 1},
}


def _paths() -> dict[str, Any]:
    ballot_409 = _error(
        "already_voted (with the receipt of the ballot that counted, when the token cast one), "
        "or poll_not_open",
        "already_voted",
        "poll_not_open",
        receipt=True,
    )
    return {
        "/api/polls/{slug}": {
            "get": {
                "operationId": "getPoll",
                "summary": "A poll and its choices",
                "parameters": [_SLUG],
                "responses": {
                    "200": _ok("The poll", ref("Poll")),
                    "404": _NOT_FOUND,
                    "429": _LIMITED,
                    "503": _BUSY,
                },
            }
        },
        "/api/polls/{slug}/ballots": {
            "post": {
                "operationId": "castBallot",
                "summary": "Cast a ballot with a voter token",
                "parameters": [_SLUG],
                "requestBody": {"required": True, "content": {JSON: {"schema": ref("BallotIn")}}},
                "responses": {
                    "201": _ok(
                        "Recorded; the receipt shows on the public receipt board", ref("Receipt")
                    ),
                    "400": _error(
                        "invalid_request: not a JSON object, no choices, unknown, withdrawn, "
                        "excluded, repeated or too many choices",
                        "invalid_request",
                    ),
                    "403": _error(
                        "invalid_token: missing, forged, tampered, for another poll, revoked "
                        "or never issued",
                        "invalid_token",
                    ),
                    "404": _NOT_FOUND,
                    "409": ballot_409,
                    "413": _error("too_large: the body is over the upload limit", "too_large"),
                    "429": _error(
                        "rate_limited: too many tries with this token or from this address; "
                        "see Retry-After",
                        "rate_limited",
                        retry=True,
                        retry_after=True,
                    ),
                    "503": _error(
                        "busy: every database connection stayed busy; database_unavailable: "
                        "the database does not answer; storage_full: it has no room to write. "
                        "Nothing was written; retry after Retry-After (a ballot that did count "
                        "then answers 409 already_voted with its receipt)",
                        "busy",
                        "database_unavailable",
                        "storage_full",
                        retry=True,
                    ),
                },
            }
        },
        "/api/polls/{slug}/results": {
            "get": {
                "operationId": "getResults",
                "summary": "Turnout, and the results where the poll's results mode shows them",
                "description": (
                    "Served from the live snapshot cache. Each answer carries a weak ETag "
                    "naming the snapshot's version; a repeat with that ETag in If-None-Match "
                    "gets 304 and no body until the results change."
                ),
                "parameters": [_SLUG, _IF_NONE_MATCH],
                "responses": {
                    "200": {**_ok("Results", ref("Results")), "headers": _ETAG},
                    "304": {
                        "description": "Not modified: If-None-Match names the current version",
                        "headers": _ETAG,
                    },
                    "404": _NOT_FOUND,
                    "503": _BUSY,
                },
            }
        },
        "/api/polls/{slug}/receipts": {
            "get": {
                "operationId": "getReceiptBoard",
                "summary": "The public receipt board: every counted ballot's receipt and choices",
                "description": (
                    "Published when the poll is revealed (a live poll's at its close); until "
                    "then `published` is false and nothing is listed. Superseded receipts "
                    "(votes changed on a revote poll) are listed as such. Sorted by receipt; "
                    "`next` links the following page. ?q= finds one receipt as a person "
                    "types it."
                ),
                "parameters": [
                    _SLUG,
                    {
                        "name": "page",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 999_999_999,
                            "default": 1,
                        },
                    },
                    {
                        "name": "q",
                        "in": "query",
                        "description": "A receipt code (case, spaces and dashes do not matter); "
                        "empty: no search",
                        "schema": {"type": "string", "pattern": _RECEIPT_TYPED},
                    },
                ],
                "responses": {
                    "200": _ok("The board, or one page of it", ref("ReceiptBoard")),
                    "400": _error(
                        "invalid_request: the page is not a whole number, or q is not a receipt",
                        "invalid_request",
                    ),
                    "404": _error(
                        "not_found: no poll has this slug, or the page is past the end",
                        "not_found",
                    ),
                    "429": _LIMITED,
                    "503": _BUSY,
                },
            }
        },
        "/api/polls/{slug}/events": {
            "get": {
                "operationId": "streamResults",
                "summary": "Server-Sent Events: live results within the poll's results mode",
                "description": (
                    "`tally` events carry the Results JSON plus `version` (the TallyEvent "
                    "schema); the event id is the version. The first event is sent at once, "
                    '`heartbeat` events (`{"now": <ms>}`) at least every 15 s; an overlay whose '
                    'key was rotated gets a `revoked` event (`{"message"}`) and the stream '
                    "ends. A reconnect with Last-Event-ID (or ?lastEventId=) gets the current "
                    "snapshot. ?key= (an overlay key) and ?view=public choose the public view; "
                    "a logged-in organizer gets theirs otherwise."
                ),
                "parameters": [
                    _SLUG,
                    {"name": "key", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "view",
                        "in": "query",
                        "description": "`public`: what the audience sees, even for an organizer "
                        "(a projected results page); any other value is ignored",
                        "schema": {"type": "string"},
                    },
                    {"name": "lastEventId", "in": "query", "schema": {"type": "string"}},
                    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _ok(
                        "An event stream; the schema describes each event (as OpenAPI 3.2's "
                        "itemSchema does), its data being JSON",
                        {
                            "oneOf": [
                                sse_event("tally", "TallyEvent"),
                                sse_event("heartbeat", "Heartbeat"),
                                sse_event("revoked", "Revoked"),
                            ]
                        },
                        "text/event-stream",
                    ),
                    "403": _error("invalid_token: the overlay key is not valid", "invalid_token"),
                    "404": _NOT_FOUND,
                    "429": _error(
                        "rate_limited: too many streams from this address; see Retry-After",
                        "rate_limited",
                        retry=True,
                        retry_after=True,
                    ),
                    "503": _BUSY,
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "getOpenAPI",
                "summary": "This document",
                "responses": {
                    "200": _ok("The OpenAPI document", {"type": "object"}),
                    "429": _LIMITED,
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "liveness",
                "summary": "Liveness: the process answers (never rate limited)",
                "responses": {
                    "200": _ok("Alive", closed({"status": {"type": "string", "enum": ["ok"]}}))
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readiness",
                "summary": "Readiness: the database (and Redis when configured); never rate limited",
                "responses": {
                    "200": _ok("Ready", ref("Readiness")),
                    "503": _ok("Not ready: a check is unreachable", ref("Readiness")),
                },
            }
        },
    }


def document() -> dict[str, Any]:
    """The whole document, built fresh (it is small)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Community-favorite voting API",
            # 2: a results row carries `tied` and no longer `tied_with` (2026-12-02).
            "version": "2",
            "description": "The public API of the voting service. Every error is JSON with "
            "`error` (a stable code) and `message` (a sentence for a person).",
        },
        "paths": _paths(),
        "components": {"schemas": components()},
    }
