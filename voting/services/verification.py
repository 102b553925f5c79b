"""Checking an export from the file alone, item by item: what `voting verify` prints.

Every check reads only the export (and, when given, the public receipt board's CSV): a
recount of the ballots, the tie-break seed against its hash, the token counts, unique
receipts, the poll fingerprint against its definition and against the one the audit log
published last, and the audit chain itself.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voting.domain import fingerprint as fp
from voting.domain import tally
from voting.services.audit import verify_chain

EXPORT_FORMAT = "voting-export/1"
BOARD_HEADER = ["receipt", "choices", "status"]
COUNTED, SUPERSEDED = "counted", "superseded"
# The definition's fields that must repeat what the export's poll says.
_POLL_FIELDS = {
    "poll": "slug",
    "method": "method",
    "max_choices": "max_choices",
    "eligibility": "eligibility",
    "revote": "revote",
    "tie_seed_hash": "tie_seed_hash",
}


@dataclass(frozen=True)
class Check:
    """One item checked: what it was, and the problems found (none means it passed)."""

    item: str
    problems: tuple[str, ...] = ()
    skipped: str | None = None  # why the item does not apply to this export

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def outcome(self) -> str:
        return "FAIL" if self.problems else "SKIP" if self.skipped else "OK"

    @property
    def line(self) -> str:
        """The line `voting verify` prints: OK/FAIL/SKIP, the item, and why."""
        why = "; ".join(self.problems) if self.problems else self.skipped
        return f"{self.outcome}: {self.item}" + (f" ({why})" if why else "")


@dataclass
class Board:
    """The receipt board's CSV: counted and superseded receipts with their choices."""

    counted: dict[str, list[str]] = field(default_factory=dict)
    superseded: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_board(text: str) -> Board:
    """Parse the board's CSV download (header receipt,choices,status; choices `;`-joined)."""
    board = Board()
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows or [h.strip() for h in rows[0]] != BOARD_HEADER:
        board.problems.append("the board file does not start with receipt,choices,status")
        return board
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 3 or row[2] not in (COUNTED, SUPERSEDED):
            board.problems.append(f"board line {line} is not receipt,choices,counted|superseded")
            continue
        receipt, choices, status = row
        target = board.counted if status == COUNTED else board.superseded
        if receipt in board.counted or receipt in board.superseded:
            board.problems.append(f"board line {line} repeats receipt {receipt}")
        target[receipt] = sorted(c for c in choices.split(";") if c)
    return board


def check_export(doc: Mapping[str, Any], board: Board | None = None) -> list[Check]:
    """Every check of an export, in order; a wrong format stops at the first."""
    if doc.get("format") != EXPORT_FORMAT:
        return [Check("the file is an export", (f"not a {EXPORT_FORMAT} document",))]
    poll = doc.get("poll") or {}
    ballots = list(doc.get("ballots") or [])
    superseded = list(doc.get("superseded") or [])  # absent in older exports: none
    checks = [Check(f"the file is a {EXPORT_FORMAT} export"), *_recount(doc, poll, ballots)]
    checks += _tokens(doc, poll, ballots)
    checks.append(_receipts_unique(ballots, superseded))
    checks += _fingerprint(doc, poll)
    entries = list(doc.get("audit") or [])
    chain = verify_chain(entries)
    checks.append(Check(f"the audit log's {len(entries)} entries chain", tuple(chain)))
    if board is not None:
        checks.append(_board(board, ballots, superseded))
    return checks


def _recount(
    doc: Mapping[str, Any], poll: Mapping[str, Any], ballots: Sequence[Mapping[str, Any]]
) -> list[Check]:
    active = [c.get("project") for c in poll.get("choices", [])]
    strangers = any(not set(b.get("choices", [])) <= set(active) for b in ballots)
    checks = [
        Check(
            "every ballot names only projects of the poll",
            ("a ballot names a project that is not in the poll",) if strangers else (),
        )
    ]
    stated = doc.get("tally") or {}
    turnout = stated.get("turnout")
    checks.append(
        Check(
            f"the stated turnout equals the {len(ballots)} ballots",
            ()
            if turnout == len(ballots)
            else (f"turnout says {turnout} but the export holds {len(ballots)} ballots",),
        )
    )
    counts = tally.count((b.get("choices", []) for b in ballots), active)
    seed = poll.get("tie_seed")
    if seed is None:
        checks.append(Check("the tie-break seed matches its hash", skipped="not published yet"))
        got_counts = {r["project"]: r["votes"] for r in stated.get("results", [])}
        wrong = bool(got_counts) and got_counts != counts
        checks.append(
            Check(
                "the ballots recount to the stated counts",
                ("the stated counts do not match the ballots",) if wrong else (),
                skipped=None if got_counts else "the export states no counts",
            )
        )
        return checks
    bad_seed = tally.seed_hash(seed) != poll.get("tie_seed_hash")
    checks.append(
        Check(
            "the tie-break seed matches its hash",
            ("the published tie-break seed does not match its committed hash",) if bad_seed else (),
        )
    )
    expected = [p.as_dict() for p in tally.rank(counts, seed)]
    got = [
        {"project": r.get("project"), "votes": r.get("votes"), "rank": r.get("rank")}
        for r in stated.get("results", [])
    ]
    checks.append(
        Check(
            "the ballots recount to the stated ranking",
            ("the stated ranking does not match the ballots",) if got != expected else (),
        )
    )
    return checks


