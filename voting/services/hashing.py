"""Keyed hashes for personal data we must match but must not keep (emails, ticket codes)."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 of value under the hash key, separated by purpose; hex."""
    key = current_app.config["HASH_KEY"] or current_app.config["SECRET_KEY"]
    return hmac.new(f"{key}:{purpose}".encode(), value.encode(), hashlib.sha256).hexdigest()


def email_hash(email: str) -> str:
    """The keyed hash of an email address, case and surrounding space ignored."""
    return keyed_hash("email", email.strip().casefold())
