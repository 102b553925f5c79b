"""A first ballot on PostgreSQL in one statement: every check and both inserts, one round trip.

The statement runs on a pooled connection in autocommit, so it is its own transaction:
no BEGIN, no COMMIT, no ORM, not even SQLAlchemy's execution layer (the profile in
docs/benchmarks.md found each of those costing more than the statement). It holds the poll row FOR KEY SHARE while it checks that the
poll is open and inserts, exactly as the multi-statement path in services.ballots does
(a close's FOR UPDATE waits for it, and it sees a close committed before it; rule 2).
The unique constraint on ballots.token_id still decides a race (ON CONFLICT DO NOTHING,
rule 1). When nothing was inserted, the rows it returns say why, and services.ballots
raises the same errors the other path would.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voting.database import autocommitted
from voting.domain.statuses import PollStatus

# The statuses are PollStatus.OPEN and .DRAFT (asserted below). Checks mirror services.ballots: the window (domain.schedule.window_status), an issued and
# unrevoked token of this poll, every chosen slug an active choice, none excluded.
_SQL = """
WITH poll AS (
    SELECT id, status, opens_at, closes_at, max_choices, allow_revote
    FROM polls WHERE slug = %(slug)s
    FOR KEY SHARE
), tok AS (
    SELECT tokens.id, tokens.revoked_at FROM tokens JOIN poll ON tokens.poll_id = poll.id
    WHERE tokens.id = %(token_id)s
), picked AS (
    SELECT projects.slug, poll_choices.project_id
    FROM poll_choices
    JOIN poll ON poll_choices.poll_id = poll.id
    JOIN projects ON projects.id = poll_choices.project_id
    WHERE NOT poll_choices.withdrawn AND projects.slug = ANY(%(slugs)s::text[])
), allowed AS (
    SELECT poll.id FROM poll JOIN tok ON tok.revoked_at IS NULL
    WHERE poll.id = %(token_poll)s
      AND (poll.status = 'open' OR (poll.status = 'draft' AND poll.opens_at <= %(now)s))
      AND (poll.closes_at IS NULL OR poll.closes_at > %(now)s)
      AND cardinality(%(slugs)s::text[]) <= poll.max_choices
      AND (SELECT count(*) FROM picked) = cardinality(%(slugs)s::text[])
      AND NOT EXISTS (SELECT 1 FROM picked WHERE picked.project_id = ANY(%(excluded)s::int[]))
), ballot AS (
    INSERT INTO ballots (poll_id, token_id, receipt, cast_minute)
    SELECT id, %(token_id)s, %(receipt)s, date_trunc('minute', %(now)s::timestamptz) FROM allowed
    ON CONFLICT (token_id) DO NOTHING
    RETURNING id, poll_id
), chosen AS (
    INSERT INTO ballot_choices (ballot_id, poll_id, project_id)
    SELECT ballot.id, ballot.poll_id, picked.project_id FROM ballot CROSS JOIN picked
)
SELECT poll.id, poll.status, poll.opens_at, poll.closes_at, poll.max_choices,
       poll.allow_revote, tok.id AS token_id, tok.revoked_at,
       picked.slug AS choice_slug, picked.project_id AS choice_id,
       (SELECT id FROM ballot) AS ballot_id
FROM poll LEFT JOIN tok ON TRUE LEFT JOIN picked ON TRUE
"""


if (PollStatus.OPEN, PollStatus.DRAFT) != ("open", "draft"):  # spelled out in _SQL
    raise RuntimeError("ballot_statement._SQL names statuses that PollStatus no longer has")


@dataclass(frozen=True)
class Outcome:
    """What the statement did: the new ballot's id, or None and the rows that say why not."""

    ballot_id: int | None
    rows: Sequence[Any]


def insert_first_ballot(
    *,
    slug: str,
    token_id: str,
    token_poll: int,
    excluded: Collection[int],
    slugs: list[str],
    receipt: str,
    now: datetime,
) -> Outcome:
    """Check and insert a first ballot in one autocommitted statement (PostgreSQL only).

    A unique violation (a receipt drawn twice) raises psycopg.errors.UniqueViolation; the
    pool's timeout raises SQLAlchemy's TimeoutError (503 busy) before anything is sent.
    """
    params = {
        "slug": slug,
        "token_id": token_id,
        "token_poll": token_poll,
        "excluded": sorted(excluded),
        "slugs": slugs,
        "receipt": receipt,
        "now": now,
    }
    rows = autocommitted(_SQL, params)
    ballot_id = rows[0].ballot_id if rows else None
    return Outcome(ballot_id=ballot_id, rows=rows)
