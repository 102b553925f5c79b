"""Organizer accounts."""

from __future__ import annotations

import re

from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from voting.database import atomic, begin_write
from voting.domain.errors import InvalidRequest
from voting.extensions import db
from voting.models import Organizer
from voting.services import audit

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{2,80}$")
MIN_PASSWORD = 12

# Verified against when the username is unknown, so both paths cost one scrypt of the
# configured strength (keyed by method, since tests lower it).
_DUMMY_HASH: dict[str, str] = {}


def hash_password(password: str) -> str:
    """A salted hash with PASSWORD_HASH_METHOD (config.py; tests lower its cost)."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    return generate_password_hash(password, method=method)


@atomic
def create_organizer(username: str, password: str, *, actor: str) -> Organizer:
    """A new organizer account."""
    if not USERNAME_RE.match(username):
        raise InvalidRequest("A username is 2 to 80 letters, digits or . _ @ -.")
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"Use a password of at least {MIN_PASSWORD} characters.")
    begin_write()
    if db.session.execute(select(Organizer.id).where(Organizer.username == username)).first():
        raise InvalidRequest(f"An organizer called {username!r} already exists.")
    organizer = Organizer(username=username, password_hash=hash_password(password))
    db.session.add(organizer)
    audit.record(actor, "organizer.create", username=username)
    db.session.commit()
    return organizer


def check_password(organizer: Organizer, password: str) -> bool:
    """Whether the password is the organizer's."""
    return check_password_hash(organizer.password_hash, password)


def _dummy_hash() -> str:
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _DUMMY_HASH:
        _DUMMY_HASH[method] = hash_password("not-a-real-password")
    return _DUMMY_HASH[method]


@atomic
def authenticate(username: str, password: str) -> Organizer | None:
    """The organizer these credentials belong to, or None; either way the attempt is audited.

    An unknown username costs the same hash check as a known one, so timing tells nothing.
    """
    organizer = db.session.execute(
        select(Organizer).where(Organizer.username == username)
    ).scalar_one_or_none()
    if organizer is None:
        check_password_hash(_dummy_hash(), password)
        ok = False
    else:
        ok = check_password(organizer, password)
    # The write transaction begins only after the hash check: on SQLite it holds the one
    # write lock, and a slow scrypt under it would hold up every ballot meanwhile.
    begin_write()
    audit.record(username or "(empty)", "login.success" if ok else "login.failure")
    db.session.commit()
    return organizer if ok else None


@atomic
def record_logout(actor: str) -> None:
    """Write the logout to the audit log."""
    begin_write()
    audit.record(actor, "logout")
    db.session.commit()


@atomic
def record_unlock(username: str, *, actor: str) -> None:
    """Write to the audit log that the sign-in limit of `username` was lifted."""
    begin_write()
    audit.record(actor, "login.unlock", username=username)
    db.session.commit()
