"""Signing and reading voter tokens. One serializer per purpose, each with its own salt.

A token carries only the poll id, a random token id and optionally the ids of projects
its holder may not vote for. The signed string itself is never stored: everything the
server remembers ("issued", "revoked", "used") is keyed on the decoded token id, so the
several spellings of one signature, or a re-signed token, all count as the same token.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from itsdangerous import BadData, URLSafeSerializer

from voting.domain.errors import InvalidToken

VOTER_TOKEN_SALT = "voting.voter-token.v1"  # noqa: S105 (a salt, not a secret)
OVERLAY_KEY_SALT = "voting.overlay-key.v1"

TOKEN_ID_BYTES = 16


@dataclass(frozen=True)
class VoterToken:
    poll_id: int
    token_id: str
    excluded: frozenset[int] = field(default_factory=frozenset)


def new_token_id() -> str:
    """A random, unguessable token id (128 bits)."""
    return secrets.token_urlsafe(TOKEN_ID_BYTES)


def _keys(secret_key: str, fallbacks: Sequence[str]) -> list[str]:
    # itsdangerous signs with the last key and accepts any of them.
    return [*fallbacks, secret_key]


class TokenSigner:
    """Signs and reads one purpose's payloads with the current key and its fallbacks."""

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = (), *, salt: str) -> None:
        self._serializer = URLSafeSerializer(_keys(secret_key, fallbacks), salt=salt)

    def dumps(self, payload: object) -> str:
        return str(self._serializer.dumps(payload))

    def loads(self, token: str) -> object:
        try:
            return self._serializer.loads(token)
        except BadData as exc:
            raise InvalidToken() from exc
        except (UnicodeError, ValueError, TypeError) as exc:
            raise InvalidToken() from exc


def sign_voter_token(signer: TokenSigner, token: VoterToken) -> str:
    """The signed string handed to a voter."""
    payload: list[object] = [token.poll_id, token.token_id]
    if token.excluded:
        payload.append(sorted(token.excluded))
    return signer.dumps(payload)


def read_voter_token(signer: TokenSigner, raw: str) -> VoterToken:
    """Check the signature and the payload's shape; raise InvalidToken otherwise."""
    if not isinstance(raw, str) or not raw or len(raw) > 512:
        raise InvalidToken()
    return _read_checked(signer, raw)


# A ballot's token is read twice per request (the rate limiter's key, then the service):
# remember the last tokens whose signature held, so the HMAC is checked once. What is
# kept is only what the signature already proved; a refused string is never kept.
@functools.lru_cache(maxsize=4096)
def _read_checked(signer: TokenSigner, raw: str) -> VoterToken:
    payload = signer.loads(raw)
    if not isinstance(payload, list) or len(payload) not in (2, 3):
        raise InvalidToken()
    poll_id, token_id = payload[0], payload[1]
    if isinstance(poll_id, bool) or not isinstance(poll_id, int):
        raise InvalidToken()
    if not isinstance(token_id, str) or not 8 <= len(token_id) <= 43:
        raise InvalidToken()
    excluded: frozenset[int] = frozenset()
    if len(payload) == 3:
        raw_excluded = payload[2]
        if not isinstance(raw_excluded, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) for x in raw_excluded
        ):
            raise InvalidToken()
        excluded = frozenset(raw_excluded)
    return VoterToken(poll_id=poll_id, token_id=token_id, excluded=excluded)
