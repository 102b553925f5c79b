"""The append-only, hash-chained log of everything an organizer does."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from voting.extensions import db
from voting.models import AuditEvent, utcnow

GENESIS = "0" * 64
# Any fixed number: serialises audit appends across connections on PostgreSQL.
_AUDIT_LOCK_ID = 7_310_001


def _canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_hash(
    prev_hash: str, at: str, actor: str, action: str, poll: str | None, detail: str
) -> str:
    """The chain link: sha256 over the previous hash and this entry's canonical fields."""
    body = json.dumps(
        {
            "prev": prev_hash,
            "at": at,
            "actor": actor,
            "action": action,
            "poll": poll,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(actor: str, action: str, poll: str | None = None, **detail: Any) -> AuditEvent:
    """Append one entry in the caller's transaction, so the action and its record commit together."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_ID})
    prev = db.session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    prev_hash = prev or GENESIS
    at = utcnow().replace(microsecond=0)
    detail_json = json.dumps(
        detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        poll_slug=poll,
        detail=detail_json,
        prev_hash=prev_hash,
        hash=event_hash(prev_hash, _canonical_time(at), actor, action, poll, detail_json),
    )
    db.session.add(event)
    db.session.flush()
    return event


def as_export(event: AuditEvent) -> dict[str, Any]:
    """An entry as the export carries it."""
    return {
        "id": event.id,
        "at": _canonical_time(event.at),
        "actor": event.actor,
        "action": event.action,
        "poll": event.poll_slug,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def verify_chain(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Problems found walking the chain from its start; an empty list means it holds."""
    problems: list[str] = []
    prev = GENESIS
    for n, entry in enumerate(entries, start=1):
        try:
            expected = event_hash(
                prev, entry["at"], entry["actor"], entry["action"], entry["poll"], entry["detail"]
            )
        except (KeyError, TypeError):
            problems.append(f"entry {n}: missing fields")
            break
        if entry.get("prev_hash") != prev:
            problems.append(
                f"entry {n} (id {entry.get('id')}): does not follow the entry before it"
            )
        if entry.get("hash") != expected:
            problems.append(
                f"entry {n} (id {entry.get('id')}): its content does not match its hash"
            )
        prev = str(entry.get("hash"))
    return problems


def all_entries() -> list[dict[str, Any]]:
    """The whole log in order, as exported."""
    events = db.session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
    return [as_export(e) for e in events]
