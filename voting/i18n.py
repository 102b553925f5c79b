"""Languages: Flask-Babel, the locale for each request, and the switcher's links.

The locale is the first of: a `?lang=` query parameter (the switcher's links; it is then
remembered in a `lang` cookie), the `lang` cookie, the browser's Accept-Language, English.
A language is available when translations/<code>/LC_MESSAGES/messages.mo exists, so adding
one needs no code change (README, "Adding a language").
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from flask import Flask, Response, current_app, request, url_for
from flask_babel import format_date, format_decimal, format_time, get_locale, get_translations

from voting.extensions import babel

DEFAULT_LOCALE = "en"
LANG_COOKIE = "lang"
LANG_PARAM = "lang"
ONE_YEAR = 60 * 60 * 24 * 365


@cache
def _compiled_languages(directory: str) -> tuple[str, ...]:
    found = {DEFAULT_LOCALE}
    base = Path(directory)
    if base.is_dir():
        for child in base.iterdir():
            if (child / "LC_MESSAGES" / "messages.mo").is_file():
                found.add(child.name)
    return tuple(sorted(found))


def available_languages() -> tuple[str, ...]:
    """Language codes with a compiled catalog, English (the source language) first."""
    codes = _compiled_languages(current_app.config["BABEL_TRANSLATION_DIRECTORIES"])
    return (DEFAULT_LOCALE, *(c for c in codes if c != DEFAULT_LOCALE))


def language_name(code: str) -> str:
    """A language's name in that language, as a speaker would look for it: "Español"."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def asked_language() -> str | None:
    """The supported language named by ?lang=, if any."""
    asked = request.args.get(LANG_PARAM, "")
    return asked if asked in available_languages() else None


def select_locale() -> str:
    """The locale for this request (see the module docstring for the order)."""
    supported = available_languages()
    asked = asked_language()
    if asked:
        return asked
    remembered = request.cookies.get(LANG_COOKIE, "")
    if remembered in supported:
        return remembered
    return request.accept_languages.best_match(supported) or DEFAULT_LOCALE


def current_language() -> str:
    locale = get_locale()
    return str(locale) if locale else DEFAULT_LOCALE


def text_direction() -> str:
    """ "ltr" or "rtl" for the <html dir> attribute."""
    locale = get_locale()
    return "rtl" if locale is not None and locale.text_direction == "rtl" else "ltr"


def switch_language_url(code: str) -> str:
    """This page in another language; after a POST, the poll's ballot page (or the home page)."""
    view_args = dict(request.view_args or {})
    if request.method == "GET" and request.endpoint and request.url_rule is not None:
        args: dict[str, Any] = {k: v for k, v in request.args.lists() if k != LANG_PARAM}
        args[LANG_PARAM] = code
        return url_for(request.endpoint, **view_args, **args)
    if request.method == "GET":  # no route matched: a 404 page
        return f"{request.path}?{LANG_PARAM}={code}"
    if "slug" in view_args:
        return url_for("public.ballot", slug=view_args["slug"], lang=code)
    return url_for("public.home", lang=code)


def plural_variants(singular: str, plural: str) -> dict[str, str]:
    """A message's plural forms by CLDR category ("one", "few", "other", ...), with the number
    left as "{n}", so static/app.js can pick one through Intl.PluralRules."""
    locale = get_locale() or Locale.parse(DEFAULT_LOCALE)
    translations = get_translations()
    forms: dict[str, str] = {}
    for n in range(0, 200):
        tag = locale.plural_form(n)
        if tag not in forms:
            text = translations.ungettext(singular, plural, n)
            forms[tag] = text.replace("%(num)d", "{n}")
    return forms


def moment(value: datetime) -> str:
    """A date and time for people, in the page's language: "Nov 28, 2026, 11:30 PM UTC"."""
    return f"{format_date(value, 'medium')}, {format_time(value, 'short')} UTC"


def number(value: int) -> str:
    """A count written the local way: 9,870 in English, 9870 in Spanish."""
    return str(format_decimal(value))


def _remember_language(response: Response) -> Response:
    asked = asked_language()
    if asked and request.cookies.get(LANG_COOKIE) != asked:
        response.set_cookie(
            LANG_COOKIE, asked, max_age=ONE_YEAR, samesite="Lax", secure=request.is_secure
        )
    if response.mimetype == "text/html":
        response.vary.update(("Accept-Language", "Cookie"))
    return response


def init_app(app: Flask) -> None:
    """Bind Flask-Babel with our locale selector and expose the helpers to templates."""
    babel.init_app(app, locale_selector=select_locale)
    app.after_request(_remember_language)
    app.add_template_filter(moment)
    app.add_template_filter(number)
    app.jinja_env.globals.update(
        available_languages=available_languages,
        language_name=language_name,
        current_language=current_language,
        text_direction=text_direction,
        switch_language_url=switch_language_url,
        plural_variants=plural_variants,
    )
