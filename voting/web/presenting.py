"""How a results page and the overlay present a results document: what to show, when to look again."""

from __future__ import annotations

from typing import Any

from voting.domain.statuses import PollStatus
from voting.models import Poll


def shown_places(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The places a results page or overlay shows now: during the staged reveal only those
    revealed so far (last place first), even where the results mode would show them all."""
    rows: list[dict[str, Any]] = doc.get("results") or []
    if doc["status"] == PollStatus.REVEALING:
        first_shown = doc["places"] - doc.get("reveal_step", 0)
        rows = [row for row in rows if row["rank"] > first_shown]
    return rows


def tied_with(rows: list[dict[str, Any]], row: dict[str, Any]) -> list[dict[str, Any]]:
    """The places among `rows` (those a viewer is shown) that `row` is tied with: the others
    with as many votes, best placed first. The document marks a row `tied` and leaves the
    names to this, so a 100-way tie costs 100 flags, not 9,900 slugs."""
    if not row.get("tied"):
        return []
    return [r for r in rows if r["votes"] == row["votes"] and r["project"] != row["project"]]


def refresh_hint(poll: Poll, status: PollStatus) -> int | None:
    """Seconds after which a page without JavaScript should look again (None: it is final)."""
    if status == PollStatus.REVEALED:
        return None
    if status == PollStatus.REVEALING:
        return min(5, poll.reveal_auto_seconds or 5)
    return {PollStatus.DRAFT: 30, PollStatus.OPEN: 15, PollStatus.CLOSED: 10}.get(status, 15)
