"""The console's front page: every poll with its issuance, and totals per eligibility mode."""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template
from flask.typing import ResponseReturnValue

from voting import metrics
from voting.domain.statuses import Eligibility
from voting.services import issuing, polls, projects, readiness
from voting.web.admin.blueprint import bp


@dataclass
class ModeTotals:
    """Polls and links of one eligibility mode, summed."""

    polls: int = 0
    issued: int = 0
    claimed: int = 0
    used: int = 0
    revoked: int = 0


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    rows = []
    modes = {mode: ModeTotals() for mode in Eligibility}
    for poll in polls.list_polls():
        stats = issuing.issuance_stats(poll)
        rows.append({"poll": poll, "status": polls.effective_status(poll), "stats": stats})
        totals = modes[poll.eligibility]
        totals.polls += 1
        totals.issued += stats.issued
        totals.claimed += stats.claimed
        totals.used += stats.used
        totals.revoked += stats.revoked
    return render_template(
        "admin/dashboard.html",
        rows=rows,
        modes=modes,
        project_count=len(projects.list_projects()),
        health=_health(),
    )


def _health() -> dict[str, object]:
    """The few figures an organizer watches on the day (this instance's, since it started)."""
    figures = metrics.figures()
    return {
        "ballots_last_minute": polls.ballots_last_minute(),
        "server_errors": int(figures["server_errors"]),
        "unavailable": int(figures["unavailable"]),
        "viewers": int(figures["streams_open"]),
        "redis": readiness.check().get("redis", "not configured"),
    }
