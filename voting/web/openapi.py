"""The OpenAPI 3 description of the JSON API."""

from __future__ import annotations

from typing import Any

from voting.domain.statuses import Method, PollStatus, ResultsMode

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _slug_param() -> dict[str, Any]:
    return {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    """The whole document, built fresh (it is small)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Community-favorite voting API",
            "version": "1",
            "description": "The public API of the voting service. Every error is JSON with `error` and `message`.",
        },
        "paths": {
            "/api/polls/{slug}": {
                "get": {
                    "summary": "A poll and its choices",
                    "parameters": [_slug_param()],
                    "responses": {
                        "200": {
                            "description": "The poll",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Poll"}
                                }
                            },
                        },
                        "404": _error("No such poll"),
                    },
                }
            },
            "/api/polls/{slug}/ballots": {
                "post": {
                    "summary": "Cast a ballot with a voter token",
                    "parameters": [_slug_param()],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/BallotIn"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Recorded",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["receipt"],
                                        "properties": {"receipt": {"type": "string"}},
                                    }
                                }
                            },
                        },
                        "400": _error(
                            "invalid_request: bad JSON, unknown, excluded or too many choices"
                        ),
                        "403": _error(
                            "invalid_token: forged, tampered, wrong poll, revoked or never issued"
                        ),
                        "404": _error("No such poll"),
                        "409": _error("already_voted, or poll_not_open"),
                        "429": {
                            "description": "rate_limited; see the Retry-After header",
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                            "content": {"application/json": {"schema": _ERROR}},
                        },
                        "503": {
                            "description": "busy: every database connection stayed busy; "
                            "try again after Retry-After (a ballot that did count then "
                            "answers 409 already_voted with its receipt)",
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                            "content": {"application/json": {"schema": _ERROR}},
                        },
                    },
                }
            },
            "/api/polls/{slug}/results": {
                "get": {
                    "summary": "Turnout, and the results where the poll's results mode shows them",
                    "parameters": [_slug_param()],
                    "responses": {
                        "200": {
                            "description": "Results",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Results"}
                                }
                            },
                        },
                        "404": _error("No such poll"),
                    },
                }
            },
            "/api/polls/{slug}/events": {
                "get": {
                    "summary": "Server-Sent Events: live results within the poll's results mode",
                    "description": (
                        "`tally` events carry the Results JSON plus `version`; the event id is "
                        "the version. The first event is sent at once, `heartbeat` events at "
                        "least every 15 s. A reconnect with Last-Event-ID (or ?lastEventId=) "
                        "gets the current snapshot. ?key= (an overlay key) and ?view=public "
                        "choose the public view; a logged-in organizer gets theirs otherwise."
                    ),
                    "parameters": [
                        _slug_param(),
                        {"name": "key", "in": "query", "schema": {"type": "string"}},
                        {"name": "view", "in": "query", "schema": {"enum": ["public"]}},
                        {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "An event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "403": _error("invalid_token: the overlay key is not valid"),
                        "404": _error("No such poll"),
                        "429": _error("rate_limited: too many streams from this address"),
                    },
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "Alive"}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: database (and Redis when configured)",
                    "responses": {
                        "200": {"description": "Ready"},
                        "503": {"description": "Not ready"},
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "receipt": {"type": "string"},
                    },
                },
                "BallotIn": {
                    "type": "object",
                    "required": ["token", "choices"],
                    "properties": {
                        "token": {"type": "string"},
                        "choices": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    },
                },
                "Choice": {
                    "type": "object",
                    "properties": {
                        "project": {"type": "string"},
                        "title": {"type": "string"},
                        "team": {"type": "string"},
                        "category": {"type": "string"},
                        "theme": {"type": "string"},
                    },
                },
                "Poll": {
                    "type": "object",
                    "properties": {
                        "slug": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {
                            "type": "string",
                            "enum": [s.value for s in PollStatus],
                        },
                        "method": {"type": "string", "enum": [m.value for m in Method]},
                        "max_choices": {"type": "integer"},
                        "results": {"type": "string", "enum": [m.value for m in ResultsMode]},
                        "opens_at": {"type": "string", "format": "date-time", "nullable": True},
                        "closes_at": {"type": "string", "format": "date-time", "nullable": True},
                        "choices": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Choice"},
                        },
                    },
                },
                "Placing": {
                    "type": "object",
                    "properties": {
                        "project": {"type": "string"},
                        "title": {"type": "string"},
                        "team": {"type": "string"},
                        "votes": {"type": "integer"},
                        "rank": {"type": "integer"},
                    },
                },
                "Results": {
                    "type": "object",
                    "required": ["status", "turnout"],
                    "properties": {
                        "poll": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "string"},
                        "results_mode": {"type": "string", "enum": [m.value for m in ResultsMode]},
                        "turnout": {"type": "integer"},
                        "places": {"type": "integer"},
                        "opens_at": {"type": "string", "format": "date-time", "nullable": True},
                        "closes_at": {"type": "string", "format": "date-time", "nullable": True},
                        "version": {
                            "type": "integer",
                            "description": "Only in event-stream tally events",
                        },
                        "tie_seed_hash": {"type": "string", "nullable": True},
                        "tie_seed": {"type": "string"},
                        "reveal_step": {"type": "integer"},
                        "results": {
                            "type": "array",
                            "description": "Omitted while the results mode hides the counts",
                            "items": {"$ref": "#/components/schemas/Placing"},
                        },
                    },
                },
            }
        },
    }
