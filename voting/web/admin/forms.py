"""The console's forms (WTForms): they read and check what the browser posts, services decide."""

from __future__ import annotations

import re
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    PasswordField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, ValidationError

from voting.domain.statuses import Eligibility, Method, ResultsMode
from voting.domain.submissions import slugify
from voting.models import Poll
from voting.services import polls, projects
from voting.web.admin.timezones import local_input, parse_local, zone

# Batch labels typed in the console end up in URLs and file names.
BATCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _text(value: str | None) -> str:
    return value or ""


def _stripped(value: str | None) -> str:
    return (value or "").strip()


class ConsoleForm(FlaskForm):
    """A form read from the posted fields; its first error (in field order) is what the page says."""

    def __init__(self, **kwargs: Any) -> None:
        # Only a POST's form fields, never a JSON body; a GET shows the initial data.
        super().__init__(formdata=request.form if request.method == "POST" else None, **kwargs)

    def first_error(self) -> str:
        """The first field's first error message."""
        for field in self:
            if field.name != "csrf_token" and field.errors:
                return str(field.errors[0])
        return "The form is not valid."


class TickField(BooleanField):
    """A checkbox that counts as ticked only with the value the page sends, "1"."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = bool(valuelist) and valuelist[0] == "1"


class NamesField(SelectMultipleField):
    """Every value posted under the name; the service checks which exist."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, validate_choice=False, **kwargs)


class PollForm(ConsoleForm):
    """A poll's settings, schedule and projects; the fields are checked in this order."""

    slug = StringField(filters=[_text])
    title = StringField(filters=[_text])
    award = StringField(filters=[_text])
    description = TextAreaField(filters=[_text])
    method = StringField(default=Method.PLURALITY, filters=[_text])
    eligibility = StringField(default=Eligibility.INVITE, filters=[_text])
    results_mode = StringField(default=ResultsMode.HIDDEN, filters=[_text])
    allow_revote = TickField(default=False)
    tz = StringField(filters=[_text])
    max_choices = StringField(filters=[_text])
    scope = StringField(default="all", filters=[_text])
    categories = NamesField(name="category", default=list)
    projects = NamesField(name="project", default=list)
    opens_at = StringField(filters=[_text])
    closes_at = StringField(filters=[_text])

    def zone_name(self) -> str:
        # Times posted without a zone are read as UTC, not in the zone the page remembers.
        return (self.tz.data if self.tz.raw_data else "") or "UTC"

    def validate_tz(self, field: Field) -> None:
        if zone(self.zone_name()) is None:
            raise ValidationError(f"{self.zone_name()!r} is not a time zone this server knows.")

    def validate_max_choices(self, field: Field) -> None:
        raw = field.data.strip()
        if self.method.data == Method.APPROVAL and raw and not raw.isdecimal():
            raise ValidationError("Max choices must be a whole number.")

    def validate_scope(self, field: Field) -> None:
        if field.data == "categories" and not self.categories.data:
            raise ValidationError("Tick at least one category, or include all projects.")
        if field.data == "projects" and not self.projects.data:
            raise ValidationError("Tick at least one project, or include all projects.")

    def validate_opens_at(self, field: Field) -> None:
        self._check_time(field, "opening")

    def validate_closes_at(self, field: Field) -> None:
        self._check_time(field, "closing")

    def _check_time(self, field: Field, label: str) -> None:
        in_zone = zone(self.zone_name())
        if in_zone is None:
            return  # the zone's own error is the one to show
        try:
            parse_local(field.data, in_zone)
        except ValueError:
            value = field.data.strip()
            raise ValidationError(f"The {label} time {value!r} is not a date and time.") from None

    def spec(self, slug: str) -> polls.PollSpec:
        """The settings as the poll services take them (the form is valid)."""
        in_zone = zone(self.zone_name())
        assert in_zone is not None  # validate_tz
        raw_max = self.max_choices.data.strip()
        scope = self.scope.data
        return polls.PollSpec(
            slug=slug,
            title=self.title.data,
            award=self.award.data or "",
            description=self.description.data.strip(),
            method=self.method.data,
            max_choices=int(raw_max) if self.method.data == Method.APPROVAL and raw_max else None,
            eligibility=self.eligibility.data,
            results_mode=self.results_mode.data,
            allow_revote=self.allow_revote.data,
            categories=self.categories.data if scope == "categories" else [],
            projects=self.projects.data if scope == "projects" else [],
            opens_at=parse_local(self.opens_at.data, in_zone),
            closes_at=parse_local(self.closes_at.data, in_zone),
        )

    def values(self) -> dict[str, Any]:
        """The fields by name, for the template to fill the inputs with."""
        return {name: value for name, value in self.data.items() if name != "csrf_token"}


