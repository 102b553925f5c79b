"""What the poll page's live section shows: counts, the ballots chart, issuance."""

from __future__ import annotations

from typing import Any

from flask import current_app

from voting.domain.statuses import BEFORE_CLOSE, PollStatus
from voting.models import Poll, utcnow
from voting.services import issuing, polls
from voting.web.admin.chart import ballot_chart
from voting.web.admin.timezones import local_zone


def live_context(poll: Poll) -> dict[str, Any]:
    """The template context of the live section (admin/_live.html)."""
    doc = polls.results_view(poll, organizer=True)
    status = doc["status"]
    now = utcnow()
    zone = local_zone()
    end = now if status in BEFORE_CLOSE else (poll.closed_at or now)
    chart = ballot_chart(
        polls.ballots_per_minute(poll), start=poll.opened_at or poll.opens_at, end=end, zone=zone
    )
    results = doc.get("results") or []
    places = int(doc.get("places", 0))
    shown = (
        int(doc.get("reveal_step", 0))
        if status in (PollStatus.REVEALING, PollStatus.REVEALED)
        else 0
    )
    for index, row in enumerate(results):
        row["public"] = index >= places - shown
    return {
        "poll": poll,
        "doc": doc,
        "status": status,
        "chart": chart,
        "stats": issuing.issuance_stats(poll),
        "results": results,
        "places": places,
        "shown": shown,
        "top_votes": max((r["votes"] for r in results), default=0) or 1,
        "refresh_seconds": float(current_app.config["ADMIN_LIVE_REFRESH_SECONDS"]),
        "updated": f"{now.astimezone(zone):%H:%M:%S} {now.astimezone(zone).tzname()}",
    }
