"""Receipt codes: their alphabet, and reading one back the way a person types it."""

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
