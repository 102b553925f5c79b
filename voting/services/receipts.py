"""The public receipt board: when it is published, its rows, search by receipt, pages, CSV.

Publication (decided here, and nowhere else):
- a poll whose results mode is `hidden` or `sealed` publishes its board when it is
  revealed (status `revealed`), not before: during a staged reveal the counts are still
  partly hidden, and the board would give them away;
- a `live` poll publishes its board when voting closes (closed, revealing, revealed): its
  counts were public all along and the tally is final at close (rule 2), so the board
  tells nobody anything new. Never while voting is open: a receipt appearing on the board
  as someone is seen voting would tie the two.

The board lists every counted ballot and every receipt a revote replaced (marked
superseded), sorted by receipt, so that the order says nothing about when anyone voted.
Pages are read with LIMIT/OFFSET over the receipts, the CSV in chunks keyed on the
receipt; no query loads the whole board for one page.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Integer, Text, func, null, select, union_all

from voting.domain.errors import InvalidRequest, NotFound
from voting.domain.receipts import normalise_receipt
from voting.domain.statuses import FINAL, PollStatus, ReceiptStatus, ResultsMode
from voting.extensions import db
from voting.models import Ballot, BallotChoice, Poll, Project, SupersededReceipt
from voting.services import polls

CSV_HEADER = ("receipt", "choices", "status")
CHOICE_SEPARATOR = ";"
# Rows read per query while writing the CSV.
_CSV_CHUNK = 1000
# A page number longer than this is no page of any board (and never reaches int()).
_MAX_PAGE_DIGITS = 9


class BadPageNumber(InvalidRequest):
    message = "The page number must be a whole number, 1 or more, like ?page=2."


class NoSuchPage(NotFound):
    def __init__(self, page: int, pages: int) -> None:
        unit = "page" if pages == 1 else "pages"
        super().__init__(f"There is no page {page}: the board has {pages} {unit}.")
        self.page, self.pages = page, pages


class NotAReceipt(InvalidRequest):
    message = (
        "That is not a receipt code: a receipt has 12 letters and digits, like 7KQ2-M9XD-4TBR."
    )


@dataclass(frozen=True)
class Publication:
    """Whether a poll's board is out, and when it will be."""

    published: bool
    # "close" for live polls, "reveal" for hidden and sealed ones (the module docstring).
    at: str
    # The moment it is expected, when the schedule says: a live poll's closes_at.
    expected_at: datetime | None


@dataclass(frozen=True)
class Row:
    """One receipt on the board."""

    receipt: str
    choices: tuple[str, ...]
    status: ReceiptStatus

    def as_dict(self) -> dict[str, Any]:
        return {"receipt": self.receipt, "choices": list(self.choices), "status": self.status}


