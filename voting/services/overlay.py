"""Overlay keys: signed, read-only, per poll; rotating the poll's version revokes them."""

from __future__ import annotations

from typing import Protocol

from flask import current_app

from voting import live
from voting.database import atomic, begin_write
from voting.domain.errors import InvalidToken
from voting.domain.tokens import OVERLAY_KEY_SALT, TokenSigner
from voting.extensions import db
from voting.links import public_url
from voting.models import Poll
from voting.services import audit


def _signer() -> TokenSigner:
    config = current_app.config
    return TokenSigner(config["SECRET_KEY"], config["SECRET_KEY_FALLBACKS"], salt=OVERLAY_KEY_SALT)


def overlay_key(poll: Poll) -> str:
    """The key that lets a stream overlay read this poll."""
    return _signer().dumps([poll.id, poll.overlay_key_version])


def overlay_url(poll: Poll) -> str:
    """The overlay's address for OBS, with its key."""
    return public_url("overlay.show", slug=poll.slug, key=overlay_key(poll))


class KeyedPoll(Protocol):
    """What an overlay key is checked against: a Poll, or a live snapshot's note of one."""

    @property
    def id(self) -> int: ...

    @property
    def overlay_key_version(self) -> int: ...


def check_overlay_key(poll: KeyedPoll, key: str | None) -> bool:
    """True when the key was signed for this poll's current overlay version."""
    if not key:
        return False
    try:
        payload = _signer().loads(key)
    except InvalidToken:
        return False
    return payload == [poll.id, poll.overlay_key_version]


@atomic
def rotate_overlay_key(poll: Poll, *, actor: str) -> str:
    """Revoke every overlay URL of this poll and return the new one."""
    begin_write()
    poll.overlay_key_version += 1
    audit.record(actor, "overlay.rotate", poll.slug, version=poll.overlay_key_version)
    db.session.commit()
    live.notify(poll.slug)  # open overlays with the old key stop
    return overlay_url(poll)
