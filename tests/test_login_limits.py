"""Issue 15, Must show 2: strangers' wrong passwords never lock the organizer's own device out.

Limits on, counting in the test Redis: what an attacker gets (30 guesses an hour per
account, from however many addresses), and what the organizer keeps (her laptop signs in
at once; a new device after `voting admin unlock`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.admin_support import PASSWORD, audit_actions, make_organizer
from tests.support import csrf_from
from voting.web.admin.login_limits import DEVICE_COOKIE

ANA_LAPTOP = "198.51.100.10"
ATTACKER = "203.0.113.66"


@pytest.fixture
def limited(make_app: Callable[..., Flask], redis_url: str) -> Flask:
    redis.Redis.from_url(redis_url).flushdb()
    app = make_app(
        RATELIMIT_ENABLED=True,
        REDIS_URL=redis_url,
        RATELIMIT_KEY_PREFIX="test-login-" + secrets.token_hex(4),
        # A loaded machine can stall Redis past the production 0.5 s: counting falls back to
        # memory then, and the limits the test checks would start again from zero.
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 5, "socket_timeout": 5},
    )
    make_organizer(app, "ana")
    make_organizer(app, "bob")
    return app


def sign_in(client: FlaskClient, username: str, password: str, address: str) -> int:
    env: dict[str, Any] = {"REMOTE_ADDR": address}
    page = client.get("/admin/login", environ_base=env).get_data(as_text=True)
    response = client.post(
        "/admin/login",
        data={"csrf_token": csrf_from(page), "username": username, "password": password},
        environ_base=env,
    )
    if response.status_code == 303:
        client.post(  # sign out again, keeping the device cookie
            "/admin/logout",
            data={
                "csrf_token": csrf_from(
                    client.get("/admin/", environ_base=env).get_data(as_text=True)
                )
            },
            environ_base=env,
        )
    return response.status_code


def test_fifty_wrong_passwords_from_elsewhere_leave_ana_signing_in_first_time(
    limited: Flask,
) -> None:
    laptop = limited.test_client()
    assert sign_in(laptop, "ana", PASSWORD, ANA_LAPTOP) == 303  # the day before
    assert laptop.get_cookie(DEVICE_COOKIE, path="/admin") is not None
    attacker = limited.test_client()
    statuses = [sign_in(attacker, "ana", f"guess-{i}", ATTACKER) for i in range(50)]
    # From one address: 20 a minute get an answer at all, then 429.
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    assert sign_in(laptop, "ana", PASSWORD, ANA_LAPTOP) == 303  # first try


def test_an_attacker_gets_30_guesses_an_hour_from_any_number_of_addresses(
    limited: Flask,
) -> None:
    laptop = limited.test_client()
    assert sign_in(laptop, "ana", PASSWORD, ANA_LAPTOP) == 303
    statuses = [
        sign_in(limited.test_client(), "ana", f"guess-{i}", f"203.0.113.{i}") for i in range(50)
    ]
    assert statuses.count(401) == 30 and statuses[30:] == [429] * 20
    stranger = limited.test_client()
    page = stranger.get("/admin/login").get_data(as_text=True)
    refused = stranger.post(
        "/admin/login",
        data={"csrf_token": csrf_from(page), "username": "ana", "password": "x"},
        environ_base={"REMOTE_ADDR": "192.0.2.1"},
    )
    assert refused.status_code == 429 and "voting admin unlock" in refused.get_data(as_text=True)
    # Other accounts are not held back, and ana's laptop still signs in at once.
    assert sign_in(limited.test_client(), "bob", PASSWORD, "192.0.2.7") == 303
    assert sign_in(laptop, "ana", PASSWORD, ANA_LAPTOP) == 303
    # A device cookie for bob, or a forged one, is no pass for ana.
    bobs = limited.test_client()
    assert sign_in(bobs, "bob", PASSWORD, "192.0.2.8") == 303
    assert sign_in(bobs, "ana", PASSWORD, "192.0.2.8") == 429
    forged = limited.test_client()
    forged.set_cookie(
        DEVICE_COOKIE,
        laptop.get_cookie(DEVICE_COOKIE, path="/admin").value[:-2] + "xx",
        path="/admin",
    )  # type: ignore[union-attr]
    assert sign_in(forged, "ana", PASSWORD, "192.0.2.9") == 429


def test_a_new_device_locked_out_by_strangers_gets_in_after_the_cli_unlock(
    limited: Flask,
) -> None:
    for i in range(31):
        sign_in(limited.test_client(), "ana", f"guess-{i}", f"203.0.113.{i}")
    new_laptop = limited.test_client()
    assert sign_in(new_laptop, "ana", PASSWORD, "198.51.100.20") == 429
    result = limited.test_cli_runner().invoke(args=["admin", "unlock", "ana"])
    assert result.exit_code == 0, result.output
    assert sign_in(new_laptop, "ana", PASSWORD, "198.51.100.20") == 303
    assert "login.unlock" in audit_actions(limited)


def test_the_device_cookie_is_locked_down(limited: Flask) -> None:
    client = limited.test_client()
    https = "https://vote.test"
    page = client.get("/admin/login", base_url=https).get_data(as_text=True)
    response = client.post(
        "/admin/login",
        data={"csrf_token": csrf_from(page), "username": "ana", "password": PASSWORD},
        base_url=https,
        headers={"Referer": f"{https}/admin/login"},  # Flask-WTF checks it over HTTPS
    )
    assert response.status_code == 303
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(DEVICE_COOKIE))
    for part in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/admin"):
        assert part in cookie, cookie
