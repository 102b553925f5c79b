"""Data at the lengths the day brings: a 70-character title, 100 projects, 4-digit counts.

Short test titles and "24:58" countdowns never show a layout breaking; these helpers build
polls the size of a real closing session, quickly (ballots go in by bulk insert), and the
geometry checks that the browser tests share.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask
from sqlalchemy import insert, select

from voting.extensions import db
from voting.models import Ballot, BallotChoice, Poll, Project, Token, utcnow
from voting.services import polls, projects

LONG_TITLE = "NumHack Community Favorite (demo): PyData Global 2026 - the final vote"
assert len(LONG_TITLE) == 70
_WORDS = [
    "Notebook",
    "Narrator",
    "Flood",
    "Watch",
    "Crop",
    "Doctor",
    "Bias",
    "Lens",
    "Transit",
    "Pulse",
    "Tiny",
    "Tutor",
    "Air",
    "Aware",
    "Doc",
    "Sprint",
    "Coral",
    "Count",
    "Energy",
    "Mirror",
    "Sign",
    "Bridge",
    "Paper",
    "Trail",
    "Quantum",
    "Quill",
    "Solar",
    "Scout",
]
THEMES = ("Global Impact", "Open Source & AI Accessibility", "AI Innovation & Productivity")
CATEGORIES = ("Build", "Train", "Analyse")


def hundred_projects() -> list[dict[str, str]]:
    """100 submissions with names of 20-45 characters and long team names."""
    rows = []
    for i in range(100):
        words = [_WORDS[(i * 7 + k * 3) % len(_WORDS)] for k in range(3 + i % 4)]
        title = " ".join(words)[:45].strip() + f" {i + 1}"
        rows.append(
            {
                "slug": f"project-{i + 1:03d}",
                "title": title,
                "team": f"The {words[0]} {words[-1]} Collective of Team {i + 1}",
                "category": CATEGORIES[i % 3],
                "theme": THEMES[i % 3],
                "summary": "An open-source tool that does one useful thing very well.",
                "repo_url": f"https://github.com/example/project-{i + 1}",
            }
        )
    return rows


def import_hundred(app: Flask) -> list[str]:
    """Import the 100 projects into app's database; returns their slugs."""
    rows = hundred_projects()
    with app.app_context():
        projects.import_projects(json.dumps(rows).encode(), "hundred.json", actor="test")
    return [r["slug"] for r in rows]


def long_poll(
    app: Flask,
    slug: str = "closing-vote",
    *,
    open_: bool = True,
    **spec: Any,
) -> str:
    """A poll over the 100 projects with the 70-character title."""
    import_hundred(app)
    with app.app_context():
        polls.create_poll(
            polls.PollSpec(slug=slug, title=spec.pop("title", LONG_TITLE), **spec), actor="test"
        )
        if open_:
            polls.open_poll(slug, actor="test")
    return slug


def seed_votes(app: Flask, slug: str, counts: Mapping[str, int]) -> int:
    """Cast counts[project] one-choice ballots by bulk insert (thousands in a second)."""
    total = 0
    with app.app_context():
        poll = db.session.execute(select(Poll).where(Poll.slug == slug)).scalar_one()
        ids = dict(db.session.execute(select(Project.slug, Project.id)).all())
        minute = utcnow().replace(second=0, microsecond=0)
        for project, n in counts.items():
            if n == 0:
                continue
            token_ids = [secrets.token_urlsafe(16) for _ in range(n)]
            db.session.execute(
                insert(Token), [{"id": t, "poll_id": poll.id, "batch": "seed"} for t in token_ids]
            )
            ballot_ids = db.session.execute(
                insert(Ballot).returning(Ballot.id),
                [
                    {
                        "poll_id": poll.id,
                        "token_id": t,
                        "receipt": secrets.token_hex(6).upper(),
                        "cast_minute": minute,
                    }
                    for t in token_ids
                ],
            ).scalars()
            db.session.execute(
                insert(BallotChoice),
                [
                    {"ballot_id": b, "poll_id": poll.id, "project_id": ids[project]}
                    for b in ballot_ids
                ],
            )
            total += n
        db.session.commit()
    return total


def thousands(slugs: Sequence[str]) -> dict[str, int]:
    """Four-digit counts at the top (1,480 for the winner), then down to a handful."""

    def count(i: int) -> int:
        if i < 3:
            return 1_480 - 240 * i
        return 600 - 60 * i if i < 10 else (100 - i) // 10

    return {s: count(i) for i, s in enumerate(slugs)}


# -- geometry in Chromium -------------------------------------------------------------------

BOXES = """(selectors) => selectors.map((sel) => Array.from(document.querySelectorAll(sel))
  .filter((n) => n.getClientRects().length && getComputedStyle(n).visibility !== 'hidden')
  .map((n) => { const r = n.getBoundingClientRect();
    return {sel, text: (n.textContent || '').trim().slice(0, 40),
            x: r.left, y: r.top, r: r.right, b: r.bottom}; }))"""


def boxes(page: Any, *selectors: str) -> list[list[dict[str, Any]]]:
    """The visible boxes of each selector, in page coordinates of the viewport."""
    found: list[list[dict[str, Any]]] = page.evaluate(BOXES, list(selectors))
    return found


def outside(page: Any, container: str, *children: str, slack: float = 0.5) -> list[str]:
    """Children (of each container matched) whose box spills out of it; [] when all fit."""
    spills: list[str] = page.evaluate(
        """([container, children, slack]) => {
          const out = [];
          document.querySelectorAll(container).forEach((c) => {
            if (!c.getClientRects().length) return;
            const box = c.getBoundingClientRect();
            children.forEach((sel) => c.querySelectorAll(sel).forEach((n) => {
              if (!n.getClientRects().length) return;
              const r = n.getBoundingClientRect();
              // Text that overflows its own box counts too (a countdown past its card).
              const wide = n.scrollWidth > n.clientWidth + 1 && getComputedStyle(n).overflow === 'visible';
              if (r.left < box.left - slack || r.right > box.right + slack ||
                  r.top < box.top - slack || r.bottom > box.bottom + slack || wide) {
                out.push(`${sel} "${(n.textContent || '').trim().slice(0, 30)}" ` +
                  `[${r.left|0},${r.top|0},${r.right|0},${r.bottom|0}] outside ${container} ` +
                  `[${box.left|0},${box.top|0},${box.right|0},${box.bottom|0}]`);
              }
            }));
          });
          return out;
        }""",
        [container, list(children), slack],
    )
    return spills


def overlaps(page: Any, *selectors: str) -> list[str]:
    """Pairs of visible boxes (of different selectors) that overlap; [] when none do."""
    groups = boxes(page, *selectors)
    flat = [b for group in groups for b in group]
    found = []
    for i, a in enumerate(flat):
        for b in flat[i + 1 :]:
            if a["sel"] == b["sel"]:
                continue
            if a["x"] < b["r"] and b["x"] < a["r"] and a["y"] < b["b"] and b["y"] < a["b"]:
                found.append(f"{a['sel']} {a['text']!r} overlaps {b['sel']} {b['text']!r}")
    return found


def in_viewport(page: Any, *selectors: str) -> list[str]:
    """Visible boxes that reach past the viewport's edges."""
    size = page.viewport_size
    return [
        f"{b['sel']} {b['text']!r} [{b['x']:.0f},{b['y']:.0f},{b['r']:.0f},{b['b']:.0f}]"
        for group in boxes(page, *selectors)
        for b in group
        if b["x"] < -0.5
        or b["y"] < -0.5
        or b["r"] > size["width"] + 0.5
        or b["b"] > size["height"] + 0.5
    ]
