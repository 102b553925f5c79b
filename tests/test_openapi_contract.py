"""The OpenAPI document against the running app: real answers validated, every status provoked.

Each operation's test provokes every status its document lists (200 ... 503) and validates
each answer's body and required headers against the document's schemas, which are closed
(`additionalProperties: false`): a field, a status or a route the code has and the document
lacks fails here. `tests/test_openapi_fuzz.py` lets schemathesis search for the same drift.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_spec
from werkzeug.test import TestResponse

from tests.admin_support import Console
from tests.live_support import free_port
from tests.support import project_slugs
from voting.domain.statuses import ResultsMode
from voting.extensions import db
from voting.models import utcnow
from voting.services import issuing, overlay, polls
from voting.web import openapi

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(datetime.fromisoformat(value).tzinfo)


class Contract:
    """Checks answers against the document and remembers which statuses were seen."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.seen: dict[tuple[str, str], set[str]] = defaultdict(set)

    def validate(self, value: Any, schema: dict[str, Any], where: str) -> None:
        root = {**schema, "components": self.document["components"]}
        errors = sorted(
            Draft202012Validator(root, format_checker=FORMATS).iter_errors(value), key=str
        )
        assert not errors, f"{where} does not match the document:\n" + "\n".join(
            f"- at {list(e.absolute_path)}: {e.message}" for e in errors
        )

    def check(self, method: str, path: str, response: TestResponse) -> Any:
        """Validate one answer of `method path` (a documented template); returns its JSON."""
        operation = self.document["paths"][path][method]
        status = str(response.status_code)
        where = f"{method.upper()} {path} -> {status}"
        assert status in operation["responses"], (
            f"{where} is not in the document: {response.get_data(as_text=True)[:300]}"
        )
        self.seen[(path, method)].add(status)
        answer = operation["responses"][status]
        for name, header in answer.get("headers", {}).items():
            if header.get("required"):
                assert name in response.headers, f"{where}: no {name} header"
                value: Any = response.headers[name]
                if header["schema"].get("type") == "integer":
                    assert value.isdecimal(), f"{where}: {name}: {value!r}"
                    value = int(value)
                self.validate(value, header["schema"], f"{where} header {name}")
        if status == "304":
            assert response.data == b"", f"{where}: a 304 has no body"
            return None
        content = answer.get("content", {})
        assert response.mimetype in content, f"{where}: {response.mimetype} is not documented"
        if response.mimetype != openapi.JSON:
            return None
        body = response.get_json()
        self.validate(body, content[openapi.JSON]["schema"], where)
        return body

    def unprovoked(self, method: str, path: str) -> set[str]:
        """The documented statuses of an operation that no answer has shown yet."""
        return set(self.document["paths"][path][method]["responses"]) - self.seen[(path, method)]


@pytest.fixture
def contract(client: FlaskClient) -> Contract:
    """The document as the app serves it (its own answer validated first)."""
    found = Contract(openapi.document())
    served = found.check("get", "/api/openapi.json", client.get("/api/openapi.json"))
    assert served == found.document
    return found


@pytest.fixture
def limited(make_app: Callable[..., Flask]) -> Callable[..., FlaskClient]:
    """A client of an app whose every limit (or the ones given) allows one request a minute."""

    def factory(**limits: str) -> FlaskClient:
        limits = {"RATELIMIT_DEFAULT": "1/minute", **limits}
        app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://", **limits)
        return app.test_client()

    return factory


@pytest.fixture
def busy(make_app: Callable[..., Flask]) -> Callable[[], Any]:
    """busy(): a context giving a client of an app whose one database connection is taken."""
    app = make_app(
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2}
    )

    @contextmanager
    def every_connection_taken() -> Iterator[FlaskClient]:
        with app.app_context():
            held = db.engine.connect()
        try:
            yield app.test_client()
        finally:
            held.close()

    return every_connection_taken


