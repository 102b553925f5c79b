"""Must show 2: every /admin route, read from the app's URL map, is guarded.

A visitor who is not logged in is sent to the login page (or gets 401 as JSON), and every
state-changing route refuses a request without a valid CSRF token, changing nothing. A new
route is picked up automatically; a route with a path argument this file does not know
fails the test until it is taught a real value.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from tests.admin_support import PASSWORD, Console, snapshot
from tests.support import SHARED_DATA, csrf_from
from voting.services import issuing, polls

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def admin_rules(app: Flask) -> list[Rule]:
    return sorted(
        (r for r in app.url_map.iter_rules() if r.rule.startswith("/admin")),
        key=lambda r: r.rule,
    )


@pytest.fixture
def world(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> dict[str, Any]:
    """Real objects for every path argument: an open invite poll with a batch, a roster poll."""
    slug = make_poll("cf", title="Community Favorite")
    tokens = mint(slug, 3)
    make_poll("attendees", open_=False, eligibility="roster")
    with app.app_context():
        batch = issuing.mint_tokens(slug, 2, actor="test", batch="cards").batch
        project = polls.get_poll(slug).choices[0].project.slug
    return {"slug": slug, "batch": batch, "project": project, "tokens": tokens}


def path_for(app: Flask, rule: Rule, world: dict[str, Any]) -> str:
    values = {"slug": world["slug"], "batch": world["batch"], "project": world["project"]}
    if rule.endpoint == "admin.import_roster":
        values["slug"] = "attendees"
    needed = set(rule.arguments) - set(rule.defaults or {})
    unknown = needed - set(values)
    assert not unknown, f"{rule.rule}: teach this test a real value for {sorted(unknown)}"
    with app.test_request_context():
        return url_for(rule.endpoint, **{k: values[k] for k in needed})


def form_for(endpoint: str, world: dict[str, Any]) -> dict[str, Any]:
    """A form that WOULD change something if the CSRF check let it through."""
    poll_form = {
        "title": "Renamed",
        "method": "plurality",
        "eligibility": "invite",
        "results_mode": "live",
        "tz": "UTC",
        "scope": "all",
    }
    forms: dict[str, dict[str, Any]] = {
        "admin.login": {"username": "ana", "password": PASSWORD},
        "admin.new_poll": {**poll_form, "slug": "sneaky"},
        "admin.edit_poll": poll_form,
        "admin.lifecycle_auto": {"seconds": "3"},
        "admin.mint": {"count": "5"},
        "admin.revoke_tokens": {"tokens": world["tokens"][0]},
        "admin.reissue": {"lost": world["tokens"][1]},
        "admin.edit_project": {"title": "Renamed", "category": "Build"},
        "admin.import_projects": {
            "file": (io.BytesIO((SHARED_DATA / "devpost-export-sample.csv").read_bytes()), "d.csv"),
            "commit": "1",
        },
        "admin.import_roster": {
            "file": (io.BytesIO(b"code\nAAA-1\nBBB-2\n"), "r.csv"),
            "commit": "1",
        },
    }
    return forms.get(endpoint, {"confirm": "1"})


def test_the_console_has_the_routes_this_test_expects_to_guard(app: Flask) -> None:
    rules = admin_rules(app)
    endpoints = {r.endpoint for r in rules}
    assert len(rules) >= 25
    assert {
        "admin.dashboard",
        "admin.lifecycle_close",
        "admin.mint",
        "admin.audit_log",
    } <= endpoints
    assert all(r.endpoint.startswith("admin.") for r in rules)


def test_every_admin_route_sends_a_visitor_to_the_login(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    # An anonymous visitor with a valid CSRF token (every visitor can get one from the
    # login page), so it is the login guard that answers, not the CSRF check.
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    before = snapshot(app)
    checked = 0
    for rule in admin_rules(app):
        if rule.endpoint == "admin.login":
            continue
        path = path_for(app, rule, world)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": token, **form_for(rule.endpoint, world)}
            kwargs: dict[str, Any] = {} if method in SAFE_METHODS else {"data": data}
            response = client.open(path, method=method, **kwargs)
            assert response.status_code == 302, (method, path, response.status_code)
            assert urlsplit(response.headers["Location"]).path == "/admin/login", (method, path)

            kwargs = {} if method in SAFE_METHODS else {"data": form_for(rule.endpoint, world)}
            if method not in SAFE_METHODS:
                kwargs["data"]["csrf_token"] = token
            as_json = client.open(
                path, method=method, headers={"Accept": "application/json"}, **kwargs
            )
            assert as_json.status_code == 401, (method, path, as_json.status_code)
            assert as_json.get_json()["error"] == "unauthorized"
            checked += 1
    assert checked >= 25
    assert snapshot(app) == before


def test_every_state_changing_admin_route_refuses_a_missing_or_foreign_csrf_token(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    console = Console.login(app, client)
    # A token that is valid, but for somebody else's session.
    foreign = csrf_from(app.test_client().get("/admin/login").get_data(as_text=True))
    before = snapshot(app)
    posted = 0
    for rule in admin_rules(app):
        path = path_for(app, rule, world)
        for method in sorted((rule.methods or set()) - SAFE_METHODS):
            for token in (None, "forged-token", foreign):
                data = form_for(rule.endpoint, world)
                if token is not None:
                    data["csrf_token"] = token
                response = client.open(path, method=method, data=data)
                body = response.get_data(as_text=True)
                assert response.status_code == 400, (method, path, token, response.status_code)
                assert "did not come from this site" in body, (method, path)
                posted += 1
    assert posted >= 3 * 15
    assert snapshot(app) == before
    # The same forms with the session's own token do act: the refusal above was the check.
    assert (
        console.post(path_for(app, _rule(app, "admin.mint"), world), {"count": "5"}).status_code
        == 303
    )
    assert snapshot(app) != before


def _rule(app: Flask, endpoint: str) -> Rule:
    return next(r for r in admin_rules(app) if r.endpoint == endpoint)


def test_read_only_pages_are_get_only_and_write_nothing(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    """Every GET under /admin renders (or redirects) without touching the database."""
    Console.login(app, client)
    before = snapshot(app)
    for rule in admin_rules(app):
        if "GET" not in (rule.methods or set()) or rule.endpoint == "admin.login":
            continue
        path = path_for(app, rule, world)
        response = client.get(path)
        assert response.status_code in (200, 303), (path, response.status_code)
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
    assert snapshot(app) == before
