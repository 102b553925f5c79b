"""Schemathesis against a live instance: every operation, every check, a fixed seed and budget.

The app is served over HTTP on 127.0.0.1 with the test database (and, in CI's PostgreSQL
pass, the same Redis-free limits as the rest of the suite). Schemathesis loads the document
the server serves, generates valid and invalid requests for each operation (with random
slugs, and with the slugs of polls in several states), sends them, and runs all of its
checks on each answer. Valid ballots for the open poll get real tokens, so 201 and 409 are
reached as well as 403. The run must find no server error and no schema violation.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase
from schemathesis.core.failures import Failure, ServerError
from schemathesis.specs.openapi.checks import (
    JsonSchemaError,
    MissingHeaders,
    UndefinedContentType,
    UndefinedStatusCode,
)

from tests.support import make_poll_on, mint_on, project_slugs, serving
from voting.domain.statuses import Method, ResultsMode
from voting.services import polls

# VOTING_FUZZ_SEED replays another run; VOTING_FUZZ_EXAMPLES spends a bigger budget locally.
SEED = int(os.environ.get("VOTING_FUZZ_SEED", "20261201"))
EXAMPLES = int(os.environ.get("VOTING_FUZZ_EXAMPLES", "12"))
SCHEMA_VIOLATIONS = (JsonSchemaError, UndefinedStatusCode, MissingHeaders, UndefinedContentType)
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


def _polls(app: Flask) -> dict[str, str]:
    """Polls in the states a client meets: open (live counts), hidden and revealed, a draft."""
    made = {
        "open": make_poll_on(app, "fuzz-open", results_mode=ResultsMode.LIVE),
        "approval": make_poll_on(
            app, "fuzz-approval", method=Method.APPROVAL, max_choices=3, allow_revote=True
        ),
        "draft": make_poll_on(app, "fuzz-draft", open_=False, results_mode=ResultsMode.SEALED),
        "revealed": make_poll_on(app, "fuzz-revealed"),
    }
    with app.app_context():
        polls.close_poll(made["revealed"], actor="test")
        polls.reveal(made["revealed"], actor="test")
    return made


@dataclass
class Ballots:
    """Real tokens for one open poll, its choices, and how many one ballot may name."""

    tokens: list[str]
    choices: list[str]
    most: int


class Run:
    """Sends each generated case, validates its answer, and keeps what the checks found."""

    def __init__(self, base: str, ballots: dict[str, Ballots]) -> None:
        self.base = base
        self.ballots = ballots
        self.session = requests.Session()
        self.requests = 0
        self.statuses: Counter[str] = Counter()
        self.failures: list[tuple[str, Failure]] = []
        self.exhausted: list[str] = []

    def send(self, case: Any, slug: str | None) -> None:
        box = self.ballots.get(slug or "")
        body = case.body
        positive = case.meta is not None and case.meta.generation.mode.is_positive
        if box and box.tokens and positive and case.operation.path.endswith("/ballots"):
            # Valid for the schema is not valid for this poll: give the generated ballot a
            # real token and choices on the poll, so that it can count (201), keeping
            # whatever else was generated (extra fields are ignored).
            body["token"] = box.tokens.pop()
            body["choices"] = box.choices[: max(1, min(len(body["choices"]), box.most))]
        response = case.call(base_url=self.base, session=self.session, timeout=15)
        self.requests += 1
        self.statuses[f"{case.operation.label} {response.status_code}"] += 1
        try:
            case.validate_response(response)
        except BaseExceptionGroup as group:
            self.failures.extend((case.operation.label, f) for f in _leaves(group))
        except Failure as failure:
            self.failures.append((case.operation.label, failure))

    def explore(self, operation: Any, mode: Any, slug: str | None) -> None:
        """EXAMPLES cases of one operation in one generation mode, from the fixed seed."""
        fixed = {"path_parameters": {"slug": slug}} if slug else {}
        strategy = operation.as_strategy(generation_mode=mode, **fixed)

        @hypothesis.seed(SEED)
        @hypothesis.settings(
            max_examples=EXAMPLES,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @hypothesis.given(case=strategy)
        def each(case: Any) -> None:
            self.send(case, slug)

        try:
            each()
        except hypothesis.errors.Unsatisfiable:
            # Nothing left to make invalid: the slug is fixed and the operation has no other input.
            self.exhausted.append(f"{operation.label} {mode.value} {slug}")

    def count(self, kind: tuple[type[Failure], ...] | type[Failure]) -> int:
        return sum(isinstance(f, kind) for _, f in self.failures)


def _leaves(group: BaseExceptionGroup[Any]) -> list[Failure]:
    found: list[Failure] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        elif isinstance(exc, Failure):
            found.append(exc)
        else:
            raise exc
    return found


@pytest.mark.slow
@pytest.mark.timeout(25 * EXAMPLES)  # 12 examples: about 60 s on a loaded 2-core machine
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    make_app: Callable[..., Flask], capsys: pytest.CaptureFixture[str]
) -> None:
    # Streams end after 0.05 s, so each event-stream request returns a whole body.
    app = make_app(LIVE_STREAM_SECONDS=0.05, LIVE_HEARTBEAT_SECONDS=0.05)
    made = _polls(app)
    budget = EXAMPLES * 2
    ballots = {
        made[name]: Ballots(mint_on(app, made[name], budget), project_slugs(app, made[name]), most)
        for name, most in (("open", 1), ("approval", 3))
    }
    with serving(app) as base:
        # from_dict, not from_url: from_url leaves out the operation that serves the document.
        served = requests.get(f"{base}/api/openapi.json", timeout=10)
        schema = schemathesis.openapi.from_dict(served.json())
        run = Run(base, ballots)
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            takes_slug = "{slug}" in operation.path
            for mode in MODES:
                for slug in (None, *made.values()) if takes_slug else (None,):
                    run.explore(operation, mode, slug)
    server_errors = run.count(ServerError)
    violations = run.count(SCHEMA_VIOLATIONS)
    documented = sum(len(methods) for methods in served.json()["paths"].values())
    with capsys.disabled():  # the figures belong in CI's log, pass or fail
        print(
            f"\nschemathesis {schemathesis.__version__}, seed {SEED}, {EXAMPLES} examples per "
            f"operation, mode and slug: {len(operations)} operations, {run.requests} requests, "
            f"{server_errors} server errors, {violations} schema violations, "
            f"{len(run.failures)} failures in all"
        )
        print("answers:", dict(sorted(run.statuses.items())))
        print(
            "found:",
            Counter(f"{label}: {type(f).__name__}: {f.title}" for label, f in run.failures),
        )
    report = "\n\n".join(f"{label}: {failure}" for label, failure in run.failures[:10])
    assert not run.failures, f"{len(run.failures)} failures (seed {SEED}):\n{report}"
    assert len(operations) == documented and run.requests >= len(operations) * EXAMPLES
    # Real tokens reached the ballot box: some ballots counted.
    assert any(k.startswith("POST") and k.endswith(" 201") for k in run.statuses)
