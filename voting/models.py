"""The data model. Invariants live in the database: unique keys, foreign keys, checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from voting.domain.statuses import Eligibility, Method, PollStatus, ResultsMode, TokenKind
from voting.extensions import db

E = TypeVar("E", bound=StrEnum)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC, SQLite included."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        # SQLite keeps no zone: store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EnumText(TypeDecorator[E]):
    """A StrEnum stored as its text value, and read back as the member."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        return None if value is None else self.enum(value)


def _in(column: str, values: type[StrEnum]) -> str:
    quoted = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({quoted})"


class Organizer(db.Model):  # type: ignore[name-defined]
    __tablename__ = "organizers"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # Flask-Login protocol
    is_active = True
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)


class Project(db.Model):  # type: ignore[name-defined]
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(200), default="")
    members: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(80))
    theme: Mapped[str] = mapped_column(String(120), default="")
    summary: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    repo_url: Mapped[str | None] = mapped_column(String(500))
    demo_url: Mapped[str | None] = mapped_column(String(500))
    image_url: Mapped[str | None] = mapped_column(String(500))
    built_with: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    member_hashes: Mapped[list[TeamMember]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )

    __table_args__ = (CheckConstraint("slug <> ''", name="slug_not_empty"),)

    @property
    def member_list(self) -> list[str]:
        return [m.strip() for m in self.members.split(";") if m.strip()]


class TeamMember(db.Model):  # type: ignore[name-defined]
    """A keyed hash of a team member's email, for conflict-of-interest checks only."""

    __tablename__ = "team_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    email_hash: Mapped[str] = mapped_column(String(64), index=True)

    project: Mapped[Project] = relationship(back_populates="member_hashes")

    __table_args__ = (UniqueConstraint("project_id", "email_hash"),)


class Poll(db.Model):  # type: ignore[name-defined]
    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    # The name of the prize on the winner card ("Best Demo Award"); empty means the title.
    award: Mapped[str] = mapped_column(String(120), default="", server_default="")
    description: Mapped[str] = mapped_column(Text, default="")
    method: Mapped[Method] = mapped_column(EnumText(Method), default=Method.PLURALITY)
    max_choices: Mapped[int] = mapped_column(Integer, default=1)
    eligibility: Mapped[Eligibility] = mapped_column(
        EnumText(Eligibility), default=Eligibility.INVITE
    )
    results_mode: Mapped[ResultsMode] = mapped_column(
        EnumText(ResultsMode), default=ResultsMode.HIDDEN
    )
    allow_revote: Mapped[bool] = mapped_column(Boolean, default=False)
    # The stored status; the effective one also weighs opens_at/closes_at and the clock.
    status: Mapped[PollStatus] = mapped_column(EnumText(PollStatus), default=PollStatus.DRAFT)
    opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Tie-break: the seed stays secret until reveal; its hash is public once open.
    tie_seed: Mapped[str] = mapped_column(String(64))
    tie_seed_hash: Mapped[str] = mapped_column(String(64))
    # Staged reveal: how many places (counted from last) are shown.
    reveal_step: Mapped[int] = mapped_column(Integer, default=0)
    reveal_auto_seconds: Mapped[int | None] = mapped_column(Integer)
    reveal_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Rotating this revokes every overlay URL handed out before.
    overlay_key_version: Mapped[int] = mapped_column(Integer, default=1)
    # A rehearsal copy names the poll it rehearses (its slug); None for a real poll.
    rehearsal_of: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    choices: Mapped[list[PollChoice]] = relationship(
        back_populates="poll", cascade="all, delete-orphan", order_by="PollChoice.id"
    )

    __table_args__ = (
        CheckConstraint(_in("status", PollStatus), name="status"),
        CheckConstraint(_in("method", Method), name="method"),
        CheckConstraint(_in("eligibility", Eligibility), name="eligibility"),
        CheckConstraint(_in("results_mode", ResultsMode), name="results_mode"),
        CheckConstraint("max_choices >= 1", name="max_choices_positive"),
        CheckConstraint("reveal_step >= 0", name="reveal_step_non_negative"),
        CheckConstraint("slug <> ''", name="slug_not_empty"),
    )


class PollChoice(db.Model):  # type: ignore[name-defined]
    __tablename__ = "poll_choices"

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"))
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)

    poll: Mapped[Poll] = relationship(back_populates="choices")
    project: Mapped[Project] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("poll_id", "project_id"),)


class Token(db.Model):  # type: ignore[name-defined]
    """An issued voter token id. The signed string is never stored."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[TokenKind] = mapped_column(EnumText(TokenKind), default=TokenKind.INVITE)
    batch: Mapped[str | None] = mapped_column(String(64), index=True)
    issued_on: Mapped[date] = mapped_column(Date, default=lambda: utcnow().date())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The keyed hash of the short code printed on a QR card (typed at /p/<slug>/claim when
    # the QR code will not scan); never the code itself, so the table holds nothing usable.
    card_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    __table_args__ = (CheckConstraint(_in("kind", TokenKind), name="kind"),)


class RosterEntry(db.Model):  # type: ignore[name-defined]
    """An attendee who may claim one token. Records only that it claimed, never which."""

    __tablename__ = "roster_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    claimed: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("poll_id", "code_hash"),)


class Ballot(db.Model):  # type: ignore[name-defined]
    """A cast ballot: no person, no address, no time finer than the minute."""

    __tablename__ = "ballots"

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"))
    # One ballot per token id, enforced here and nowhere else.
    token_id: Mapped[str] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"), unique=True)
    receipt: Mapped[str] = mapped_column(String(32), unique=True)
    cast_minute: Mapped[datetime] = mapped_column(UTCDateTime())

    choices: Mapped[list[BallotChoice]] = relationship(
        back_populates="ballot", cascade="all, delete-orphan"
    )

    # A poll's ballots in receipt order: the receipt board reads its pages off this index
    # (no sort), and it serves every lookup by poll_id too.
    __table_args__ = (Index("ix_ballots_poll_id_receipt", "poll_id", "receipt"),)


class SupersededReceipt(db.Model):  # type: ignore[name-defined]
    """A receipt a revote replaced, kept for the public board with the choices it named.

    Deliberately unlinked (rule 4): no token, no ballot, no time, not even a row number;
    the receipt is the key, and the board lists these sorted by it.
    """

    __tablename__ = "superseded_receipts"

    receipt: Mapped[str] = mapped_column(String(32), primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"))
    # The project slugs the replaced ballot named, sorted and joined by ";" (as on the board).
    choices: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_superseded_receipts_poll_id_receipt", "poll_id", "receipt"),)


class BallotChoice(db.Model):  # type: ignore[name-defined]
    __tablename__ = "ballot_choices"

    id: Mapped[int] = mapped_column(primary_key=True)
    ballot_id: Mapped[int] = mapped_column(ForeignKey("ballots.id", ondelete="CASCADE"))
    # Denormalised so the tally is one GROUP BY over one table.
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"))

    ballot: Mapped[Ballot] = relationship(back_populates="choices")

    __table_args__ = (UniqueConstraint("ballot_id", "project_id"),)


class AuditEvent(db.Model):  # type: ignore[name-defined]
    """One organizer action in the append-only, hash-chained audit log."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    poll_slug: Mapped[str | None] = mapped_column(String(80), index=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    # Unique: two appends can never claim the same predecessor, so the log cannot fork.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
