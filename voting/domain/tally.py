"""Counting, ranking and the declared tie-break. Plain Python, no Flask.

Tie-break: when a poll is created it draws a random seed and publishes only
sha256(seed) once the poll opens. At reveal the seed itself is published. Tied projects
are ordered by sha256(f"{seed}:{project_slug}") ascending, which anyone can recompute
from the export with nothing but this module (or three lines of any language).

Ties shown: `ties` names, for each place, the other places with the same votes. During a
staged reveal only the places already revealed may be named (`among`), and a revealed place
is never marked tied with a place still hidden, not even without naming it: "decided by the
draw against a hidden place" would tell the room that the hidden place has the same count
(DESIGN rule 5). Marks among revealed places only repeat counts already on screen.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

# How tied places are ordered, in the words the results document and the pages use.
TIE_BREAK_RULE = (
    "Tied projects are ordered by the declared draw: "
    "sha256(seed + ':' + project slug), smallest first."
)


@dataclass(frozen=True)
class Placing:
    project: str
    votes: int
    rank: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def new_seed() -> str:
    """A fresh tie-break seed (256 bits, hex)."""
    return secrets.token_hex(32)


def seed_hash(seed: str) -> str:
    """The commitment published while the seed stays secret."""
    return hashlib.sha256(seed.encode()).hexdigest()


def tie_break_key(seed: str, project: str) -> str:
    """The order among tied projects: smaller key places higher."""
    return hashlib.sha256(f"{seed}:{project}".encode()).hexdigest()


def count(ballots: Iterable[Sequence[str]], projects: Iterable[str]) -> dict[str, int]:
    """Votes per project from ballots (each a list of chosen projects); every project listed."""
    counts: Counter[str] = Counter({p: 0 for p in projects})
    for choices in ballots:
        for project in set(choices):
            counts[project] += 1
    return dict(counts)


def rank(counts: Mapping[str, int], seed: str) -> list[Placing]:
    """Projects from winner to last: most votes first, ties by the seed's order."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], tie_break_key(seed, item[0])))
    return [Placing(project=p, votes=v, rank=i) for i, (p, v) in enumerate(ordered, start=1)]


def revealed(placings: Sequence[Placing], step: int) -> list[Placing]:
    """The placings shown after `step` reveal steps: the last `step` places, winner last."""
    if step <= 0:
        return []
    return list(placings[-step:]) if step < len(placings) else list(placings)


def ties(placings: Sequence[Placing], among: Collection[str] | None = None) -> dict[str, list[str]]:
    """Each place's ties: the other projects with the same votes, best placed first.

    Computed over the full ranking, then cut to the projects in `among` (the places a
    viewer is shown) when given: a project outside `among` is never named, and a place
    tied only with such projects gets no ties at all.
    """
    shown = set(among) if among is not None else {p.project for p in placings}
    by_votes: dict[int, list[str]] = {}
    for p in sorted(placings, key=lambda p: p.rank):
        if p.project in shown:
            by_votes.setdefault(p.votes, []).append(p.project)
    return {p.project: [q for q in by_votes.get(p.votes, []) if q != p.project] for p in placings}


def tied(placings: Sequence[Placing], among: Collection[str] | None = None) -> frozenset[str]:
    """The places in `among` (default: all) that share their votes with another place in
    `among`: those `ties` gives partners, minus any outside `among`. One pass, no lists of
    names (a recount marks 100 tied places at 0 votes, not 9,900 pairs)."""
    shown = set(among) if among is not None else {p.project for p in placings}
    at: Counter[int] = Counter(p.votes for p in placings if p.project in shown)
    return frozenset(p.project for p in placings if p.project in shown and at[p.votes] > 1)
