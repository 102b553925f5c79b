"""One security-header policy: every route has one, and each kind of answer carries its headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from tests.support import csrf_from
from voting.web import security


def test_every_route_has_a_policy(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert len(endpoints) > 40  # the walk sees the whole app
    policies = {endpoint: security.policy_for(endpoint).name for endpoint in endpoints}
    assert policies["public.ballot"] == "page"
    assert policies["public.results_page"] == "results page"
    assert policies["admin.dashboard"] == "console"
    assert policies["stream.events"] == "stream"


def test_a_route_without_a_policy_stops_the_app(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/extra", "page", lambda: "hi")
    app.register_blueprint(extra)
    with pytest.raises(security.UnlistedRoute, match=r"extra\.page"):
        security.init_app(app)


def test_pages_carry_their_policy(client: FlaskClient, make_poll: Callable[..., str]) -> None:
    slug = make_poll(results_mode="live")
    for path in (f"/p/{slug}", f"/p/{slug}/results", "/no-such-page", "/"):
        response = client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "same-origin", path
        assert "script-src 'self'" in response.headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
    results = client.get(f"/p/{slug}/results").headers["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in results  # its bars' inline widths
    ballot = client.get(f"/p/{slug}").headers["Content-Security-Policy"]
    assert "style-src 'self';" in ballot


def test_token_answers_are_never_cached_nor_referred(
    client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug)
    for response in (client.get(f"/v/{token}"), client.get("/v/not-a-token")):
        assert response.status_code in (303, 403)
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
    open_slug = make_poll(eligibility="open")
    form = client.get(f"/p/{open_slug}/join").get_data(as_text=True)
    joined = client.post(f"/p/{open_slug}/join", data={"csrf_token": csrf_from(form)})
    assert joined.status_code == 303
    assert joined.headers["Referrer-Policy"] == "no-referrer"
    assert joined.headers["Cache-Control"] == "no-store"


def test_json_and_the_console_carry_theirs(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    api = client.get(f"/api/polls/{slug}")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in api.headers
    login = client.get("/admin/login")
    assert login.headers["Cache-Control"] == "no-store"
    assert login.headers["X-Frame-Options"] == "DENY"
    assert login.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
