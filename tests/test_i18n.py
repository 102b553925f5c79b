"""Languages: the locale from Accept-Language, a switcher that needs no JavaScript, and
catalogs that are complete, compiled and in step with the source."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import flask_babel
import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support import csrf_from
from voting.config import ROOT
from voting.extensions import db
from voting.i18n import moment, plural_variants
from voting.models import Poll, Project
from voting.services import ballots, polls

TRANSLATIONS = ROOT / "translations"
LANGUAGES = sorted(p.name for p in TRANSLATIONS.iterdir() if (p / "LC_MESSAGES").is_dir())


def lang_of(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match
    return match.group(1)


def test_each_compiled_catalog_is_a_language_of_the_site(app: Flask) -> None:
    assert "es" in LANGUAGES  # English is the source language, with no catalog
    with app.test_request_context("/"):
        from voting.i18n import available_languages

        assert available_languages() == ("en", *LANGUAGES)


@pytest.mark.parametrize(
    ("header", "lang", "text"),
    [
        ("es-ES,es;q=0.9,en;q=0.5", "es", "Vota por el favorito del público"),
        ("es-MX", "es", "Cómo votar"),
        ("en-GB,en;q=0.8", "en", "Vote for the Community Favorite"),
        ("fr-FR,fr;q=0.9", "en", "How to vote"),
        ("de, es;q=0.3", "es", "Cómo votar"),
        ("", "en", "How to vote"),
    ],
)
def test_the_language_comes_from_accept_language(
    client: FlaskClient, header: str, lang: str, text: str
) -> None:
    response = client.get("/", headers={"Accept-Language": header})
    html = response.get_data(as_text=True)
    assert lang_of(html) == lang and text in html
    assert "Accept-Language" in response.headers["Vary"]


def test_the_switcher_needs_no_javascript_and_is_remembered(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    english = client.get(f"/p/{slug}?category=Train", headers={"Accept-Language": "en"})
    html = english.get_data(as_text=True)
    switch = re.search(
        r'<a href="([^"]+)" lang="es" hreflang="es">ES<span class="vh"> Español', html
    )
    assert switch, "no link to the Spanish page"
    assert switch.group(1) == f"/p/{slug}?category=Train&amp;lang=es"
    spanish = client.get(switch.group(1).replace("&amp;", "&"), headers={"Accept-Language": "en"})
    assert lang_of(spanish.get_data(as_text=True)) == "es"
    assert "lang=es" in spanish.headers["Set-Cookie"] and "Path=/" in spanish.headers["Set-Cookie"]
    # The cookie now beats the browser's Accept-Language, on every page.
    again = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert lang_of(again) == "es" and 'aria-current="true">ES' in again
    back = client.get("/?lang=en", headers={"Accept-Language": "en"})
    assert lang_of(back.get_data(as_text=True)) == "en"
    assert lang_of(client.get("/").get_data(as_text=True)) == "en"


def test_an_unknown_language_parameter_is_ignored(client: FlaskClient) -> None:
    response = client.get("/?lang=xx", headers={"Accept-Language": "es"})
    assert lang_of(response.get_data(as_text=True)) == "es"
    assert "Set-Cookie" not in response.headers


def test_after_a_post_the_switcher_leads_to_the_ballot(
    client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    client.get(f"/v/{token}")
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    confirm = client.post(
        f"/p/{slug}/confirm", data={"csrf_token": csrf_from(page), "choice": "flood-watch"}
    ).get_data(as_text=True)
    assert f'<a href="/p/{slug}?lang=es" lang="es"' in confirm


def test_the_whole_ballot_flow_in_spanish(
    client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    es = {"Accept-Language": "es"}
    client.get(f"/v/{token}", headers=es)
    page = client.get(f"/p/{slug}", headers=es).get_data(as_text=True)
    for text in (
        "Elige un proyecto",
        "Buscar",
        "Categoría",
        "Continuar",
        "Se muestran los 12 proyectos",
    ):
        assert text in page
    for english in ("Pick one project", "Search", "Continue", "Showing"):
        assert english not in page
    confirm = client.post(
        f"/p/{slug}/confirm",
        data={"csrf_token": csrf_from(page), "choice": "flood-watch"},
        headers=es,
    ).get_data(as_text=True)
    assert "Confirma tu voto" in confirm and "Emitir mi voto" in confirm
    cast = client.post(
        f"/p/{slug}/cast",
        data={"csrf_token": csrf_from(confirm), "choice": "flood-watch"},
        headers=es,
    )
    receipt = client.get(cast.headers["Location"], headers=es).get_data(as_text=True)
    assert "Gracias, tu voto está registrado" in receipt and "¿Para qué sirve?" in receipt


def test_organizer_pages_stay_in_english(client: FlaskClient) -> None:
    html = client.get("/admin/login", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert lang_of(html) == "en" and 'class="langs"' not in html


def test_plural_variants_follow_each_language(app: Flask) -> None:
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert plural_variants("%(num)d pick left", "%(num)d picks left") == {
            "one": "{n} pick left",
            "other": "{n} picks left",
        }
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        forms = plural_variants("%(num)d pick left", "%(num)d picks left")
        assert forms["one"] == "Te queda {n} opción" and forms["other"] == "Te quedan {n} opciones"


def test_dates_are_written_the_local_way(app: Flask) -> None:
    when = datetime(2026, 11, 28, 18, 5, tzinfo=UTC)
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        text = moment(when)
        assert text.startswith("Nov 28, 2026, 6:05") and text.endswith("PM UTC")
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        assert moment(when) == "28 nov 2026, 18:05 UTC"  # 24-hour clock, day first


# -- the catalogs -----------------------------------------------------------------------------


def source_messages() -> set[object]:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "plural_variants": (1, 2)}
    return {
        message[2]
        for message in extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)
    }


def test_the_template_is_in_step_with_the_source() -> None:
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    assert template == source_messages(), "run the pybabel extract/update steps in the README"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated(lang: str) -> None:
    po = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    ids = {m.id for m in catalog if m.id}
    assert ids == template
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
        # Placeholders survive translation ({n} is filled in by static/app.js).
        source = message.id if isinstance(message.id, tuple) else (message.id,)
        if "{n}" in source[0]:
            assert all("{n}" in s for s in strings), message.id
    problems = [(m.id, errors) for m, errors in catalog.check()]
    assert problems == []


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_compiled_catalog_matches_its_source(lang: str) -> None:
    """The .mo files are committed (a fresh clone works with no build step); keep them current."""
    folder = TRANSLATIONS / lang / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as f:
        po = {_key(m.id): _key(m.string) for m in read_po(f, locale=lang) if m.id}
    with (folder / "messages.mo").open("rb") as f:
        mo = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
    assert mo == po, "run: pybabel compile -d translations"
    assert Path(folder / "messages.mo").stat().st_size > 1000


# -- every attendee page, rendered with a catalog that marks what it translated ---------------


class _Marked:
    """A catalog that "translates" every message into ⟦message⟧, so that any text on a page
    outside the marks was never passed through gettext."""

    def gettext(self, message: str) -> str:
        return f"⟦{message}⟧"

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return f"⟦{singular if n == 1 else plural}⟧"

    def pgettext(self, context: str, message: str) -> str:
        return self.gettext(message)

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        return self.ngettext(singular, plural, n)

    ugettext, ungettext, upgettext, unpgettext = gettext, ngettext, pgettext, npgettext


class _Text(HTMLParser):
    """The text a person reads or hears on a page: text nodes and the attributes read aloud
    or shown (alt, title, aria-label, placeholder, and data-* sentences that scripts show)."""

    SKIP = frozenset({"script", "style", "code", "title"})
    SPOKEN = frozenset({"alt", "title", "aria-label", "placeholder"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skipping.append(tag)
        for name, value in attrs:
            if value and (name in self.SPOKEN or (name.startswith("data-") and " " in value)):
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def untranslated(html: str, known: set[str]) -> list[str]:
    """Words on the page that came from neither the catalog nor the poll's own data."""
    parser = _Text()
    parser.feed(html)
    text = " ".join(parser.parts)
    while re.search(r"⟦[^⟦⟧]*⟧", text):
        text = re.sub(r"⟦[^⟦⟧]*⟧", " ", text)
    for value in sorted(known, key=len, reverse=True):
        text = text.replace(value, " ")
    text = re.sub(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b", " ", text)  # receipt codes
    return re.findall(r"[^\W\d_]{2,}", text)


def _known_data(app: Flask, slugs: list[str]) -> set[str]:
    """What a page may show untranslated: titles, names, codes, the languages' own names."""
    known = {"EN", "ES", "Español", "English", "UTC", "YouTube", "GitHub"}
    with app.app_context():
        for project in db.session.execute(select(Project)).scalars():
            known |= {
                project.title,
                project.team,
                project.category,
                project.theme,
                project.summary,
                project.description,
            }
            known |= set(project.members.split("; "))
        for poll in db.session.execute(select(Poll).where(Poll.slug.in_(slugs))).scalars():
            known |= {poll.title, poll.description, poll.tie_seed, poll.tie_seed_hash}
    return {k for k in known if k}


def test_no_attendee_page_shows_an_untranslated_word(
    app: Flask,
    client: FlaskClient,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every page an attendee can reach, in each state: all its words pass through gettext."""
    live = make_poll(results_mode="live", title="Pages")
    hidden = make_poll(results_mode="hidden", method="approval", max_choices=3, title="Pages")
    roster = make_poll(eligibility="roster", title="Pages")
    open_poll = make_poll(eligibility="open", title="Pages")
    later = make_poll(open_=False, title="Pages")
    tokens = mint(live, 3) + mint(hidden, 2)
    with app.app_context():
        ballots.cast_ballot(live, tokens[0], ["flood-watch"])
        ballots.cast_ballot(live, tokens[1], ["crop-doctor"])
        ballots.cast_ballot(hidden, tokens[3], ["flood-watch", "crop-doctor"])
    monkeypatch.setattr(flask_babel.Domain, "get_translations", lambda self: _Marked())
    es = {"Accept-Language": "es"}

    pages: list[tuple[str, str]] = []

    def visit(path: str, **kwargs: object) -> str:
        response = client.get(path, headers=es, **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 500, path
        html = response.get_data(as_text=True)
        pages.append((path, html))
        return html

    visit("/")
    visit("/no-such-page")
    visit("/v/not-a-token")
    for slug in (live, hidden, roster, open_poll, later):
        visit(f"/p/{slug}")
        visit(f"/p/{slug}?q=zzzz")
        visit(f"/p/{slug}/project/flood-watch")
        visit(f"/p/{slug}/results")
        visit(f"/p/{slug}/receipts")
    visit(f"/p/{roster}/claim")
    visit(f"/p/{open_poll}/join")
    # With a voting link: the ballot, the confirm page, the receipt, the revote notice.
    client.get(f"/v/{tokens[2]}")
    ballot = visit(f"/p/{live}")
    confirm = client.post(
        f"/p/{live}/confirm",
        data={"csrf_token": csrf_from(ballot), "choice": "flood-watch"},
        headers=es,
    )
    pages.append(("confirm", confirm.get_data(as_text=True)))
    cast = client.post(
        f"/p/{live}/cast",
        data={"csrf_token": csrf_from(confirm.get_data(as_text=True)), "choice": "flood-watch"},
        headers=es,
    )
    visit(cast.headers["Location"])
    visit(f"/p/{live}")  # already voted
    client.get(f"/v/{tokens[4]}")
    visit(f"/p/{hidden}")
    # Every state of the results page, and the closed and revealed ballot pages.
    with app.app_context():
        polls.close_poll(hidden, actor="t")
    visit(f"/p/{hidden}/results")
    visit(f"/p/{hidden}")
    with app.app_context():
        polls.reveal(hidden, actor="t", step=True)
    visit(f"/p/{hidden}/results")
    with app.app_context():
        polls.close_poll(live, actor="t")
        polls.reveal(live, actor="t")
        polls.reveal(hidden, actor="t")
    for slug in (live, hidden):
        visit(f"/p/{slug}/results")
        visit(f"/p/{slug}/receipts")
        visit(f"/p/{slug}")

    known = _known_data(app, [live, hidden, roster, open_poll, later])
    found = {path: words for path, html in pages if (words := untranslated(html, known))}
    assert found == {}, "text outside gettext (wrap it in _() and add it to the catalogs)"


@pytest.mark.parametrize("name", ["app.js", "live.js", "results.js"])
def test_attendee_scripts_take_their_words_from_the_page(name: str) -> None:
    """Scripts on attendee pages write only sentences the page gave them (data-*, translated)."""
    source = (ROOT / "static" / name).read_text()
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)  # comments may be English
    literals = re.findall(r'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\'', code)
    sentences = [a or b for a, b in literals if re.search(r"[A-Za-z]{2,} [A-Za-z]{2,}", a or b)]
    assert [s for s in sentences if s != "use strict"] == []
