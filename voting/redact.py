"""Keep voter tokens out of logs: every logged path goes through redact_path."""

from __future__ import annotations

import re

# /v/<token> is the voter link; the overlay key rides in ?key=.
_VOTER_LINK = re.compile(r"(/v/)[^/?\s\"]+")
_KEY_PARAM = re.compile(r"([?&](?:key|token)=)[^&\s\"]+")


def redact_path(text: str) -> str:
    """The same text with voter tokens and overlay keys replaced by [redacted]."""
    return _KEY_PARAM.sub(r"\1[redacted]", _VOTER_LINK.sub(r"\1[redacted]", text))
