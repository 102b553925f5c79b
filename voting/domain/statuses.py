"""The named states and kinds of the model: one StrEnum each, so mypy catches a typo.

A member is a `str` (`PollStatus.OPEN == "open"`), so it goes into JSON, templates and
the database as its value. The models' check constraints are built from these too.
"""

from __future__ import annotations

from enum import StrEnum


class PollStatus(StrEnum):
    """A poll's lifecycle, in order."""

    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    REVEALING = "revealing"
    REVEALED = "revealed"


class Method(StrEnum):
    """How a ballot is counted: one choice, or up to max_choices approvals."""

    PLURALITY = "plurality"
    APPROVAL = "approval"


class Eligibility(StrEnum):
    """Who can get a token: invited links, roster claims, or one per browser."""

    INVITE = "invite"
    ROSTER = "roster"
    OPEN = "open"


class ResultsMode(StrEnum):
    """Who sees counts before the reveal (DESIGN.md rule 5)."""

    LIVE = "live"
    HIDDEN = "hidden"
    SEALED = "sealed"


class TokenKind(StrEnum):
    """How a token was issued."""

    INVITE = "invite"
    ROSTER = "roster"
    DEVICE = "device"


# Statuses before the tally is final, and after: a poll in FINAL takes no ballot again.
BEFORE_CLOSE = (PollStatus.DRAFT, PollStatus.OPEN)
FINAL = (PollStatus.CLOSED, PollStatus.REVEALING, PollStatus.REVEALED)


class ReceiptStatus(StrEnum):
    """A receipt on the public board: its ballot is counted, or a revote replaced it."""

    COUNTED = "counted"
    SUPERSEDED = "superseded"
