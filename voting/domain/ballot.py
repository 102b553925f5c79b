"""The rules of a ballot's choices (DESIGN.md 2 and 9). Plain Python, no Flask.

One implementation for the API and the pages: the refusal carries a machine-readable
reason and its parameters, so each audience words it in its own language.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import TypeGuard

from voting.domain.errors import InvalidRequest


class ChoiceProblem(StrEnum):
    """Why a ballot's choices were refused."""

    MALFORMED = "malformed"
    EMPTY = "empty"
    DUPLICATE = "duplicate"
    TOO_MANY = "too_many"
    UNKNOWN = "unknown"
    OWN_TEAM = "own_team"


class InvalidChoice(InvalidRequest):
    """An InvalidRequest that says which rule the choices broke (and about which slug)."""

    def __init__(
        self, message: str, *, reason: ChoiceProblem, max_choices: int, slug: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.max_choices = max_choices
        self.slug = slug


def well_formed(choices: object) -> TypeGuard[list[str]]:
    """Is this a list of strings (the shape a ballot's choices must have)?"""
    return isinstance(choices, list) and all(isinstance(c, str) for c in choices)


def check_choices(
    choices: object,
    *,
    max_choices: int,
    active: Mapping[str, int],
    excluded: Collection[int],
) -> list[int]:
    """The project ids of the chosen slugs, or InvalidChoice saying why not.

    The shape is checked before any project: a list too long for the ballot is refused
    as such, whatever it holds. `active` maps the poll's active choices (at least the
    chosen ones) to project ids; `excluded` holds the voter's own team's project ids.
    """

    def refuse(message: str, reason: ChoiceProblem, slug: str | None = None) -> InvalidChoice:
        return InvalidChoice(message, reason=reason, max_choices=max_choices, slug=slug)

    if not well_formed(choices):
        raise refuse('"choices" must be a list of project slugs.', ChoiceProblem.MALFORMED)
    if not choices:
        raise refuse("Choose at least one project.", ChoiceProblem.EMPTY)
    if len(set(choices)) != len(choices):
        raise refuse("Each project can be chosen only once.", ChoiceProblem.DUPLICATE)
    if len(choices) > max_choices:
        noun = "project" if max_choices == 1 else "projects"
        raise refuse(
            f"This poll allows at most {max_choices} {noun} per ballot.", ChoiceProblem.TOO_MANY
        )
    ids: list[int] = []
    for slug in choices:
        if slug not in active:
            raise refuse(
                f"{slug[:80]!r} is not a project in this poll.", ChoiceProblem.UNKNOWN, slug
            )
        if active[slug] in excluded:
            raise refuse(
                f"You cannot vote for {slug!r}: it is your own team's project. Pick another one.",
                ChoiceProblem.OWN_TEAM,
                slug,
            )
        ids.append(active[slug])
    return ids