@dataclass(frozen=True)
class Page:
    """One page of the board (empty, page 1 of 1, while it is unpublished)."""

    number: int
    pages: int
    total: int
    rows: list[Row]

    @property
    def next_number(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None

    @property
    def previous_number(self) -> int | None:
        return self.number - 1 if self.number > 1 else None


def publication(poll: Poll, status: PollStatus | None = None) -> Publication:
    """The publication rule of the module docstring, for this poll now."""
    status = status or polls.effective_status(poll)
    if poll.results_mode == ResultsMode.LIVE:
        expected = poll.closes_at if status not in FINAL else None
        return Publication(published=status in FINAL, at="close", expected_at=expected)
    return Publication(published=status == PollStatus.REVEALED, at="reveal", expected_at=None)


def page_size() -> int:
    """Rows per page: RECEIPTS_PAGE_SIZE, so a phone's page stays light."""
    return int(current_app.config["RECEIPTS_PAGE_SIZE"])


def page_number(value: str | None) -> int:
    """The page asked for by ?page= (1 when absent), or BadPageNumber."""
    if value is None or value.strip() == "":
        return 1
    value = value.strip()
    if not (value.isascii() and value.isdecimal()) or len(value) > _MAX_PAGE_DIGITS:
        raise BadPageNumber()
    number = int(value)
    if number < 1:
        raise BadPageNumber()
    return number


def _board(poll_id: int, *, first: int | None = None, after: str = "") -> Any:
    """Counted ballots and superseded receipts of one poll, as one (receipt, ...) relation.

    With `first`, each table gives only its first `first` receipts after `after`, read in
    order off its (poll_id, receipt) index: a page then sorts at most twice that many rows,
    never the whole board.
    """
    counted = select(
        Ballot.receipt.label("receipt"),
        Ballot.id.label("ballot_id"),
        null().cast(Text).label("choices"),
    ).where(Ballot.poll_id == poll_id, Ballot.receipt > after)
    superseded = select(
        SupersededReceipt.receipt.label("receipt"),
        null().cast(Integer).label("ballot_id"),
        SupersededReceipt.choices.label("choices"),
    ).where(SupersededReceipt.poll_id == poll_id, SupersededReceipt.receipt > after)
    if first is None:
        return union_all(counted, superseded).subquery("board")
    # Wrapped, because SQLite takes no ORDER BY or LIMIT inside a bare UNION member.
    parts = [
        select(part.order_by(part.selected_columns.receipt).limit(first).subquery())
        for part in (counted, superseded)
    ]
    return union_all(*parts).subquery("board")


def _rows(found: list[Any]) -> list[Row]:
    """Board rows from (receipt, ballot_id, choices) tuples, counted ballots' choices looked up."""
    ids = [r.ballot_id for r in found if r.ballot_id is not None]
    chosen: dict[int, list[str]] = defaultdict(list)
    if ids:
        for ballot_id, slug in db.session.execute(
            select(BallotChoice.ballot_id, Project.slug)
            .join(Project, Project.id == BallotChoice.project_id)
            .where(BallotChoice.ballot_id.in_(ids))
        ):
            chosen[ballot_id].append(slug)
    rows = []
    for r in found:
        if r.ballot_id is not None:
            rows.append(Row(r.receipt, tuple(sorted(chosen[r.ballot_id])), ReceiptStatus.COUNTED))
        else:
            names = tuple(sorted(c for c in (r.choices or "").split(CHOICE_SEPARATOR) if c))
            rows.append(Row(r.receipt, names, ReceiptStatus.SUPERSEDED))
    return rows


def total(poll: Poll) -> int:
    """Receipts on the board (counted and superseded), published or not: callers check."""
    counted = select(func.count()).select_from(Ballot).where(Ballot.poll_id == poll.id)
    superseded = (
        select(func.count())
        .select_from(SupersededReceipt)
        .where(SupersededReceipt.poll_id == poll.id)
    )
    return int(
        db.session.execute(
            select(counted.scalar_subquery() + superseded.scalar_subquery())
        ).scalar_one()
    )


def board_page(poll: Poll, number: int) -> Page:
    """One page of a poll's board, sorted by receipt; nothing while it is unpublished."""
    if not publication(poll).published:
        return Page(number=1, pages=1, total=0, rows=[])
    size = page_size()
    count = total(poll)
    pages = max(1, math.ceil(count / size))
    if number > pages:
        raise NoSuchPage(number, pages)
    board = _board(poll.id, first=number * size)
    found = db.session.execute(
        select(board).order_by(board.c.receipt).limit(size).offset((number - 1) * size)
    ).all()
    return Page(number=number, pages=pages, total=count, rows=_rows(list(found)))


def find(poll: Poll, typed: str) -> tuple[str, Row | None]:
    """The receipt `typed` means and its row on the board (None: not there), or NotAReceipt.

    Only a published board is searched; before that nothing is found.
    """
    receipt = normalise_receipt(typed)
    if receipt is None:
        raise NotAReceipt()
    if not publication(poll).published:
        return receipt, None
    board = _board(poll.id)
    found = db.session.execute(select(board).where(board.c.receipt == receipt)).all()
    rows = _rows(list(found))
    return receipt, rows[0] if rows else None


def all_rows(poll: Poll) -> Iterator[Row]:
    """Every row of a published board, sorted by receipt, read in chunks (keyset on receipt)."""
    if not publication(poll).published:
        return
    board = _board(poll.id)
    after = ""
    while True:
        found = db.session.execute(
            select(board).where(board.c.receipt > after).order_by(board.c.receipt).limit(_CSV_CHUNK)
        ).all()
        if not found:
            return
        yield from _rows(list(found))
        after = found[-1].receipt


def superseded(poll: Poll) -> list[dict[str, Any]]:
    """The receipts revotes replaced, with their choices, sorted by receipt (for the export)."""
    found = db.session.execute(
        select(SupersededReceipt.receipt, SupersededReceipt.choices)
        .where(SupersededReceipt.poll_id == poll.id)
        .order_by(SupersededReceipt.receipt)
    )
    return [
        {"receipt": r, "choices": sorted(c for c in choices.split(CHOICE_SEPARATOR) if c)}
        for r, choices in found
    ]


def csv_text(poll: Poll) -> str:
    """The board as CSV: receipt,choices,status; choices are slugs sorted and joined by ';'."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in all_rows(poll):
        writer.writerow([row.receipt, CHOICE_SEPARATOR.join(row.choices), row.status.value])
    return out.getvalue()


def voted_for(poll: Poll, receipt: str) -> list[str]:
    """The titles a receipt's ballot chose (for its holder's receipt page), sorted; [] if none."""
    return list(
        db.session.execute(
            select(Project.title)
            .join(BallotChoice, BallotChoice.project_id == Project.id)
            .join(Ballot, Ballot.id == BallotChoice.ballot_id)
            .where(Ballot.poll_id == poll.id, Ballot.receipt == receipt)
            .order_by(Project.title)
        ).scalars()
    )
