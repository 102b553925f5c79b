"""Importing submissions (our CSV/JSON columns or Devpost's export), upserted by slug."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import select

from voting.database import atomic, begin_write
from voting.domain.errors import InvalidRequest, NotFound
from voting.domain.submissions import (
    OWN_COLUMNS,
    URL_FIELDS,
    Rejected,
    Row,
    RowError,
    clean,
    parse,
)
from voting.extensions import db
from voting.models import PollChoice, Project, TeamMember
from voting.services import audit
from voting.services.hashing import email_hash


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    dry_run: bool = False
    source_format: str = ""

    @property
    def ok(self) -> bool:
        return not self.rejected

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.source_format,
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [
                {"line": r.line, "title": r.title, "reason": r.reason} for r in self.rejected
            ],
        }


@atomic
def import_projects(
    data: bytes,
    filename: str = "",
    *,
    actor: str = "cli",
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert every good row by slug in one transaction; report each rejected row with its line."""
    begin_write()
    source, candidates, rejected = parse(data, filename)
    if not candidates and not rejected:
        raise InvalidRequest("The file holds no projects.")
    config = current_app.config
    report = ImportReport(dry_run=dry_run, source_format=source, rejected=rejected)

    good: list[Row] = []
    seen: dict[str, int] = {}
    for row in candidates:
        try:
            cleaned = clean(row, config["CATEGORIES"], config["THEMES"])
        except RowError as exc:
            report.rejected.append(Rejected(row.line, str(exc), row.values.get("title", "")[:80]))
            continue
        slug = cleaned.values["slug"]
        if slug in seen:
            report.rejected.append(
                Rejected(
                    row.line,
                    f"slug {slug!r} already appears on line {seen[slug]}",
                    cleaned.values["title"],
                )
            )
            continue
        seen[slug] = row.line
        good.append(cleaned)
    report.rejected.sort(key=lambda r: r.line)

    existing: dict[str, Project] = {}
    slugs = list(seen)
    for i in range(0, len(slugs), 500):
        chunk = slugs[i : i + 500]
        for project in db.session.execute(select(Project).where(Project.slug.in_(chunk))).scalars():
            existing[project.slug] = project

    for n, row in enumerate(good, start=1):
        _upsert(row, existing.get(row.values["slug"]), report)
        if progress:
            progress(n)

    if dry_run:
        db.session.rollback()
        return report
    audit.record(
        actor,
        "projects.import",
        format=source,
        created=len(report.created),
        updated=len(report.updated),
        unchanged=len(report.unchanged),
        rejected=len(report.rejected),
    )
    db.session.commit()
    return report


def _upsert(row: Row, project: Project | None, report: ImportReport) -> None:
    values = row.values
    fields = {k: v for k, v in values.items() if k != "slug"}
    for name in URL_FIELDS:
        fields[name] = fields[name] or None  # type: ignore[assignment]
    hashes = sorted({email_hash(e) for e in row.member_emails})
    if project is None:
        project = Project(slug=values["slug"], **fields)
        project.member_hashes = [TeamMember(email_hash=h) for h in hashes]
        db.session.add(project)
        report.created.append(values["slug"])
        return
    changed = False
    for key, value in fields.items():
        if getattr(project, key) != value:
            setattr(project, key, value)
            changed = True
    if hashes and sorted(m.email_hash for m in project.member_hashes) != hashes:
        project.member_hashes = [TeamMember(email_hash=h) for h in hashes]
        changed = True
    (report.updated if changed else report.unchanged).append(values["slug"])


# -- reading: a poll's ballot, one project, editing (the organizer console) ---------------


@dataclass(frozen=True)
class BallotEntry:
    """A project as the ballot's card shows it: plain values, hashable, from one query."""

    id: int
    slug: str
    title: str
    team: str
    category: str
    theme: str
    summary: str


def on_ballot(poll_id: int) -> list[BallotEntry]:
    """The projects still on the poll's ballot (not withdrawn), read as plain rows.

    The ballot page reads these on every view; one Core query instead of loading each
    choice and its project through the ORM."""
    rows = db.session.execute(
        select(
            Project.id,
            Project.slug,
            Project.title,
            Project.team,
            Project.category,
            Project.theme,
            Project.summary,
        )
        .join(PollChoice, PollChoice.project_id == Project.id)
        .where(PollChoice.poll_id == poll_id, PollChoice.withdrawn.is_(False))
        .order_by(PollChoice.id)
    )
    return [BallotEntry(*row) for row in rows]


EDITABLE = tuple(c for c in OWN_COLUMNS if c != "slug")


def list_projects() -> list[Project]:
    """Every project, by title."""
    return list(db.session.execute(select(Project).order_by(Project.title)).scalars())


def get_project(slug: str) -> Project:
    """The project with this slug, or NotFound."""
    project = db.session.execute(select(Project).where(Project.slug == slug)).scalar_one_or_none()
    if project is None:
        raise NotFound(f"There is no project called {slug!r}.")
    return project


@atomic
def update_project(slug: str, values: Mapping[str, str], *, actor: str) -> list[str]:
    """Change a project's fields with the import's rules; returns the names of changed fields."""
    begin_write()
    project = get_project(slug)
    merged = {name: getattr(project, name) or "" for name in OWN_COLUMNS}
    merged.update({name: str(values[name]) for name in EDITABLE if name in values})
    merged["slug"] = project.slug
    config = current_app.config
    try:
        cleaned = clean(Row(line=0, values=merged), config["CATEGORIES"], config["THEMES"])
    except RowError as exc:
        message = str(exc)
        raise InvalidRequest(message[:1].upper() + message[1:] + ".") from exc
    changed: list[str] = []
    for name in EDITABLE:
        value: str | None = cleaned.values[name]
        if name in URL_FIELDS:
            value = value or None
        if getattr(project, name) != value:
            setattr(project, name, value)
            changed.append(name)
    audit.record(actor, "project.edit", project=project.slug, changed=changed)
    db.session.commit()
    return changed
