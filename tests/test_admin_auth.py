"""Organizer login: cookie flags, logout, rate limits, equal-cost unknown users, safe redirects."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.admin_support import PASSWORD, Console, make_organizer
from tests.support import csrf_from
from voting.config import DEFAULTS
from voting.services import organizers


def _session_cookie(response_headers: list[str]) -> str:
    cookies = [c for c in response_headers if c.startswith("session=")]
    assert cookies, response_headers
    return cookies[-1]


def _login(client: FlaskClient, *, password: str = PASSWORD, **kwargs: object):  # type: ignore[no-untyped-def]
    page = client.get("/admin/login", **kwargs).get_data(as_text=True)  # type: ignore[arg-type]
    return client.post(
        "/admin/login",
        data={"csrf_token": csrf_from(page), "username": "ana", "password": password},
        **kwargs,  # type: ignore[arg-type]
    )


def test_session_cookie_is_httponly_and_samesite_and_not_remembered(
    app: Flask, client: FlaskClient
) -> None:
    make_organizer(app)
    response = _login(client)
    assert response.status_code == 303
    cookies = response.headers.getlist("Set-Cookie")
    session = _session_cookie(cookies)
    assert "HttpOnly" in session and "SameSite=Lax" in session
    assert (
        "Secure" not in session
    )  # plain HTTP (a developer's laptop): a Secure cookie would be lost
    assert not any(c.startswith("remember_token=") for c in cookies)


def test_session_cookie_is_secure_over_https(app: Flask) -> None:
    make_organizer(app)
    client = app.test_client()
    # Over HTTPS Flask-WTF also checks the Referer, which a browser sends same-origin.
    response = _login(
        client, base_url="https://vote.test", headers={"Referer": "https://vote.test/admin/login"}
    )
    assert response.status_code == 303
    assert "Secure" in _session_cookie(response.headers.getlist("Set-Cookie"))


def test_session_cookie_is_secure_behind_a_tls_proxy(make_app: Callable[..., Flask]) -> None:
    app = make_app(PROXY_HOPS=1)
    make_organizer(app)
    client = app.test_client()
    proxied = {"X-Forwarded-Proto": "https", "Referer": "https://localhost/admin/login"}
    response = _login(client, headers=proxied)
    assert response.status_code == 303
    assert "Secure" in _session_cookie(response.headers.getlist("Set-Cookie"))
    # Without the trusted proxy hop, the same header is ignored.
    plain = make_app()
    response = _login(plain.test_client(), headers=proxied)
    assert response.status_code == 303
    assert "Secure" not in _session_cookie(response.headers.getlist("Set-Cookie"))


def test_session_cookie_secure_setting_forces_it(make_app: Callable[..., Flask]) -> None:
    app = make_app(SESSION_COOKIE_SECURE=True)
    make_organizer(app)
    response = _login(app.test_client())
    assert "Secure" in _session_cookie(response.headers.getlist("Set-Cookie"))


def test_logout_ends_the_session(app: Flask, client: FlaskClient) -> None:
    console = Console.login(app, client)
    assert client.get("/admin/").status_code == 200
    response = console.post("/admin/logout")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/login"
    assert client.get("/admin/").status_code == 302
    # A GET cannot log anyone out (a link or image on another site must not).
    assert client.get("/admin/logout").status_code == 405


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("/admin/projects", "/admin/projects"),
        ("/admin/audit?poll=cf", "/admin/audit?poll=cf"),
        ("https://evil.example/admin/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("/p/some-poll", "/admin/"),
    ],
)
def test_login_returns_only_to_console_pages(
    app: Flask, client: FlaskClient, target: str, lands: str
) -> None:
    make_organizer(app)
    page = client.get("/admin/login").get_data(as_text=True)
    response = client.post(
        "/admin/login",
        query_string={"next": target},
        data={"csrf_token": csrf_from(page), "username": "ana", "password": PASSWORD},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == lands


def test_a_visitor_is_sent_to_login_and_back(app: Flask, client: FlaskClient) -> None:
    make_organizer(app)
    first = client.get("/admin/projects")
    assert first.status_code == 302
    assert first.headers["Location"] == "/admin/login?next=/admin/projects"
    page = client.get(first.headers["Location"]).get_data(as_text=True)
    assert "Please log in to continue." in page
    response = client.post(
        first.headers["Location"],
        data={"csrf_token": csrf_from(page), "username": "ana", "password": PASSWORD},
    )
    assert response.headers["Location"] == "/admin/projects"


def test_login_is_rate_limited_per_username(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_LOGIN_PER_USERNAME="3/minute",
        RATELIMIT_LOGIN_PER_IP="100/minute",
    )
    make_organizer(app)
    client = app.test_client()
    for _ in range(3):
        assert _login(client, password="wrong guess").status_code == 401
    blocked = _login(client)  # even the right password waits now
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    assert client.get("/admin/").status_code == 302


def test_login_is_rate_limited_per_address(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_LOGIN_PER_USERNAME="100/minute",
        RATELIMIT_LOGIN_PER_IP="4/minute",
    )
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    statuses = [
        client.post(
            "/admin/login",
            data={"csrf_token": csrf_from(page), "username": f"user{i}", "password": "x"},
        ).status_code
        for i in range(6)
    ]
    assert statuses == [401, 401, 401, 401, 429, 429]


def test_passwords_are_hashed_with_scrypt_at_owasp_strength(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    # The production default, not the tests' cheaper one.
    app.config["PASSWORD_HASH_METHOD"] = DEFAULTS["PASSWORD_HASH_METHOD"]
    with app.app_context():
        stored = organizers.hash_password("correct horse battery staple")
    method, _salt, _hash = stored.split("$")
    name, n, r, p = method.split(":")
    assert name == "scrypt" and int(n) >= 2**17 and int(r) >= 8 and int(p) >= 1


def test_an_unknown_user_costs_the_same_scrypt_as_a_known_one(
    make_app: Callable[..., Flask],
) -> None:
    method = "scrypt:32768:8:1"
    app = make_app(PASSWORD_HASH_METHOD=method)
    make_organizer(app)
    with app.test_request_context():
        assert organizers._dummy_hash().startswith(method + "$")
    client = app.test_client()
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))

    def attempt(username: str) -> float:
        started = time.perf_counter()
        response = client.post(
            "/admin/login", data={"csrf_token": token, "username": username, "password": "nope"}
        )
        assert response.status_code == 401
        return time.perf_counter() - started

    attempt("nobody")  # builds the dummy hash once
    known, unknown = [], []
    for _ in range(5):
        known.append(attempt("ana"))
        unknown.append(attempt("nobody"))
    # Loose on purpose (shared CI cores): without the dummy hash an unknown user would
    # answer in a small fraction of a scrypt.
    assert statistics.median(unknown) > 0.5 * statistics.median(known)
