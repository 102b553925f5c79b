"""Helpers for the attendee-phone tests: contexts, request recording, axe, screenshots, data."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support import PHONE, serving
from voting.domain.submissions import OWN_COLUMNS


@contextmanager
def phone_context(browser: Any, **options: Any) -> Iterator[Any]:
    """A 390x844 context like the `phone` fixture, with extra options (JS off, locale...)."""
    context = browser.new_context(**{**PHONE, **options})
    try:
        yield context
    finally:
        context.close()


class Requests:
    """Every request a browser context makes, to check that none leaves the test server."""

    def __init__(self, context: Any) -> None:
        self.urls: list[str] = []
        context.on("request", lambda request: self.urls.append(request.url))

    def foreign(self, base: str) -> list[str]:
        origin = urlsplit(base).netloc
        return [u for u in self.urls if not u.startswith("data:") and urlsplit(u).netloc != origin]


def check_axe(page: Any) -> None:
    """axe-core on the page as it is now: no violation of any rule axe runs by default."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations = results.response["violations"]
    report = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5], v["help"]) for v in violations
    ]
    assert results.violations_count == 0, json.dumps(report, indent=1, ensure_ascii=False)


def small_targets(page: Any) -> list[str]:
    """Visible controls whose tap target is smaller than 44x44 CSS px (a wrapping label counts)."""
    return list(
        page.evaluate(
            """() => {
            const bad = [];
            for (const el of document.querySelectorAll('a[href], button, input, select, textarea, summary')) {
                if (el.type === 'hidden' || el.closest('[hidden]')) continue;
                const target = el.closest('label') || el;
                const r = target.getBoundingClientRect();
                if (r.width === 0 && r.height === 0) continue;  // not rendered (e.g. skip link)
                if (el.classList.contains('skip')) continue;     // off screen until focused
                if (r.width < 44 || r.height < 44)
                    bad.push(`${el.outerHTML.slice(0, 80)} ${Math.round(r.width)}x${Math.round(r.height)}`);
            }
            return bad;
        }"""
        )
    )


def shoot(page: Any, name: str, folder: Path) -> Path:
    """A phone-size screenshot of what the visitor sees, saved as folder/phone-<name>.png.

    `folder` is the `screenshots` fixture: docs/screenshots only when VOTING_SCREENSHOTS_DIR says so.
    """
    path = folder / f"phone-{name}.png"
    page.screenshot(path=str(path), scale="css", animations="disabled", caret="hide")
    return path


# -- data -------------------------------------------------------------------------------------

_WORDS = [
    "river",
    "flood",
    "crop",
    "leaf",
    "tutor",
    "reef",
    "coral",
    "transit",
    "energy",
    "sign",
    "paper",
    "air",
    "soil",
    "water",
    "forecast",
    "model",
    "notebook",
    "docstring",
    "audit",
    "bias",
    "map",
    "sensor",
    "language",
    "speech",
    "vision",
    "clinic",
    "malaria",
    "grid",
    "solar",
    "battery",
    "market",
    "price",
    "climate",
    "forest",
    "fire",
    "drought",
    "census",
    "school",
    "library",
    "archive",
    "museum",
    "translation",
    "braille",
    "caption",
    "podcast",
]
_NAMES = [
    "Ana Souza",
    "Kofi Mensah",
    "Li Wei",
    "Priya Natarajan",
    "Tomás Álvarez",
    "Sam Okafor",
    "Fatima Zahra",
    "Jonas Becker",
    "Mei Tanaka",
    "Diego Ramírez",
    "Olu Adebayo",
    "Chiara Rossi",
    "Aarav Shah",
    "Emma Johansson",
    "Yusuf Kaya",
    "Nguyễn Thị Lan",
    "Marco Bianchi",
    "Hannah Müller",
    "Kai Nakamura",
    "Isabela Costa",
    "Ravi Kumar",
    "Zanele Dlamini",
    "Pieter de Vries",
    "Amara Eze",
    "Lucas Martin",
    "Wojciech Nowak",
]
CATEGORIES = ["Build", "Train", "Analyse"]
THEMES = ["Global Impact", "Open Source & AI Accessibility", "AI Innovation & Productivity"]


