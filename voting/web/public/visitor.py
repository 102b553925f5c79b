"""Who is looking: this browser's voting link for a poll, and what it lets them do now."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flask import url_for

from voting.domain.statuses import PollStatus
from voting.domain.tokens import VoterToken
from voting.models import Poll
from voting.services import voters
from voting.web.voter_cookie import raw_cookie_token


class PageState(StrEnum):
    """What a visitor can do with a poll now; each state has its own page (or panel)."""

    NOT_OPEN = "not-open"
    CLOSED = "closed"
    VOTED = "voted"
    INVALID = "invalid"
    NO_TOKEN = "no-token"  # noqa: S105 (a page state, not a secret)
    VOTE = "vote"
    REVOTE = "revote"


CAN_VOTE = (PageState.VOTE, PageState.REVOTE)


@dataclass(frozen=True)
class Visitor:
    """This browser's voting link for the poll, as its cookie holds it."""

    raw: str | None = None
    token: VoterToken | None = None
    receipt: str | None = None
    problem: str | None = None  # why the cookie's token cannot vote (UnusableLink.reason)

    @property
    def excluded(self) -> frozenset[int]:
        return self.token.excluded if self.token else frozenset()


def poll_path(poll: Poll) -> str:
    """The poll's ballot page, where its voter cookie lives."""
    return url_for("public.ballot", slug=poll.slug)


def visitor_for(poll: Poll) -> Visitor:
    """The visitor as the poll's cookie shows them: checked against the database, not spent."""
    raw = raw_cookie_token(poll)
    if not raw:
        return Visitor()
    try:
        voter = voters.check_token(raw, poll)
    except voters.UnusableLink as exc:
        return Visitor(problem=exc.reason)
    return Visitor(raw=raw, token=voter.token, receipt=voter.receipt)


def page_state(poll: Poll, status: PollStatus, visitor: Visitor) -> PageState:
    """What this visitor can do with this poll now."""
    if status == PollStatus.DRAFT:
        return PageState.NOT_OPEN
    if status != PollStatus.OPEN:
        return PageState.CLOSED
    if visitor.receipt and not poll.allow_revote:
        return PageState.VOTED
    if visitor.problem:
        return PageState.INVALID
    if visitor.token is None:
        return PageState.NO_TOKEN
    return PageState.REVOTE if visitor.receipt else PageState.VOTE
