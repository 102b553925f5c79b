"""The OpenAPI document's component schemas and the helpers that build closed ones."""

from __future__ import annotations

from typing import Any

from voting.domain.statuses import Eligibility, Method, PollStatus, ResultsMode
from voting.domain.submissions import SLUG_RE

JSON = "application/json"
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def closed(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
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
    return closed(properties, optional=optional)


def sse_event(name: str, data: str) -> dict[str, Any]:
    """One Server-Sent Event as schemathesis and EventSource see it: fields, data as JSON."""
    return closed(
        {
            "event": {"const": name},
            "data": {
                "type": "string",
                "contentMediaType": JSON,
                "contentSchema": ref(data),
            },
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "retry": {"type": "integer", "minimum": 0},
        },
        optional=("id", "retry"),
    )


def components() -> dict[str, Any]:
    """components.schemas: every body the API sends, closed where the code builds it whole."""
    statuses = [s.value for s in PollStatus]
    modes = [m.value for m in ResultsMode]
    results = {
        "poll": {"type": "string", "description": "The poll's slug"},
        "title": {"type": "string"},
        "status": {"type": "string", "enum": statuses},
        "results_mode": {"type": "string", "enum": modes},
        "turnout": {"type": "integer", "minimum": 0},
        "places": {"type": "integer", "minimum": 0, "description": "Projects on the ballot"},
        "opens_at": NULLABLE_TIME,
        "closes_at": NULLABLE_TIME,
        "tie_seed_hash": {
            "type": ["string", "null"],
            "description": "sha256 of the tie-break seed, committed when the poll opens; "
            "null while it is a draft",
        },
        "fingerprint": {
            "type": ["string", "null"],
            "pattern": "^[0-9a-f]{64}$",
            "description": "SHA-256 of the poll's canonical definition (choices, method, max "
            "choices, eligibility, tie-seed hash, tokens issued), published when the poll "
            "opens and changed, with an audit entry, by any later change; null while a draft",
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
            "items": ref("Placing"),
        },
        "tie_break": {
            "type": "string",
            "description": "How tied places are ordered; present when a shown place is tied",
        },
        "tie_break_help": {
            "type": "string",
            "format": "uri",
            "description": "Where the results page explains how to recompute the draw",
        },
    }
    optional = ("tie_seed", "reveal_step", "results", "tie_break", "tie_break_help")
    check_state = {"type": "string", "enum": ["ok", "unreachable"]}
    return {
        "Error": {
            **closed(
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
        "Receipt": closed({"receipt": {"type": "string", "minLength": 1}}),
        "Choice": closed(
            {
                "project": {"type": "string", "description": "The project's slug"},
                "title": {"type": "string"},
                "team": {"type": "string"},
                "category": {"type": "string"},
                "theme": {"type": "string"},
            }
        ),
        "Poll": closed(
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
                "opens_at": NULLABLE_TIME,
                "closes_at": NULLABLE_TIME,
                "tie_seed_hash": results["tie_seed_hash"],
                "fingerprint": results["fingerprint"],
                "choices": {"type": "array", "items": ref("Choice")},
            }
        ),
        "Placing": closed(
            {
                "project": {"type": "string"},
                "title": {"type": "string"},
                "team": {"type": "string"},
                "votes": {"type": "integer", "minimum": 0},
                "rank": {"type": "integer", "minimum": 1},
                "tied": {
                    "type": "boolean",
                    "description": "Another shown place has as many votes; the shown places "
                    "with the same `votes` are the ones it is tied with. While the staged "
                    "reveal runs (`revealing`), the shown places are those with `rank` above "
                    "`places` - `reveal_step`; a place not shown yet is never marked",
                },
            }
        ),
        "ReceiptBoard": closed(
            {
                "poll": {"type": "string", "description": "The poll's slug"},
                "published": {"type": "boolean"},
                "publishes": {
                    "type": "string",
                    "enum": ["close", "reveal"],
                    "description": "When the board is published: a live poll's at its close, "
                    "any other at the full reveal",
                },
                "publishes_at": NULLABLE_TIME,
                "total": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Receipts on the board (0 until it is published)",
                },
                "page": {"type": "integer", "minimum": 1},
                "pages": {"type": "integer", "minimum": 0},
                "receipt": {"type": "string", "description": "The searched receipt, normalised"},
                "ballots": {"type": "array", "items": ref("BoardRow")},
                "next": {"type": ["string", "null"], "format": "uri"},
            },
            optional=("page", "pages", "receipt"),
        ),
        "BoardRow": closed(
            {
                "receipt": {"type": "string"},
                "choices": {"type": "array", "items": {"type": "string"}},
                "status": {"type": "string", "enum": ["counted", "superseded"]},
            }
        ),
        "Results": closed(results, optional=optional),
        "TallyEvent": {
            **closed({**results, "version": {"type": "integer"}}, optional=optional),
            "description": "The data of an event-stream `tally` event: Results plus `version`",
        },
        "Heartbeat": closed({"now": {"type": "integer", "description": "Server time, ms"}}),
        "Revoked": closed({"message": {"type": "string", "minLength": 1}}),
        "Readiness": closed(
            {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "checks": closed(
                    {"database": check_state, "redis": check_state}, optional=("redis",)
                ),
            }
        ),
    }
