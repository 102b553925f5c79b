"""The OpenAPI 3.1 description of the JSON API, closed so that drift fails tests/test_openapi*.

Every object schema that the code builds whole says `additionalProperties: false`, and every
error answer lists the codes it can carry: a field or a status the code returns and this
document does not know is a failing test, not a silent surprise for a client.
"""

from __future__ import annotations

from typing import Any

from voting.domain.statuses import Eligibility, Method, PollStatus, ResultsMode
from voting.domain.submissions import SLUG_RE

JSON = "application/json"
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _closed(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object with exactly these properties, all required but the `optional` ones."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def error_schema(*codes: str, receipt: bool = False, retry_after: bool = False) -> dict[str, Any]:
    """The Error shape narrowed to the codes (and extra fields) one answer can carry."""
    properties: dict[str, Any] = {
        "error": {"type": "string", "enum": list(codes)},
        "message": {"type": "string", "minLength": 1, "description": "A sentence for a person"},
    }
    optional: tuple[str, ...] = ()
    if receipt:
        properties["receipt"] = {
            "type": "string",
            "description": "already_voted: the receipt of the ballot this token cast",
        }
        optional = ("receipt",)
    if retry_after:
        properties["retry_after"] = {"type": "integer", "minimum": 1}
    return _closed(properties, optional=optional)


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


def _sse(name: str, data: str) -> dict[str, Any]:
    """One Server-Sent Event as schemathesis and EventSource see it: fields, data as JSON."""
    return _closed(
        {
            "event": {"const": name},
            "data": {
                "type": "string",
                "contentMediaType": JSON,
                "contentSchema": _ref(data),
            },
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "retry": {"type": "integer", "minimum": 0},
        },
        optional=("id", "retry"),
    )


# Answers more than one route can give.
_NOT_FOUND = _error("not_found: no poll has this slug", "not_found")
_LIMITED = _error(
    "rate_limited: too many requests from this address; see Retry-After",
    "rate_limited",
    retry=True,
    retry_after=True,
)
_BUSY = _error(
    "busy: every database connection stayed busy; try again after Retry-After",
    "busy",
    retry=True,
)
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
                    "200": _ok("The poll", _ref("Poll")),
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
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("BallotIn")}}},
                "responses": {
                    "201": _ok(
                        "Recorded; the receipt shows on the public receipt board", _ref("Receipt")
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
                        "busy: every database connection stayed busy, before anything was "
                        "written; retry after Retry-After (a ballot that did count then "
                        "answers 409 already_voted with its receipt)",
                        "busy",
                        retry=True,
                    ),
                },
            }
        },
        "/api/polls/{slug}/results": {
            "get": {
                "operationId": "getResults",
                "summary": "Turnout, and the results where the poll's results mode shows them",
                "parameters": [_SLUG],
                "responses": {
                    "200": _ok("Results", _ref("Results")),
                    "404": _NOT_FOUND,
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
                                _sse("tally", "TallyEvent"),
                                _sse("heartbeat", "Heartbeat"),
                                _sse("revoked", "Revoked"),
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
                    "200": _ok("Alive", _closed({"status": {"type": "string", "enum": ["ok"]}}))
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readiness",
                "summary": "Readiness: the database (and Redis when configured); never rate limited",
                "responses": {
                    "200": _ok("Ready", _ref("Readiness")),
                    "503": _ok("Not ready: a check is unreachable", _ref("Readiness")),
                },
            }
        },
    }