def test_document_is_valid_openapi_and_lists_every_api_route(app: Flask) -> None:
    document = openapi.document()
    validate_spec(document)  # raises on an invalid document
    routes = {
        (rule.rule.replace("<slug>", "{slug}"), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") or rule.rule in ("/healthz", "/readyz")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == documented, f"undocumented: {routes - documented}; gone: {documented - routes}"


def test_openapi_document_answers(contract: Contract, limited: Callable[..., FlaskClient]) -> None:
    # An app with other limits first: each app keeps its own default (flask-limiter would
    # otherwise keep the first enabled app's for the whole process).
    generous = limited(RATELIMIT_DEFAULT="1000/minute")
    client = limited()
    assert client.get("/api/openapi.json").status_code == 200
    contract.check("get", "/api/openapi.json", client.get("/api/openapi.json"))
    assert all(generous.get("/api/openapi.json").status_code == 200 for _ in range(3))
    assert contract.unprovoked("get", "/api/openapi.json") == set()


def _in_every_status(app: Flask, make_poll: Callable[..., str], **spec: Any) -> list[str]:
    """Polls in each status (draft, scheduled, open, closed, revealing, revealed), one vote each."""
    soon = utcnow() + timedelta(days=1)
    draft = make_poll(open_=False, **spec)
    scheduled = make_poll(open_=False, opens_at=soon, closes_at=soon + timedelta(hours=2), **spec)
    made = [draft, scheduled]
    for step in ("open", "closed", "revealing", "revealed"):
        slug = make_poll(description="A poll **with** a description.", **spec)
        [token] = issuing_tokens(app, slug)
        client = app.test_client()
        cast = client.post(
            f"/api/polls/{slug}/ballots",
            json={"token": token, "choices": project_slugs(app, slug)[:1]},
        )
        assert cast.status_code == 201
        with app.app_context():
            if step != "open":
                polls.close_poll(slug, actor="test")
            if step == "revealing":
                polls.reveal(slug, actor="test", step=True)
            if step == "revealed":
                polls.reveal(slug, actor="test")
        made.append(slug)
    return made


def issuing_tokens(app: Flask, slug: str, count: int = 1) -> list[str]:
    with app.app_context():
        return issuing.mint_tokens(slug, count, actor="test").tokens


def test_poll_answers(
    app: Flask,
    client: FlaskClient,
    contract: Contract,
    make_poll: Callable[..., str],
    limited: Callable[..., FlaskClient],
    busy: Callable[[], Any],
) -> None:
    path = "/api/polls/{slug}"
    seen = set()
    for slug in _in_every_status(app, make_poll, results_mode=ResultsMode.LIVE):
        body = contract.check("get", path, client.get(f"/api/polls/{slug}"))
        seen.add(body["status"])
    assert seen == {"draft", "open", "closed", "revealing", "revealed"}
    approval = make_poll(method="approval", max_choices=3, eligibility="open", allow_revote=True)
    assert contract.check("get", path, client.get(f"/api/polls/{approval}"))["revote"] is True
    contract.check("get", path, client.get("/api/polls/no-such-poll"))
    slow = limited()
    assert slow.get(f"/api/polls/{approval}").status_code == 200
    contract.check("get", path, slow.get(f"/api/polls/{approval}"))
    with busy() as stuck:
        contract.check("get", path, stuck.get(f"/api/polls/{approval}"))
    assert contract.unprovoked("get", path) == set()


def test_ballot_answers(
    app: Flask,
    client: FlaskClient,
    contract: Contract,
    make_poll: Callable[..., str],
    make_app: Callable[..., Flask],
    limited: Callable[..., FlaskClient],
    busy: Callable[[], Any],
) -> None:
    path = "/api/polls/{slug}/ballots"
    slug, other, draft = make_poll(), make_poll(), make_poll(open_=False)
    choice = project_slugs(app, slug)[0]
    tokens = issuing_tokens(app, slug, 8)
    [elsewhere] = issuing_tokens(app, other)
    [early] = issuing_tokens(app, draft)
    url = f"/api/polls/{slug}/ballots"

    def cast(body: Any, target: str = url, on: FlaskClient = client, **kwargs: Any) -> Any:
        if "data" not in kwargs:
            kwargs["json"] = body
        return contract.check("post", path, on.post(target, **kwargs))

    assert cast({"token": tokens[0], "choices": [choice]})["receipt"]
    again = cast({"token": tokens[0], "choices": [choice]})
    assert again["error"] == "already_voted" and again["receipt"]
    assert cast({"token": early, "choices": [choice]}, f"/api/polls/{draft}/ballots")["error"] == (
        "poll_not_open"
    )
    for bad in (
        ["a", "list"],
        {"token": tokens[1]},
        {"token": tokens[1], "choices": "one"},
        {"token": tokens[1], "choices": []},
        {"token": tokens[1], "choices": ["no-such-project"]},
        {"token": tokens[1], "choices": project_slugs(app, slug)[:2]},
        {"token": tokens[1], "choices": [choice, choice]},
    ):
        assert cast(bad)["error"] == "invalid_request", bad
    assert cast(None, data="token=x", content_type="text/plain")["error"] == "invalid_request"
    with app.app_context():
        issuing.revoke(slug, actor="test", tokens=[tokens[2]])
    for bad_token in (
        {"choices": [choice]},
        {"token": 7, "choices": [choice]},
        {"token": "forged"},
    ):
        assert cast({"choices": [choice], **bad_token})["error"] == "invalid_token"
    assert cast({"token": tokens[1][:-2] + "xx", "choices": [choice]})["error"] == "invalid_token"
    assert cast({"token": elsewhere, "choices": [choice]})["error"] == "invalid_token"
    assert cast({"token": tokens[2], "choices": [choice]})["error"] == "invalid_token"
    assert cast({"token": tokens[1], "choices": [choice]}, "/api/polls/nope/ballots")["error"] == (
        "not_found"
    )
    small = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    padded = {"token": tokens[3], "choices": [choice], "padding": "x" * 4096}
    assert cast(padded, on=small)["error"] == "too_large"
    slow = limited(RATELIMIT_DEFAULT="100/minute", RATELIMIT_BALLOT_PER_TOKEN="1/minute")
    assert slow.post(url, json={"token": tokens[4], "choices": [choice]}).status_code == 201
    limited_answer = cast({"token": tokens[4], "choices": [choice]}, on=slow)
    assert limited_answer["error"] == "rate_limited" and limited_answer["retry_after"] >= 1
    with busy() as stuck:
        assert cast({"token": tokens[5], "choices": [choice]}, on=stuck)["error"] == "busy"
    assert cast({"token": tokens[5], "choices": [choice]})["receipt"]  # the busy one wrote nothing
    assert contract.unprovoked("post", path) == set()


def test_results_answers(
    app: Flask,
    client: FlaskClient,
    contract: Contract,
    make_poll: Callable[..., str],
    limited: Callable[..., FlaskClient],
    busy: Callable[[], Any],
) -> None:
    path = "/api/polls/{slug}/results"
    organizer = app.test_client()
    Console.login(app, organizer)
    shown = set()
    for mode in ResultsMode:
        for slug in _in_every_status(app, make_poll, results_mode=mode):
            for viewer in (client, organizer):
                body = contract.check("get", path, viewer.get(f"/api/polls/{slug}/results"))
                shown.add((mode.value, body["status"], "results" in body))
    # Every mode both hides and shows counts somewhere along its life, so both shapes were seen.
    assert {(m.value, "revealed", True) for m in ResultsMode} <= shown
    assert {("hidden", "open", False), ("sealed", "closed", False)} <= shown
    contract.check("get", path, client.get("/api/polls/no-such-poll/results"))
    current = client.get(f"/api/polls/{slug}/results")
    repeat = client.get(
        f"/api/polls/{slug}/results", headers={"If-None-Match": current.headers["ETag"]}
    )
    contract.check("get", path, repeat)
    # Exempt from every limit, like the results page: a hall refreshes it from one NAT.
    slow = limited()
    answers = [slow.get(f"/api/polls/{slug}/results") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    contract.check("get", path, answers[-1])
    with busy() as stuck:
        contract.check("get", path, stuck.get(f"/api/polls/{slug}/results"))
    assert contract.unprovoked("get", path) == set()


def test_receipt_board_answers(
    make_app: Callable[..., Flask],
    make_poll: Callable[..., str],
    limited: Callable[..., FlaskClient],
    busy: Callable[[], Any],
) -> None:
    path = "/api/polls/{slug}/receipts"
    app = make_app(RECEIPTS_PAGE_SIZE=2)
    found = Contract(openapi.document())
    client = app.test_client()
    slugs = _in_every_status(app, make_poll, results_mode="hidden")
    for slug in slugs:  # unpublished until the reveal: nothing listed
        body = found.check("get", path, client.get(f"/api/polls/{slug}/receipts"))
        assert body["published"] is (slug == slugs[-1])
    revealed = slugs[-1]
    live = make_poll(results_mode="live")
    tokens = issuing_tokens(app, live, 3)
    for token in tokens:
        choice = project_slugs(app, live)[:1]
        cast = client.post(f"/api/polls/{live}/ballots", json={"token": token, "choices": choice})
        assert cast.status_code == 201
    with app.app_context():
        polls.close_poll(live, actor="test")
    first = found.check("get", path, client.get(f"/api/polls/{live}/receipts"))
    assert first["published"] and first["total"] == 3 and first["pages"] == 2 and first["next"]
    found.check("get", path, client.get(f"/api/polls/{live}/receipts?page=2"))
    receipt = first["ballots"][0]["receipt"]
    one = found.check("get", path, client.get(f"/api/polls/{live}/receipts?q={receipt.lower()}"))
    assert [row["receipt"] for row in one["ballots"]] == [receipt]
    found.check("get", path, client.get(f"/api/polls/{live}/receipts?page=zero"))
    found.check("get", path, client.get(f"/api/polls/{live}/receipts?page=9"))
    found.check("get", path, client.get("/api/polls/no-such-poll/receipts"))
    slow = limited()
    assert slow.get(f"/api/polls/{revealed}/receipts").status_code in (200, 404)
    found.check("get", path, slow.get(f"/api/polls/{revealed}/receipts"))
    with busy() as stuck:
        found.check("get", path, stuck.get(f"/api/polls/{revealed}/receipts"))
    assert found.unprovoked("get", path) == set()


def _first_event(response: TestResponse) -> str:
    """The first event of a stream (sent at once), as sent; the stream is closed after."""
    try:
        chunk = next(iter(response.response))
    finally:
        response.close()
    return chunk.decode() if isinstance(chunk, bytes) else chunk


def check_event(contract: Contract, text: str) -> dict[str, Any]:
    """One SSE event against the stream's per-event schema, its JSON data against its own."""
    event: dict[str, Any] = {}
    for line in text.strip().splitlines():
        name, _, value = line.partition(": ")
        event[name] = int(value) if name == "retry" else value
    where = f"the {event.get('event')} event"
    answer = contract.document["paths"]["/api/polls/{slug}/events"]["get"]["responses"]["200"]
    contract.validate(event, answer["content"]["text/event-stream"]["schema"], where)
    [kind] = [
        branch["properties"]["data"]["contentSchema"]
        for branch in answer["content"]["text/event-stream"]["schema"]["oneOf"]
        if branch["properties"]["event"]["const"] == event["event"]
    ]
    data = json.loads(event["data"])
    contract.validate(data, kind, f"the data of {where}")
    return {**event, "data": data}


def test_event_stream_answers(
    app: Flask,
    client: FlaskClient,
    contract: Contract,
    make_poll: Callable[..., str],
    limited: Callable[..., FlaskClient],
    busy: Callable[[], Any],
) -> None:
    path = "/api/polls/{slug}/events"
    slug = make_poll(results_mode="live")
    with app.app_context():
        key = overlay.overlay_key(polls.get_poll(slug))
    for query in ("", "?view=public", f"?key={key}", "?lastEventId=12"):
        response = client.get(f"/api/polls/{slug}/events{query}", buffered=False)
        contract.check("get", path, response)
        event = check_event(contract, _first_event(response))
        assert event["event"] == "tally" and int(event["id"]) == event["data"]["version"]
    contract.check("get", path, client.get(f"/api/polls/{slug}/events?key=forged"))
    contract.check("get", path, client.get("/api/polls/no-such-poll/events"))
    slow = limited(RATELIMIT_STREAM_PER_IP="1/minute")
    _first_event(slow.get(f"/api/polls/{slug}/events", buffered=False))
    contract.check("get", path, slow.get(f"/api/polls/{slug}/events"))
    with busy() as stuck:
        contract.check("get", path, stuck.get(f"/api/polls/{slug}/events"))
    assert contract.unprovoked("get", path) == set()


def test_health_answers(
    client: FlaskClient, contract: Contract, make_app: Callable[..., Flask]
) -> None:
    assert contract.check("get", "/healthz", client.get("/healthz")) == {"status": "ok"}
    ready = contract.check("get", "/readyz", client.get("/readyz"))
    assert ready == {"status": "ok", "checks": {"database": "ok"}}
    # Redis configured but nobody listening on its port: not ready, and the answer says why.
    gone = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    down = contract.check("get", "/readyz", gone.get("/readyz"))
    assert down == {"status": "unavailable", "checks": {"database": "ok", "redis": "unreachable"}}
    assert contract.unprovoked("get", "/healthz") == contract.unprovoked("get", "/readyz") == set()


def test_contract_catches_drift(contract: Contract, app: Flask) -> None:
    """The checker itself can fail: an extra field, a missing one, an undocumented status."""
    poll = {"$ref": "#/components/schemas/Poll"}
    with app.test_request_context():
        response = app.make_response(({"error": "not_found", "message": "x", "extra": 1}, 404))
    with pytest.raises(AssertionError, match="extra"):
        contract.check("get", "/api/polls/{slug}", response)
    with pytest.raises(AssertionError, match="slug"):
        contract.validate({"title": "t"}, poll, "a poll without its slug")
    with app.test_request_context():
        teapot = app.make_response(({"error": "teapot", "message": "x"}, 418))
    with pytest.raises(AssertionError, match="418 is not in the document"):
        contract.check("get", "/api/polls/{slug}", teapot)


def test_an_undocumented_method_gets_405_with_allow(client: FlaskClient) -> None:
    """HTTP requires Allow on a 405; the JSON error body must not lose it (schemathesis checks)."""
    document = openapi.document()
    for path, item in document["paths"].items():
        url = path.replace("{slug}", "some-poll")
        for method in {"get", "post", "put", "patch", "delete"} - set(item):
            response = client.open(url, method=method.upper(), headers={"Accept": openapi.JSON})
            assert response.status_code == 405, (method, path)
            assert response.get_json()["error"] == "method_not_allowed"
            allowed = {m.strip().lower() for m in response.headers["Allow"].split(",")}
            assert set(item) <= allowed <= set(item) | {"head", "options"}, (method, path)