class NewPollForm(PollForm):
    """A new poll's form: it also names the slug."""

    def validate_slug(self, field: Field) -> None:
        if self.new_slug() == "new":
            raise ValidationError("Pick another slug: 'new' is taken by the console itself.")

    def new_slug(self) -> str:
        """The slug as typed, trimmed and in lowercase; left empty, made from the title."""
        typed = str(self.slug.data or "").strip().lower()
        return typed or slugify(str(self.title.data or ""))


def poll_values(poll: Poll | None, tz: str) -> dict[str, Any]:
    """The poll form's initial fields: the poll's settings in the zone, or the defaults."""
    if poll is None:
        return {"tz": tz}
    active = [c.project.slug for c in poll.choices if not c.withdrawn]
    everything = {p.slug for p in projects.list_projects()}
    return {
        "slug": poll.slug,
        "title": poll.title,
        "award": poll.award,
        "description": poll.description,
        "method": poll.method,
        "max_choices": str(poll.max_choices) if poll.method == Method.APPROVAL else "",
        "eligibility": poll.eligibility,
        "results_mode": poll.results_mode,
        "allow_revote": poll.allow_revote,
        "opens_at": local_input(poll.opens_at, tz),
        "closes_at": local_input(poll.closes_at, tz),
        "tz": tz,
        "scope": "all" if set(active) == everything else "projects",
        "categories": [],
        "projects": active,
    }


class MintForm(ConsoleForm):
    """How many voting links to mint, and the batch label to file them under."""

    count = StringField(filters=[_stripped])
    batch = StringField(filters=[_stripped])

    def validate_count(self, field: Field) -> None:
        if not field.data.isdecimal():
            raise ValidationError("Enter how many links to mint, as a whole number.")

    def validate_batch(self, field: Field) -> None:
        if field.data and not BATCH_RE.match(field.data):
            raise ValidationError(
                "A batch label is up to 64 letters, digits, dots, dashes or underscores."
            )

    def label(self) -> str | None:
        """The batch label, or None for one made up by the service."""
        return self.batch.data or None


class AutoRevealForm(ConsoleForm):
    """The seconds between places when the reveal plays itself."""

    seconds = StringField(filters=[_stripped])

    def validate_seconds(self, field: Field) -> None:
        if not field.data.isdecimal() or not 1 <= int(field.data) <= 600:
            raise ValidationError("Choose between 1 and 600 seconds per place.")


class RevokeTokensForm(ConsoleForm):
    """Voting links or tokens pasted one per line."""

    tokens = TextAreaField(filters=[_text])

    def validate_tokens(self, field: Field) -> None:
        if not self.pasted():
            raise ValidationError("Paste at least one voting link or token, one per line.")

    def pasted(self) -> list[str]:
        """The non-empty lines, trimmed."""
        return [line.strip() for line in self.tokens.data.splitlines() if line.strip()]


class ReissueForm(ConsoleForm):
    """The lost card's voting link or token."""

    lost = StringField(
        filters=[_stripped],
        validators=[DataRequired("Paste the lost card's voting link or token.")],
    )


class ProjectForm(ConsoleForm):
    """A project's editable fields (projects.EDITABLE); the service checks them as an import does."""

    title = StringField(filters=[_text])
    team = StringField(filters=[_text])
    members = StringField(filters=[_text])
    category = StringField(filters=[_text])
    theme = StringField(filters=[_text])
    summary = StringField(filters=[_text])
    description = TextAreaField(filters=[_text])
    repo_url = StringField(filters=[_text])
    demo_url = StringField(filters=[_text])
    image_url = StringField(filters=[_text])
    built_with = StringField(filters=[_text])

    def values(self) -> dict[str, str]:
        """Every editable field by name."""
        return {name: self[name].data for name in projects.EDITABLE}


class LoginForm(ConsoleForm):
    """An organizer's username and password."""

    username = StringField(filters=[lambda value: (value or "")[:80]])
    password = PasswordField(filters=[_text])
