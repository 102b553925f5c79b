"""Receipt and card codes: their alphabet, and reading one back the way a person types it."""

from __future__ import annotations

import re

# Crockford's base32 without look-alikes: easy to read aloud and type.
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUP, GROUPS = 4, 3
# What a person may type between groups, or by mistake around them: spaces, dashes, dots.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212._]+")
# Crockford's decoding: letters that look like digits are read as those digits.
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def normalise_receipt(typed: str) -> str | None:
    """The receipt code `typed` means, as printed (7KQ2-M9XD-4TBR); None if it cannot be one.

    Case, spaces, missing or extra dashes and the look-alike letters O, I and L are forgiven.
    """
    raw = _SEPARATORS.sub("", typed).upper().translate(_LOOK_ALIKES)
    if len(raw) != GROUP * GROUPS or any(c not in RECEIPT_ALPHABET for c in raw):
        return None
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


# A QR card's short code, typed at /p/<slug>/claim when the QR code will not scan: 50 bits
# (10 characters), against the claim page's rate limit of hundreds of guesses a minute.
CARD_GROUP, CARD_GROUPS = 5, 2


def card_code(digest: bytes) -> str:
    """The card code (like K7QM2-XD9PA) spelled by the first 50 bits of a keyed digest."""
    bits = int.from_bytes(digest[:7], "big") >> 6
    raw = "".join(RECEIPT_ALPHABET[(bits >> shift) & 31] for shift in range(45, -5, -5))
    return raw[:CARD_GROUP] + "-" + raw[CARD_GROUP:]


def normalise_card_code(typed: str) -> str | None:
    """The card code `typed` means, as printed; None if it cannot be one (as for receipts)."""
    raw = _SEPARATORS.sub("", typed).upper().translate(_LOOK_ALIKES)
    if len(raw) != CARD_GROUP * CARD_GROUPS or any(c not in RECEIPT_ALPHABET for c in raw):
        return None
    return raw[:CARD_GROUP] + "-" + raw[CARD_GROUP:]