def hundred_projects_csv(n: int = 100, seed: int = 5) -> bytes:
    """n plausible submissions: titles, teams of 1-4, one-line summaries of 60-120 characters."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c for c in OWN_COLUMNS if c != "built_with"])
    for i in range(n):
        words = rng.sample(_WORDS, 2)
        title = f"{words[0].title()} {words[1].title()} {i + 1}"
        summary = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(9, 16))).capitalize()
        summary = summary[:120]
        description = " ".join(rng.choice(_WORDS) for _ in range(80)).capitalize() + "."
        writer.writerow(
            [
                f"project-{i + 1:03d}",
                title,
                f"Team {rng.choice(_WORDS).title()} {i + 1}",
                "; ".join(rng.sample(_NAMES, rng.randint(1, 4))),
                CATEGORIES[i % 3],
                THEMES[(i // 3) % 3],
                summary,
                description,
                f"https://github.com/example-team-{i + 1}/project",
                f"https://www.youtube.com/watch?v={i:011d}",
                "",
            ]
        )
    return out.getvalue().encode()


# -- a tour of every page an attendee can meet -----------------------------------------------


def tour(
    base: str,
    app: Any,
    make_poll: Any,
    mint: Any,
    context: Any,
    visit: Any,
) -> None:
    """Open each attendee page in turn and call visit(page, name) on it.

    Pages: home, ballot, ballot-filtered, detail, ballot-chosen, confirm, receipt, already-voted, no-token,
    not-open, closed, invalid-link. (rate-limited needs an app with limits on; see callers.)
    """
    from datetime import timedelta

    from voting.models import utcnow
    from voting.services import polls

    slug = make_poll(
        "numhack",
        title="NumHack Community Favorite",
        description="Pick the project you would most like to see win. One vote per link.",
        closes_at=utcnow() + timedelta(hours=3),
    )
    other = make_poll("lightning", title="Lightning Talks Favorite")
    make_poll(
        "workshop",
        open_=False,
        title="Workshop Poster Prize",
        opens_at=utcnow() + timedelta(hours=2, minutes=14),
    )
    make_poll("pydata-2025", title="PyData 2025 Favorite")
    with app.app_context():
        polls.close_poll("pydata-2025", actor="test")
    [token] = mint(slug, 1)

    page = context.new_page()
    page.goto(f"{base}/")
    visit(page, "home")
    page.goto(f"{base}/v/{token}")
    visit(page, "ballot")
    page.goto(f"{base}/p/{slug}?category=Train")
    visit(page, "ballot-filtered")
    page.goto(f"{base}/p/{slug}/project/flood-watch")
    visit(page, "detail")
    page.goto(f"{base}/p/{slug}")
    choice = page.locator("input[name=choice][value=flood-watch]")
    choice.check()
    choice.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 120)")
    visit(page, "ballot-chosen")
    page.locator("#ballot button[type=submit]").click()
    page.wait_for_url(f"**/p/{slug}/confirm")
    visit(page, "confirm")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"**/p/{slug}/receipt")
    visit(page, "receipt")
    page.goto(f"{base}/p/{slug}")
    visit(page, "already-voted")
    page.goto(f"{base}/p/{other}")
    visit(page, "no-token")
    page.goto(f"{base}/p/workshop")
    visit(page, "not-open")
    page.goto(f"{base}/p/pydata-2025")
    visit(page, "closed")
    page.goto(f"{base}/v/WzEsImZvcmdlZCJd.not-a-real-signature")
    visit(page, "invalid-link")
    page.close()


def rate_limited_page(make_app: Any, context: Any) -> Any:
    """A page that hit the voter-link limit (1 per minute here), on an app of its own."""
    limited = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LINK_PER_IP="1/minute")
    page = context.new_page()
    with serving(limited) as base:
        page.goto(f"{base}/v/first-try")
        response = page.goto(f"{base}/v/second-try")
        assert response is not None and response.status == 429
        # Later checks run on the page as loaded; the server may stop.
        page.evaluate("0")
    return page
