"""The ballot's gallery: cards, filters, the per-voter shuffle, and demo video embeds."""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from flask import current_app, get_template_attribute
from markupsafe import Markup

from voting.i18n import current_language
from voting.models import Poll, Project
from voting.services.projects import BallotEntry

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


class _Shown(Protocol):
    """What the filters read of a project: a model row or a BallotEntry."""

    @property
    def title(self) -> str: ...
    @property
    def team(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def theme(self) -> str: ...


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

    @property
    def key(self) -> tuple[str, str, str, tuple[str, ...], tuple[str, ...]]:
        """Every field, hashable (web.public.skeleton's cache key)."""
        return (self.q, self.category, self.theme, tuple(self.categories), tuple(self.themes))

    def matches(self, project: _Shown) -> bool:
        if not self.active:
            return True
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


def shuffled(projects: Sequence[_Slugged], seed: str) -> list[_Slugged]:
    """The projects in an order fixed by the seed: shuffled per voter, stable for that voter."""
    ordered = sorted(projects, key=lambda p: p.slug)
    return [ordered[i] for i in shuffled_positions(len(ordered), seed)]


def shuffled_positions(count: int, seed: str) -> list[int]:
    """The order `shuffled` puts `count` slug-sorted projects in, as their positions: a
    shuffle's swaps depend only on the length and the seed, not on what is swapped."""
    positions = list(range(count))
    random.Random(seed).shuffle(positions)
    return positions


_Slugged = TypeVar("_Slugged", Project, BallotEntry)


def active_projects(poll: Poll) -> list[Project]:
    """The projects still on the poll's ballot."""
    return [c.project for c in poll.choices if not c.withdrawn]


# Each card's <li>, rendered once per release (this process's templates), language, ballot
# kind and state, then reused for every visitor: the shuffle and the filters are per
# visitor, the cards are not. The key holds every value the markup shows (the entry itself),
# so an edited project is a new key; the cache is emptied when it grows past _CARDS_MAX.
_cards: dict[tuple[object, ...], dict[tuple[object, ...], str]] = {}
_CARDS_MAX = 20_000
_cards_count = 0


@dataclass(frozen=True)
class CardStyle:
    """What every card of one page shares: the link base, radio or checkbox, votable or not."""

    base: str
    kind: str
    can_vote: bool


@dataclass(eq=False)
class Deck:
    """A held ballot's cards as one process prepares them once: in slug order (the order
    the per-voter shuffle starts from), the filters' categories and themes, and each page
    style's markup of every card unticked and shown (most views: no filter, no pick)."""

    source: Sequence[BallotEntry]  # the held rows this was made from (compared by identity)
    entries: list[BallotEntry]
    categories: list[str]
    themes: list[str]
    plain: dict[tuple[str, CardStyle], list[str]] = field(default_factory=dict)

    def filters(self, args: dict[str, str]) -> Filters:
        """The gallery's filters from the query string, keeping only categories and themes present."""
        category, theme = args.get("category", ""), args.get("theme", "")
        return Filters(
            q=args.get("q", "").strip()[:100],
            category=category if category in self.categories else "",
            theme=theme if theme in self.themes else "",
            categories=self.categories,
            themes=self.themes,
        )


_decks: dict[tuple[int, int], Deck] = {}
_DECKS_MAX = 256


def deck(entries: Sequence[BallotEntry]) -> Deck:
    """The Deck of these held rows (services.held hands out the same object while the
    ballot is unchanged, so a new ballot is a new object and a new Deck)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    key = (id(app), id(entries))
    found = _decks.get(key)
    if found is not None and found.source is entries:
        return found
    ordered = sorted(entries, key=lambda p: p.slug)
    made = Deck(
        source=entries,
        entries=ordered,
        categories=_in_order((p.category for p in ordered), app.config["CATEGORIES"]),
        themes=_in_order((p.theme for p in ordered), app.config["THEMES"]),
    )
    if len(_decks) >= _DECKS_MAX:
        _decks.clear()
    _decks[key] = made
    return made


def card_list(
    deck: Deck,
    order: Sequence[int],
    style: CardStyle,
    *,
    filters: Filters,
    checked: frozenset[str],
    excluded: frozenset[int],
) -> tuple[Markup, int, bool]:
    """The <li> of every card, in `order` (positions in deck.entries), how many the filters
    show, and whether any card is checked.

    Per visitor this only joins cached markup (see card_markup), so a 100-project ballot
    costs a string join, not 100 template renders."""
    language = current_language()
    if not (filters.active or checked or excluded):
        plain = deck.plain.get((language, style))
        if plain is None:
            page = _page_cards(style, language)
            plain = [_card_li(page, e, style, False, False, True) for e in deck.entries]
            deck.plain[(language, style)] = plain
        # Each part is escaped markup (the macro's output inside a fixed tag).
        return Markup("".join([plain[i] for i in order])), len(order), False  # noqa: S704
    active = filters.active
    page = _page_cards(style, language)
    parts: list[str] = []
    shown = 0
    picked = False
    for i in order:
        entry = deck.entries[i]
        visible = filters.matches(entry) if active else True
        shown += visible
        ticked = entry.slug in checked
        picked = picked or ticked
        parts.append(_card_li(page, entry, style, ticked, entry.id in excluded, visible))
    return Markup("".join(parts)), shown, picked  # noqa: S704


def _page_cards(style: CardStyle, language: str) -> dict[tuple[object, ...], str]:
    """The cache of one app's cards in one language and page style (see _cards)."""
    prefix = (id(current_app._get_current_object()), language, style)  # type: ignore[attr-defined]
    return _cards.setdefault(prefix, {})


def _card_li(
    page: dict[tuple[object, ...], str],
    entry: BallotEntry,
    style: CardStyle,
    ticked: bool,
    excluded: bool,
    visible: bool,
) -> str:
    """One card's <li>, from `page` (_page_cards) when this process made it before."""
    global _cards_count
    key = (entry, ticked, excluded, visible)
    li = page.get(key)
    if li is None:
        html = card_markup(entry, style, checked=ticked, excluded=excluded)
        li = f"\n<li>{html}</li>" if visible else f"\n<li hidden>{html}</li>"
        if _cards_count >= _CARDS_MAX:
            _cards.clear()  # `page` goes with the rest: the next view starts afresh
            _cards_count = 0
        page[key] = li
        _cards_count += 1
    return li


def card_markup(entry: BallotEntry, style: CardStyle, *, checked: bool, excluded: bool) -> Markup:
    """The inside of one card's <li>: templates/_card.html (card_list caches it)."""
    macro = get_template_attribute("_card.html", "card")
    html = macro(
        entry,
        short_summary(entry.summary),
        base=style.base,
        kind=style.kind,
        can_vote=style.can_vote,
        checked=checked,
        excluded=excluded,
    )
    # An autoescaped template's macro gives Markup: its values were escaped as it ran.
    assert isinstance(html, Markup)
    return html
