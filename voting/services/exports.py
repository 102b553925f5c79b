"""The full export of a poll, and its independent verification."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from voting import tally
from voting.database import begin_write
from voting.extensions import db
from voting.models import Ballot, BallotChoice, Project
from voting.services import audit, polls

EXPORT_FORMAT = "voting-export/1"


def export_poll(slug: str, *, actor: str) -> dict[str, Any]:
    """Poll, projects, tally, published ballots (receipt + choices) and the audit chain."""
    begin_write()
    poll = polls.settle_schedule(polls.get_poll(slug))
    audit.record(actor, "poll.export", poll.slug)
    db.session.commit()
    status = polls.effective_status(poll)
    slugs = {c.project_id: c.project.slug for c in poll.choices}
    by_ballot: dict[int, list[str]] = defaultdict(list)
    rows = db.session.execute(
        select(BallotChoice.ballot_id, BallotChoice.project_id).where(
            BallotChoice.poll_id == poll.id
        )
    )
    for ballot_id, project_id in rows:
        by_ballot[ballot_id].append(slugs[project_id])
    receipts = db.session.execute(
        select(Ballot.id, Ballot.receipt).where(Ballot.poll_id == poll.id).order_by(Ballot.receipt)
    )
    projects = [c.project for c in poll.choices]
    seed_public = status in ("closed", "revealing", "revealed")
    return {
        "format": EXPORT_FORMAT,
        "poll": {
            **polls.poll_document(poll),
            "tie_seed": poll.tie_seed if seed_public else None,
            "closed_at": polls._iso(poll.closed_at),
        },
        "projects": [
            _project(p, withdrawn=c.withdrawn) for p, c in zip(projects, poll.choices, strict=True)
        ],
        "tally": polls.results_view(poll, organizer=True),
        "ballots": [{"receipt": r, "choices": sorted(by_ballot[i])} for i, r in receipts],
        "audit": audit.all_entries(),
    }


def _project(project: Project, *, withdrawn: bool) -> dict[str, Any]:
    return {
        "slug": project.slug,
        "title": project.title,
        "team": project.team,
        "category": project.category,
        "theme": project.theme,
        "repo_url": project.repo_url,
        "demo_url": project.demo_url,
        "withdrawn": withdrawn,
    }


def verify_export(doc: Mapping[str, Any]) -> list[str]:
    """Problems found recomputing the tally and walking the audit chain; empty when all match."""
    problems: list[str] = []
    if doc.get("format") != EXPORT_FORMAT:
        return [f"not a {EXPORT_FORMAT} document"]
    poll = doc.get("poll") or {}
    active = [c["project"] for c in poll.get("choices", [])]
    ballots = doc.get("ballots") or []
    if any(not set(b.get("choices", [])) <= set(active) for b in ballots):
        problems.append("a ballot names a project that is not in the poll")
    counts = tally.count((b.get("choices", []) for b in ballots), active)
    stated = doc.get("tally") or {}
    if stated.get("turnout") != len(ballots):
        problems.append(
            f"turnout says {stated.get('turnout')} but the export holds {len(ballots)} ballots"
        )
    seed = poll.get("tie_seed")
    if seed is not None:
        if tally.seed_hash(seed) != poll.get("tie_seed_hash"):
            problems.append("the published tie-break seed does not match its committed hash")
        expected = [p.as_dict() for p in tally.rank(counts, seed)]
        got = [
            {"project": r["project"], "votes": r["votes"], "rank": r["rank"]}
            for r in stated.get("results", [])
        ]
        if got != expected:
            problems.append("the stated ranking does not match the ballots")
    else:
        got_counts = {r["project"]: r["votes"] for r in stated.get("results", [])}
        if got_counts and got_counts != counts:
            problems.append("the stated counts do not match the ballots")
    problems.extend(audit.verify_chain(doc.get("audit") or []))
    return problems