def _schemas() -> dict[str, Any]:
    statuses = [s.value for s in PollStatus]
    modes = [m.value for m in ResultsMode]
    results = {
        "poll": {"type": "string", "description": "The poll's slug"},
        "title": {"type": "string"},
        "status": {"type": "string", "enum": statuses},
        "results_mode": {"type": "string", "enum": modes},
        "turnout": {"type": "integer", "minimum": 0},
        "places": {"type": "integer", "minimum": 0, "description": "Projects on the ballot"},
        "opens_at": _NULLABLE_TIME,
        "closes_at": _NULLABLE_TIME,
        "tie_seed_hash": {
            "type": ["string", "null"],
            "description": "sha256 of the tie-break seed, committed when the poll opens; "
            "null while it is a draft",
        },
        "tie_seed": {"type": "string", "description": "Published once the poll is revealed"},
        "reveal_step": {
            "type": "integer",
            "minimum": 0,
            "description": "Places shown so far (revealing, revealed)",
        },
        "results": {
            "type": "array",
            "description": "Omitted while the results mode hides the counts; during a "
            "staged reveal, the places shown so far",
            "items": _ref("Placing"),
        },
    }
    optional = ("tie_seed", "reveal_step", "results")
    check_state = {"type": "string", "enum": ["ok", "unreachable"]}
    return {
        "Error": {
            **_closed(
                {
                    "error": {"type": "string", "description": "A stable code"},
                    "message": {"type": "string", "minLength": 1},
                    "receipt": {"type": "string"},
                    "retry_after": {"type": "integer", "minimum": 1},
                },
                optional=("receipt", "retry_after"),
            ),
            "description": "Every error answer has this shape; each response narrows `error` "
            "to its codes. `receipt`: 409 already_voted; `retry_after` (seconds): 429.",
        },
        "BallotIn": {
            "type": "object",
            "required": ["token", "choices"],
            "properties": {
                "token": {"type": "string", "description": "The signed voter token"},
                "choices": {
                    "type": "array",
                    "items": {"type": "string", "pattern": SLUG_RE.pattern, "maxLength": 80},
                    "minItems": 1,
                    "uniqueItems": True,
                    "description": "Project slugs: one (plurality) or up to max_choices (approval)",
                },
            },
        },
        "Receipt": _closed({"receipt": {"type": "string", "minLength": 1}}),
        "Choice": _closed(
            {
                "project": {"type": "string", "description": "The project's slug"},
                "title": {"type": "string"},
                "team": {"type": "string"},
                "category": {"type": "string"},
                "theme": {"type": "string"},
            }
        ),
        "Poll": _closed(
            {
                "slug": {"type": "string"},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "status": {"type": "string", "enum": statuses},
                "method": {"type": "string", "enum": [m.value for m in Method]},
                "max_choices": {"type": "integer", "minimum": 1},
                "eligibility": {"type": "string", "enum": [e.value for e in Eligibility]},
                "results": {"type": "string", "enum": modes, "description": "The results mode"},
                "revote": {"type": "boolean", "description": "A token may replace its ballot"},
                "opens_at": _NULLABLE_TIME,
                "closes_at": _NULLABLE_TIME,
                "tie_seed_hash": results["tie_seed_hash"],
                "choices": {"type": "array", "items": _ref("Choice")},
            }
        ),
        "Placing": _closed(
            {
                "project": {"type": "string"},
                "title": {"type": "string"},
                "team": {"type": "string"},
                "votes": {"type": "integer", "minimum": 0},
                "rank": {"type": "integer", "minimum": 1},
            }
        ),
        "Results": _closed(results, optional=optional),
        "TallyEvent": {
            **_closed({**results, "version": {"type": "integer"}}, optional=optional),
            "description": "The data of an event-stream `tally` event: Results plus `version`",
        },
        "Heartbeat": _closed({"now": {"type": "integer", "description": "Server time, ms"}}),
        "Revoked": _closed({"message": {"type": "string", "minLength": 1}}),
        "Readiness": _closed(
            {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "checks": _closed(
                    {"database": check_state, "redis": check_state}, optional=("redis",)
                ),
            }
        ),
    }


def document() -> dict[str, Any]:
    """The whole document, built fresh (it is small)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Community-favorite voting API",
            "version": "1",
            "description": "The public API of the voting service. Every error is JSON with "
            "`error` (a stable code) and `message` (a sentence for a person).",
        },
        "paths": _paths(),
        "components": {"schemas": _schemas()},
    }
