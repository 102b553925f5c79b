"""A poll's fingerprint from the database: its definition (domain/fingerprint.py) and hash.

After opening, the definition changes only through audited actions (withdrawing a project,
minting or reissuing tokens, importing roster entries); each records the new fingerprint
in its audit entry, as `poll.open` records the first. The documents show that published
value, read from the poll's latest such entry: recomputing it would count the tokens on
every page view (29 ms for 100,000 tokens on PostgreSQL). The export carries the
definition as it stands too, and `voting verify` checks that the two agree.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from voting.domain import fingerprint as fp
from voting.domain.statuses import Eligibility, PollStatus, TokenKind
from voting.extensions import db
from voting.models import AuditEvent, Poll, RosterEntry, Token

# The batch of the tokens roster claims derive (services/roster.py): a claim turns an
# entry, already counted, into its token, so these are not counted twice.
CLAIM_BATCH = "roster"


def tokens_issued(poll: Poll) -> int | str:
    """The definition's `tokens_issued` (see domain/fingerprint.py for what it counts)."""
    if poll.eligibility == Eligibility.OPEN:
        return fp.PER_DEVICE
    total, claimed = db.session.execute(
        select(
            func.count(Token.id),
            func.count(Token.id).filter(Token.kind == TokenKind.ROSTER, Token.batch == CLAIM_BATCH),
        ).where(Token.poll_id == poll.id)
    ).one()
    issued = int(total) - int(claimed)
    if poll.eligibility == Eligibility.ROSTER:
        issued += int(
            db.session.execute(
                select(func.count(RosterEntry.id)).where(RosterEntry.poll_id == poll.id)
            ).scalar_one()
        )
    return issued


def definition_of(poll: Poll) -> dict[str, Any]:
    """The poll's canonical definition as it stands now."""
    return fp.definition(
        poll=poll.slug,
        choices=(c.project.slug for c in poll.choices if not c.withdrawn),
        method=poll.method,
        max_choices=poll.max_choices,
        eligibility=poll.eligibility,
        revote=poll.allow_revote,
        tie_seed_hash=poll.tie_seed_hash,
        tokens_issued=tokens_issued(poll),
    )


def fingerprint_of(poll: Poll, status: PollStatus) -> str | None:
    """The fingerprint once the poll has opened (status is its effective one); None in draft."""
    if status == PollStatus.DRAFT:
        return None
    return fp.fingerprint(definition_of(poll))


def published_fingerprint(poll: Poll, status: PollStatus) -> str | None:
    """The fingerprint the audit log published last for this poll; None in draft.

    A scheduled opening not yet written down has published nothing: it is computed then.
    """
    if status == PollStatus.DRAFT:
        return None
    detail = db.session.execute(
        select(AuditEvent.detail)
        .where(AuditEvent.poll_slug == poll.slug, AuditEvent.detail.contains('"fingerprint":"'))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    try:
        value = json.loads(detail)["fingerprint"] if detail else None
    except (ValueError, KeyError, TypeError):
        value = None
    return str(value) if value else fingerprint_of(poll, status)


def audit_detail(poll: Poll, status: PollStatus) -> dict[str, str]:
    """`fingerprint=...` for the audit entry of a change to an opened poll; nothing in draft."""
    value = fingerprint_of(poll, status)
    return {} if value is None else {"fingerprint": value}
