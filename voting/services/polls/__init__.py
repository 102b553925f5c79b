"""Polls: the lifecycle and its locks, drafts, counting and results (one module each)."""

from voting.services.polls.counting import (
    ballots_last_minute,
    ballots_per_minute,
    counted,
    turnout,
)
from voting.services.polls.drafts import (
    SLUG_RE,
    PollSpec,
    check_schedule,
    create_poll,
    update_poll,
    withdraw_project,
)
from voting.services.polls.lifecycle import (
    SCHEDULE_ACTOR,
    active_choice_count,
    close_poll,
    effective_status,
    get_poll,
    list_polls,
    lock_poll,
    open_poll,
    reveal,
    settle_schedule,
    with_poll_lock,
)
from voting.services.polls.results import (
    Standing,
    cache_ident,
    counts_visible,
    live_documents,
    poll_document,
    results_document,
    results_view,
)

__all__ = [
    "SCHEDULE_ACTOR",
    "SLUG_RE",
    "PollSpec",
    "Standing",
    "active_choice_count",
    "ballots_last_minute",
    "ballots_per_minute",
    "cache_ident",
    "check_schedule",
    "close_poll",
    "counted",
    "counts_visible",
    "create_poll",
    "effective_status",
    "get_poll",
    "list_polls",
    "live_documents",
    "lock_poll",
    "open_poll",
    "poll_document",
    "results_document",
    "results_view",
    "reveal",
    "settle_schedule",
    "turnout",
    "update_poll",
    "with_poll_lock",
    "withdraw_project",
]
