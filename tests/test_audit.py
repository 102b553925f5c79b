"""voting.services.audit on its own: appending to the hash chain, walking it, exporting it."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from voting.extensions import db
from voting.models import AuditEvent
from voting.services import audit


def out_of_place(n: int, entry: dict[str, Any]) -> list[str]:
    """What verify_chain says of entry n when it does not follow the one before it.

    Its hash covers the previous entry's hash, so it no longer matches either.
    """
    return [
        f"entry {n} (id {entry['id']}): does not follow the entry before it",
        f"entry {n} (id {entry['id']}): its content does not match its hash",
    ]


def three_entries() -> list[dict[str, Any]]:
    """Record three entries (committed) and return the whole log as exported."""
    audit.record("ana", "poll.create", "cf", title="Community Favorite")
    audit.record("ana", "poll.open", "cf")
    audit.record("bo", "tokens.mint", "cf", count=25, batch="b1")
    db.session.commit()
    return audit.all_entries()


def test_record_starts_the_chain_at_genesis_and_links_each_entry_to_the_last(ctx: Flask) -> None:
    first = audit.record("ana", "poll.create", "cf", title="Community Favorite")
    second = audit.record("ana", "organizer.login")
    db.session.commit()

    assert first.prev_hash == audit.GENESIS
    assert second.prev_hash == first.hash
    assert first.hash != second.hash
    for event in (first, second):
        at = event.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert event.hash == audit.event_hash(
            event.prev_hash, at, event.actor, event.action, event.poll_slug, event.detail
        )
    assert first.poll_slug == "cf" and second.poll_slug is None
    assert first.detail == '{"title":"Community Favorite"}'
    assert second.detail == "{}"
    assert first.at.microsecond == 0  # the hash covers whole seconds only
    stored = db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars()
    assert list(stored) == ["poll.create", "organizer.login"]


def test_record_writes_detail_as_canonical_json(ctx: Flask) -> None:
    event = audit.record("ana", "x", None, zeta=1, alpha="é", on=date(2026, 12, 1))
    db.session.commit()
    # Sorted keys, no spaces, non-ASCII kept, anything else as its str().
    assert event.detail == '{"alpha":"é","on":"2026-12-01","zeta":1}'
    assert json.loads(event.detail) == {"alpha": "é", "on": "2026-12-01", "zeta": 1}


def test_record_belongs_to_the_callers_transaction(ctx: Flask) -> None:
    audit.record("ana", "poll.create", "cf")
    db.session.rollback()
    assert db.session.execute(select(func.count(AuditEvent.id))).scalar_one() == 0
    # The next entry starts the chain again: the rolled-back one never existed.
    assert audit.record("ana", "poll.create", "cf").prev_hash == audit.GENESIS
    db.session.commit()


def test_as_export_and_all_entries(ctx: Flask) -> None:
    entries = three_entries()
    assert [e["action"] for e in entries] == ["poll.create", "poll.open", "tokens.mint"]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids)
    events = db.session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    assert [audit.as_export(e) for e in events] == entries
    last = entries[-1]
    assert set(last) == {"id", "at", "actor", "action", "poll", "detail", "prev_hash", "hash"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", last["at"])
    assert (last["actor"], last["poll"]) == ("bo", "cf")
    assert json.loads(last["detail"]) == {"batch": "b1", "count": 25}
    assert last["prev_hash"] == entries[1]["hash"]


def test_verify_chain_accepts_the_log_as_recorded(ctx: Flask) -> None:
    assert audit.verify_chain(three_entries()) == []
    assert audit.verify_chain([]) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "mallory"),
        ("action", "poll.delete"),
        ("poll", "other"),
        ("detail", '{"count":2500}'),
        ("at", "2020-01-01T00:00:00Z"),
    ],
)
def test_verify_chain_catches_changed_content(ctx: Flask, field: str, value: str) -> None:
    entries = three_entries()
    entries[1][field] = value
    # Only the changed entry is wrong: the next one still names its stored hash.
    assert audit.verify_chain(entries) == [
        f"entry 2 (id {entries[1]['id']}): its content does not match its hash"
    ]


def test_verify_chain_catches_a_changed_entry_with_a_recomputed_hash(ctx: Flask) -> None:
    entries = three_entries()
    forged = entries[1]
    forged["actor"] = "mallory"
    forged["hash"] = audit.event_hash(
        forged["prev_hash"],
        forged["at"],
        forged["actor"],
        forged["action"],
        forged["poll"],
        forged["detail"],
    )
    # The forger would have to rewrite every later entry too.
    assert audit.verify_chain(entries) == out_of_place(3, entries[2])


def test_verify_chain_catches_a_removed_entry(ctx: Flask) -> None:
    entries = three_entries()
    del entries[1]
    assert audit.verify_chain(entries) == out_of_place(2, entries[1])


def test_verify_chain_catches_a_removed_first_entry_and_reordering(ctx: Flask) -> None:
    entries = three_entries()
    # Without its first entry the chain no longer starts at genesis; the rest still links up.
    assert audit.verify_chain(entries[1:]) == out_of_place(1, entries[1])
    swapped = [entries[0], entries[2], entries[1]]
    assert audit.verify_chain(swapped) == [
        *out_of_place(2, entries[2]),
        *out_of_place(3, entries[1]),
    ]


def test_verify_chain_reports_an_entry_with_missing_fields_and_stops(ctx: Flask) -> None:
    entries = three_entries()
    del entries[0]["detail"]
    assert audit.verify_chain(entries) == ["entry 1: missing fields"]
