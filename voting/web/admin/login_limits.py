"""Organizer sign-in limits: guessing stays slow, and strangers' failures never lock out a known device.

A correct sign-in leaves a signed "device" cookie naming the organizer (HttpOnly, only
under /admin, 180 days). Attempts are then limited in two ways:

- from a device without that cookie for the username tried: per client address
  (RATELIMIT_LOGIN_PER_IP, every attempt) and per username over every such device
  (RATELIMIT_LOGIN_PER_USERNAME, failed attempts only). These are what an attacker
  meets, from however many addresses: 30 guesses an hour per account by default;
- from a device that signed in as that organizer before: only its own bucket
  (RATELIMIT_LOGIN_PER_DEVICE), so a flood of wrong passwords from the audience (even
  behind the same venue NAT) leaves the organizer's laptop able to sign in at once.

A new device locked out by strangers waits for the hour to pass, or an operator runs
`voting admin unlock USERNAME`, which clears the username's counter (`clear_username`).
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app, request
from itsdangerous import BadData, URLSafeTimedSerializer
from limits import parse
from werkzeug.wrappers import Response

from voting.extensions import limiter
from voting.web.limits import address_key, login_username_key

DEVICE_COOKIE = "voting_device"
DEVICE_SALT = "voting.organizer-device.v1"
DEVICE_MAX_AGE = 180 * 24 * 3600
# The per-username bucket's scope, named so that `clear_username` can find it.
USERNAME_SCOPE = "organizer-login"
LOGIN_ENDPOINT = "admin.login"


def _serializer() -> URLSafeTimedSerializer:
    config = current_app.config
    keys = [*config["SECRET_KEY_FALLBACKS"], config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=DEVICE_SALT)


def _typed() -> str:
    return login_username_key().removeprefix("user:")


def _device() -> tuple[str, str] | None:
    """(username, device id) from a valid device cookie, else None."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        payload: Any = _serializer().loads(raw, max_age=DEVICE_MAX_AGE)
    except BadData:
        return None
    if not (
        isinstance(payload, list) and len(payload) == 2 and all(isinstance(p, str) for p in payload)
    ):
        return None
    return payload[0], payload[1]


def known_device() -> bool:
    """The attempt comes from a device that signed in before as the username typed."""
    device = _device()
    return device is not None and device[0] == _typed()


def unknown_device() -> bool:
    return not known_device()


def device_key() -> str:
    """A known device's own bucket (the address when the cookie does not hold)."""
    device = _device()
    return "device:" + device[1] if device is not None else address_key()


def failed(response: Response) -> bool:
    """Only a refused password counts against the username (the login answers 401)."""
    return response.status_code == 401


def remember_device(response: Response, username: str) -> Response:
    """Mark this browser as a device the organizer signs in on (after a correct password)."""
    device = _device()
    name = username.strip().casefold()
    device_id = device[1] if device is not None and device[0] == name else secrets.token_urlsafe(16)
    response.set_cookie(
        DEVICE_COOKIE,
        _serializer().dumps([name, device_id]),
        max_age=DEVICE_MAX_AGE,
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure),
    )
    return response


def clear_username(username: str) -> None:
    """Lift the per-username limit for `username` (the CLI's `voting admin unlock`)."""
    item = parse(str(current_app.config["RATELIMIT_LOGIN_PER_USERNAME"]))
    key = "user:" + username.strip().casefold()[:80]
    scope = f"{LOGIN_ENDPOINT}:{USERNAME_SCOPE}"
    # The Limiter keeps the prefix of the first app it was bound to (one per process).
    prefix = getattr(limiter, "_key_prefix", "") or current_app.config["RATELIMIT_KEY_PREFIX"]
    limiter.limiter.clear(item, *([prefix] if prefix else []), key, scope)
