"""One security-header policy: every route has one, and each kind of answer carries its headers."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.admin_support import Console
from tests.route_kit import FOREIGN, Route, Samples, routes
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
    assert "style-src 'self';" in results  # its bars are <meter>s: nothing styles inline
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
    assert api.headers["Content-Security-Policy"] == security.NOT_A_PAGE_CSP
    login = client.get("/admin/login")
    assert login.headers["Cache-Control"] == "no-store"
    assert login.headers["X-Frame-Options"] == "DENY"
    assert login.headers["Content-Security-Policy"] == security.CONSOLE_CSP


# -- issue 17, Must show 2: every route in app.url_map carries each policy header ----------


def _answer(client: FlaskClient, route: Route, **kwargs: object) -> TestResponse:
    """One answer of the route: GET where it takes one, else a POST (no CSRF: refused, unchanged)."""
    method = "GET" if "GET" in route.methods else "POST"
    response = client.open(route.url, method=method, buffered=False, **kwargs)  # type: ignore[arg-type]
    response.close()  # an event stream would run on
    return response


def _walk(
    client: FlaskClient, app: Flask, samples: Samples, **kwargs: object
) -> dict[str, TestResponse]:
    answers = {route.url: _answer(client, route, **kwargs) for route in routes(app, samples)}
    for extra in ("/no-such-page", "/api/no-such-thing", "/static/no-such-file.css"):
        answers[extra] = client.get(extra, **kwargs)  # type: ignore[arg-type]
    return answers


def _assert_policy(url: str, response: TestResponse, *, routed: bool = True) -> None:
    """The policy headers; `routed`: the overlay's own route answered (not a 404 or 405)."""
    headers = response.headers
    assert response.status_code < 500, (url, response.status_code)
    assert headers["X-Content-Type-Options"] == "nosniff", url
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer"), url
    assert "camera=()" in headers["Permissions-Policy"], url
    csp = headers["Content-Security-Policy"]
    assert "object-src 'none'" in csp or "default-src 'none'" in csp, url
    if routed and url.startswith("/overlay/"):
        assert "frame-ancestors *" in csp, url  # OBS and web studios embed it
        assert "X-Frame-Options" not in headers, url
    else:
        assert "frame-ancestors 'none'" in csp, url
        assert headers["X-Frame-Options"] == "DENY", url
    if response.mimetype == "text/html":
        assert "script-src 'self'" in csp and "base-uri 'none'" in csp, url


def test_every_route_carries_every_policy_header(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(results_mode="live")
    samples = Samples.make(app, slug)
    anonymous = _walk(app.test_client(), app, samples)
    Console.login(app, client)
    organizer = _walk(client, app, samples)
    kinds = {r.endpoint.partition(".")[0] for r in routes(app, samples)}
    assert {"public", "overlay", "admin", "api", "stream", "static", "health", "claim"} <= kinds
    for answers in (anonymous, organizer):
        for url, response in answers.items():
            _assert_policy(url, response)
            assert "Strict-Transport-Security" not in response.headers, url  # plain HTTP
    # The walk saw real pages, not only refusals: the overlay, the console, a stream.
    assert organizer[f"/overlay/{slug}?key={samples.overlay_key}"].status_code == 200
    assert organizer["/admin/"].status_code == 200
    assert organizer[f"/api/polls/{slug}/events"].mimetype == "text/event-stream"
    assert anonymous["/static/style.css"].status_code == 200
    assert anonymous["/no-such-page"].status_code == 404


def test_405_answers_carry_allow_and_the_policy(app: Flask, make_poll: Callable[..., str]) -> None:
    samples = Samples.make(app, make_poll())
    client = app.test_client()
    for route in routes(app, samples):
        for method in FOREIGN:
            response = client.open(route.url, method=method)
            assert response.status_code == 405, (method, route.url)
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
            assert route.own_methods <= allowed, (method, route.url, allowed)
            _assert_policy(route.url, response, routed=False)


def test_hsts_only_over_https_as_the_trusted_proxy_tells(
    make_app: Callable[..., Flask], make_poll: Callable[..., str]
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"}
    behind_proxy = make_app(PROXY_HOPS=1)
    slug = make_poll()
    samples = Samples.make(behind_proxy, slug)
    for url, response in _walk(
        behind_proxy.test_client(), behind_proxy, samples, headers=forwarded
    ).items():
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000", url
        _assert_policy(url, response)
    direct = make_app()  # no trusted proxy: a client's X-Forwarded-Proto is only a header
    assert (
        "Strict-Transport-Security" not in direct.test_client().get("/", headers=forwarded).headers
    )
    https = direct.test_client().get("/", base_url="https://vote.test")
    assert https.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_every_attendee_page_and_the_overlay_can_take_the_ballot_pages_policy(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    """Walk every page an attendee or the stream opens: each carries nosniff and a referrer
    policy, and holds nothing (inline style, inline script) that the ballot page's
    Content-Security-Policy would block, so that one policy can cover them all."""
    from voting.services import ballots, overlay, polls

    live = make_poll(results_mode="live")
    roster = make_poll(eligibility="roster")
    open_poll = make_poll(eligibility="open")
    tokens = mint(live, 2)
    with app.app_context():
        ballots.cast_ballot(live, tokens[0], ["flood-watch"])
        key_url = overlay.overlay_url(polls.get_poll(live))
    ballot_csp = client.get(f"/p/{live}").headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in ballot_csp
    paths = [
        "/",
        "/no-such-page",
        "/v/not-a-token",
        f"/p/{live}",
        f"/p/{live}?q=zzzz",
        f"/p/{live}/project/flood-watch",
        f"/p/{live}/results",
        f"/p/{live}/results?screen=projector",
        f"/p/{live}/receipts",
        f"/p/{roster}/claim",
        f"/p/{live}/claim",
        f"/p/{open_poll}/join",
        key_url.removeprefix(app.config["BASE_URL"]),
    ]
    client.get(f"/v/{tokens[1]}")
    page = client.get(f"/p/{live}").get_data(as_text=True)
    confirm = client.post(
        f"/p/{live}/confirm", data={"csrf_token": csrf_from(page), "choice": "flood-watch"}
    )
    answers = [(path, client.get(path)) for path in paths] + [("confirm", confirm)]
    cast = client.post(
        f"/p/{live}/cast",
        data={"csrf_token": csrf_from(confirm.get_data(as_text=True)), "choice": "flood-watch"},
    )
    answers.append(("receipt", client.get(cast.headers["Location"])))
    for path, response in answers:
        assert response.status_code < 500, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer"), path
        html = response.get_data(as_text=True)
        assert not re.search(r"<[^>]+\sstyle=", html), f"inline style on {path}"
        assert "<style" not in html, path
        inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
        assert inline == [], f"inline script on {path}"
        csp = response.headers.get("Content-Security-Policy")
        if csp:
            assert "script-src 'self'" in csp, path
            framing = (
                "frame-ancestors *" if path.startswith("/overlay/") else "frame-ancestors 'none'"
            )
            assert framing in csp, path
