"""The ballot's gallery: cards, filters, the per-voter shuffle, and demo video embeds."""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from flask import current_app

from voting.models import Poll, Project

SUMMARY_CHARS = 110

# Demo videos may be embedded from these hosts only, and only after a tap (static/app.js).
_YOUTUBE = re.compile(
    r"^https://(?:www\.|m\.)?(?:youtube\.com/(?:watch\?(?:.*&)?v=|embed/|shorts/|live/)|youtu\.be/)"
    r"([A-Za-z0-9_-]{11})(?:[?&#/].*)?$"
)
_VIMEO = re.compile(r"^https://(?:www\.)?vimeo\.com/(\d{6,12})(?:[?#/].*)?$")
EMBED_HOSTS = ("https://www.youtube-nocookie.com", "https://player.vimeo.com")


def fold(text: str) -> str:
    """Lowercase without accents, so "tomas" finds "Tomás" (static/app.js folds the same way)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()


def short_summary(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The card's one-line summary: cut at a word, with an ellipsis, when too long."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",.;:-")
    return cut + "…"


def video_embed(url: str | None) -> str | None:
    """A privacy-friendly embed URL for a YouTube or Vimeo demo, or None for anything else."""
    if not url:
        return None
    if match := _YOUTUBE.match(url):
        return f"https://www.youtube-nocookie.com/embed/{match.group(1)}?autoplay=1"
    if match := _VIMEO.match(url):
        return f"https://player.vimeo.com/video/{match.group(1)}?autoplay=1&dnt=1"
    return None


@dataclass
class Card:
    project: Project
    summary: str
    shown: bool = True
    checked: bool = False
    excluded: bool = False


@dataclass
class Filters:
    q: str = ""
    category: str = ""
    theme: str = ""
    categories: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.q or self.category or self.theme)

    def matches(self, project: Project) -> bool:
        if self.category and project.category != self.category:
            return False
        if self.theme and project.theme != self.theme:
            return False
        words = fold(self.q).split()
        if not words:
            return True
        haystack = fold(
            " ".join(
                [
                    project.title,
                    project.team,
                    short_summary(project.summary),
                    project.category,
                    project.theme,
                ]
            )
        )
        return all(word in haystack for word in words)


def _in_order(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    present = set(names) - {""}
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(present, key=lambda n: (rank.get(n, len(rank)), n))


def filters_for(projects: Sequence[Project], args: dict[str, str]) -> Filters:
    """The gallery's filters from the query string, keeping only categories and themes present."""
    categories = _in_order((p.category for p in projects), current_app.config["CATEGORIES"])
    themes = _in_order((p.theme for p in projects), current_app.config["THEMES"])
    category = args.get("category", "")
    theme = args.get("theme", "")
    return Filters(
        q=args.get("q", "").strip()[:100],
        category=category if category in categories else "",
        theme=theme if theme in themes else "",
        categories=categories,
        themes=themes,
    )


def shuffled(projects: Sequence[Project], seed: str) -> list[Project]:
    """The projects in an order fixed by the seed: shuffled per voter, stable for that voter."""
    ordered = sorted(projects, key=lambda p: p.slug)
    random.Random(seed).shuffle(ordered)
    return ordered


def active_projects(poll: Poll) -> list[Project]:
    """The projects still on the poll's ballot."""
    return [c.project for c in poll.choices if not c.withdrawn]
