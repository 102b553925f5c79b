"""Domain errors. Services raise these; voting.web.errors maps them to HTTP answers."""

from __future__ import annotations


class VotingError(Exception):
    """A refusal a person can understand: a stable code, an HTTP status, a sentence."""

    code = "error"
    status = 400
    message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class InvalidRequest(VotingError):
    code = "invalid_request"
    status = 400
    message = "The request is not valid."


class InvalidToken(VotingError):
    code = "invalid_token"
    status = 403
    message = "This voting link is not valid. Ask the organizers for a new one."


class AlreadyVoted(VotingError):
    code = "already_voted"
    status = 409
    message = "This voting link has already been used to vote."

    def __init__(self, message: str | None = None, receipt: str | None = None) -> None:
        super().__init__(message)
        self.receipt = receipt


class PollNotOpen(VotingError):
    code = "poll_not_open"
    status = 409
    message = "Voting is not open for this poll right now."


class PollStateError(VotingError):
    code = "invalid_state"
    status = 409
    message = "The poll is not in a state that allows this."


class NotFound(VotingError):
    code = "not_found"
    status = 404
    message = "There is nothing here."
