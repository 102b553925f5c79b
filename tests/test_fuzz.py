"""Arbitrary token strings and JSON bodies never produce a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture
def fuzz_token(make_poll: Callable[..., str], mint: Callable[..., list[str]]) -> str:
    make_poll("fuzz", method="approval", max_choices=2)
    return mint("fuzz", 1)[0]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_arbitrary_ballots_never_5xx(app: Flask, fuzz_token: str, data: st.DataObject) -> None:
    slugs = ["flood-watch", "crop-doctor", "bias-lens", "nope"]
    token = data.draw(
        st.one_of(
            st.just(fuzz_token),
            st.just(fuzz_token[:-1]),
            st.text(max_size=200),
            json_values,
        )
    )
    choices = data.draw(st.one_of(st.lists(st.sampled_from(slugs), max_size=3), json_values))
    client = app.test_client()
    response = client.post("/api/polls/fuzz/ballots", json={"token": token, "choices": choices})
    assert response.status_code < 500
    body = response.get_json()
    if response.status_code == 201:
        assert token == fuzz_token and "receipt" in body
    else:
        assert body["error"] in {"invalid_request", "invalid_token", "already_voted"}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(json_values, st.binary(max_size=200)))
def test_arbitrary_bodies_never_5xx(app: Flask, body: object) -> None:
    client = app.test_client()
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = client.post("/api/polls/any/ballots", data=data, content_type="application/json")
    assert response.status_code < 500
    assert "error" in response.get_json()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=st.text(min_size=1, max_size=300).filter(lambda s: "/" not in s and "\x00" not in s))
def test_arbitrary_voter_links_never_5xx(app: Flask, token: str) -> None:
    response = app.test_client().get(f"/v/{token}")
    assert response.status_code in (303, 403, 404)
