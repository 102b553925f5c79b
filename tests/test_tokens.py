from __future__ import annotations

import base64

import pytest
from itsdangerous import URLSafeSerializer

from voting.domain.errors import InvalidToken
from voting.domain.tokens import (
    OVERLAY_KEY_SALT,
    VOTER_TOKEN_SALT,
    TokenSigner,
    VoterToken,
    new_token_id,
    read_voter_token,
    sign_voter_token,
)

KEY = "k" * 40


def signer(key: str = KEY, fallbacks: tuple[str, ...] = ()) -> TokenSigner:
    return TokenSigner(key, fallbacks, salt=VOTER_TOKEN_SALT)


def test_round_trip_with_exclusions() -> None:
    token = VoterToken(poll_id=7, token_id=new_token_id(), excluded=frozenset({3, 1}))
    raw = sign_voter_token(signer(), token)
    assert read_voter_token(signer(), raw) == token


def test_payload_holds_only_poll_and_id() -> None:
    token = VoterToken(poll_id=7, token_id="abcdefghijkl")
    raw = sign_voter_token(signer(), token)
    payload = raw.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert decoded == b'[7,"abcdefghijkl"]'


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-2] + ("AA" if not raw.endswith("AA") else "BB"),
        lambda raw: "x" + raw,
        lambda raw: raw.split(".")[0],
        lambda raw: "",
        lambda raw: raw + "." + raw,
        lambda raw: "WzgsImFiY2RlZmdoaWprbCJd." + raw.split(".")[1],
    ],
    ids=[
        "tampered-signature",
        "tampered-payload",
        "no-signature",
        "empty",
        "doubled",
        "swapped-payload",
    ],
)
def test_tampered_tokens_are_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    raw = sign_voter_token(signer(), VoterToken(poll_id=7, token_id="abcdefghijkl"))
    with pytest.raises(InvalidToken):
        read_voter_token(signer(), mangle(raw))


def test_wrong_salt_and_wrong_key_are_refused() -> None:
    token = VoterToken(poll_id=7, token_id="abcdefghijkl")
    overlay = TokenSigner(KEY, salt=OVERLAY_KEY_SALT)
    with pytest.raises(InvalidToken):
        read_voter_token(signer(), sign_voter_token(overlay, token))
    with pytest.raises(InvalidToken):
        read_voter_token(signer(), sign_voter_token(signer("other" * 10), token))


@pytest.mark.parametrize(
    "payload",
    [
        [7],
        [7, "abcdefghijkl", [1], 4],
        ["7", "abcdefghijkl"],
        [True, "abcdefghijkl"],
        [7, "short"],
        [7, 12345678],
        {"p": 7},
        [7, "abcdefghijkl", ["x"]],
    ],
)
def test_well_signed_but_malformed_payloads_are_refused(payload: object) -> None:
    raw = URLSafeSerializer(KEY, salt=VOTER_TOKEN_SALT).dumps(payload)
    with pytest.raises(InvalidToken):
        read_voter_token(signer(), raw)


def test_rotation_accepts_fallback_keys_and_signs_with_the_new_one() -> None:
    token = VoterToken(poll_id=1, token_id="abcdefghijkl")
    old = sign_voter_token(signer("old-key" * 5), token)
    rotated = signer("new-key" * 5, ("old-key" * 5,))
    assert read_voter_token(rotated, old) == token
    fresh = sign_voter_token(rotated, token)
    assert read_voter_token(signer("new-key" * 5), fresh) == token
    with pytest.raises(InvalidToken):
        read_voter_token(signer("new-key" * 5), old)