def _tokens(
    doc: Mapping[str, Any], poll: Mapping[str, Any], ballots: Sequence[Mapping[str, Any]]
) -> list[Check]:
    tokens = doc.get("tokens")
    if not isinstance(tokens, Mapping) or not all(
        isinstance(tokens.get(k), int) for k in ("issued", "used", "revoked")
    ):
        missing = ("the export does not state its token counts (issued, used, revoked)",)
        return [Check("ballots <= tokens issued", missing), Check("ballots = tokens used", missing)]
    n, issued, used = len(ballots), tokens["issued"], tokens["used"]
    over: list[str] = []
    if n > issued:
        over.append(f"{n} ballots but only {issued} tokens issued")
    declared = (poll.get("definition") or {}).get("tokens_issued")
    if isinstance(declared, int) and issued > declared:
        over.append(f"{issued} tokens exist but the definition declares {declared}")
    return [
        Check(f"ballots ({n}) <= tokens issued ({issued})", tuple(over)),
        Check(
            f"ballots ({n}) = tokens used ({used})",
            () if n == used else (f"{n} ballots but {used} tokens used",),
        ),
    ]


def _receipts_unique(
    ballots: Iterable[Mapping[str, Any]], superseded: Iterable[Mapping[str, Any]]
) -> Check:
    receipts = [b.get("receipt") for b in ballots] + [b.get("receipt") for b in superseded]
    repeated = sorted(str(r) for r, n in Counter(receipts).items() if n > 1)
    return Check(
        f"the {len(receipts)} receipts (counted and superseded) are all different",
        (f"receipt repeated: {', '.join(repeated)}",) if repeated else (),
    )


def _fingerprint(doc: Mapping[str, Any], poll: Mapping[str, Any]) -> list[Check]:
    stated = poll.get("fingerprint")
    definition = poll.get("definition")
    published = last_published_fingerprint(doc.get("audit") or [], poll.get("slug"))
    item = "the fingerprint is the SHA-256 of the poll's definition"
    if stated is None:
        first = Check(item, skipped="the poll has not opened, so it has no fingerprint")
    elif not isinstance(definition, Mapping):
        first = Check(item, ("the export carries no definition for its fingerprint",))
    else:
        problems = []
        if fp.fingerprint(definition) != stated:
            problems.append("the fingerprint does not match the definition")
        problems += _definition_mismatches(definition, poll)
        first = Check(item, tuple(problems))
    second = Check(
        "the fingerprint is the one the audit log published last",
        ()
        if published == stated
        else (f"the audit log last published {published!r}, the export says {stated!r}",),
    )
    return [first, second]


def _definition_mismatches(definition: Mapping[str, Any], poll: Mapping[str, Any]) -> list[str]:
    problems = [
        f"the definition's {key} is not the poll's"
        for key, field_name in _POLL_FIELDS.items()
        if definition.get(key) != poll.get(field_name)
    ]
    active = sorted(str(c.get("project")) for c in poll.get("choices", []))
    if definition.get("choices") != active:
        problems.append("the definition's choices are not the poll's")
    return problems


def last_published_fingerprint(entries: Iterable[Mapping[str, Any]], slug: object) -> str | None:
    """The fingerprint in the poll's latest audit entry that records one (None if none does)."""
    found = None
    for entry in entries:
        if entry.get("poll") != slug:
            continue
        try:
            detail = json.loads(entry.get("detail") or "{}")
        except (TypeError, ValueError):
            continue
        if isinstance(detail, dict) and detail.get("fingerprint"):
            found = str(detail["fingerprint"])
    return found


def _board(
    board: Board,
    ballots: Iterable[Mapping[str, Any]],
    superseded: Iterable[Mapping[str, Any]],
) -> Check:
    problems = list(board.problems)
    for label, rows, exported in (
        (COUNTED, board.counted, ballots),
        (SUPERSEDED, board.superseded, superseded),
    ):
        wanted = {str(b.get("receipt")): sorted(b.get("choices") or []) for b in exported}
        if missing := sorted(set(wanted) - set(rows)):
            problems.append(f"{label} receipts missing from the board: {', '.join(missing)}")
        if extra := sorted(set(rows) - set(wanted)):
            problems.append(
                f"{label} receipts on the board but not in the export: {', '.join(extra)}"
            )
        if changed := sorted(r for r in set(rows) & set(wanted) if rows[r] != wanted[r]):
            problems.append(f"{label} receipts whose choices differ: {', '.join(changed)}")
    n, m = len(board.counted), len(board.superseded)
    return Check(
        f"the receipt board ({n} counted, {m} superseded) equals the export", tuple(problems)
    )


def problems_of(checks: Iterable[Check]) -> list[str]:
    """Every problem found, in check order; empty when the export checks out."""
    return [p for c in checks for p in c.problems]
