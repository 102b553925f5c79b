"""The poll fingerprint: a SHA-256 over the poll's canonical definition. Plain Python, no Flask.

The definition is what a voter must be able to trust did not change under them:

- `poll`: the slug; `choices`: the active projects' slugs, sorted (a withdrawn one leaves);
- `method`, `max_choices`, `eligibility`, `revote`;
- `tie_seed_hash`: the commitment to the tie-break seed;
- `tokens_issued`: how many voters the organizers let in. For invite polls, every token
  they issued (minted or reissued; a revoked token was still issued). For roster polls,
  the roster entries plus any token issued by hand: a claim turns an entry into its token,
  so it changes nothing. For open polls the string "per-device": anyone may take a pass
  while voting runs, so a count would change with every visitor and prove nothing.

It is serialised canonically (sorted keys, no whitespace, UTF-8, no ASCII escaping) and
hashed with SHA-256; anyone can recompute it from an export with `json` and `hashlib`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

# The fixed `tokens_issued` of an open poll, whose device passes are issued all through voting.
PER_DEVICE = "per-device"
# How many hex digits the short form shows, and in groups of how many.
SHORT_DIGITS = 12
SHORT_GROUP = 4


def definition(
    *,
    poll: str,
    choices: Iterable[str],
    method: str,
    max_choices: int,
    eligibility: str,
    revote: bool,
    tie_seed_hash: str,
    tokens_issued: int | str,
) -> dict[str, Any]:
    """The canonical definition as plain JSON values (choices sorted, enums as text)."""
    return {
        "poll": str(poll),
        "choices": sorted(str(c) for c in choices),
        "method": str(method),
        "max_choices": int(max_choices),
        "eligibility": str(eligibility),
        "revote": bool(revote),
        "tie_seed_hash": str(tie_seed_hash),
        "tokens_issued": tokens_issued if isinstance(tokens_issued, str) else int(tokens_issued),
    }


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The canonical serialisation: sorted keys, no whitespace, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(doc: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical definition, as 64 hex digits."""
    return hashlib.sha256(canonical(doc)).hexdigest()


def short(value: str | None) -> str:
    """The short form people compare by eye: the first 12 hex digits in groups of four."""
    if not value:
        return ""
    head = value[:SHORT_DIGITS]
    return "-".join(head[i : i + SHORT_GROUP] for i in range(0, len(head), SHORT_GROUP))
