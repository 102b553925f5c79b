"""Reading a voter's token without spending it: is this link still good, and has it voted?"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from voting.domain.errors import InvalidToken
from voting.domain.tokens import VoterToken, read_voter_token
from voting.extensions import db
from voting.models import Ballot, Poll, Token
from voting.services.issuing import voter_signer


class UnusableLink(InvalidToken):
    """An InvalidToken that says which way the link fails, so a page can explain it."""

    def __init__(self, message: str | None = None, *, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason  # unreadable | other-poll | unknown | revoked


@dataclass(frozen=True)
class Voter:
    poll: Poll
    token: VoterToken
    receipt: str | None


def check_token(raw: str, poll: Poll | None = None) -> Voter:
    """A token that was issued for its poll and not revoked, with its receipt if it voted.

    Only reads: link previews and scanners may call this as often as they like (rule 3).
    Raises UnusableLink (an InvalidToken) for anything else, with the reason.
    """
    try:
        token = read_voter_token(voter_signer(), raw)
    except InvalidToken as exc:
        raise UnusableLink(exc.message, reason="unreadable") from None
    if poll is None:
        poll = db.session.get(Poll, token.poll_id)
    if poll is None or token.poll_id != poll.id:
        raise UnusableLink("This voting link belongs to another poll.", reason="other-poll")
    row = db.session.execute(
        select(Token.revoked_at, Ballot.receipt)
        .outerjoin(Ballot, Ballot.token_id == Token.id)
        .where(Token.id == token.token_id, Token.poll_id == poll.id)
    ).first()
    if row is None:
        raise UnusableLink("This voting link was never issued for this poll.", reason="unknown")
    if row.revoked_at is not None:
        raise UnusableLink(
            "This voting link was cancelled by the organizers. Ask them for a new one.",
            reason="revoked",
        )
    return Voter(poll=poll, token=token, receipt=row.receipt)
