"""The ballot page around its cards, rendered once per poll, language, address and state.

The cards differ per voter (their own shuffle and picks; web.public.gallery caches each
card), and so does the form's CSRF token. Everything else on the page is the same for
everyone who sees the poll in the same state, language and URL. This process renders that
once, with markers where the cards and the token go, and fills them in per view.

The key is every value the template is given besides those two (a poll by all its
columns), so a change to the poll, its state, the filters or the fingerprint is a new key,
never a stale page. The markers
are random per process, so no title or search can guess them.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Hashable
from typing import Any

from flask import current_app, render_template, request
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import inspect as sa_inspect

from voting.i18n import current_language
from voting.models import Poll
from voting.web.public.gallery import Filters

_CARDS = f"voting-cards-{secrets.token_hex(16)}"
_CSRF = f"voting-csrf-{secrets.token_hex(16)}"
_MAX_PAGES = 1_000

_lock = threading.Lock()
_pages: dict[Hashable, str] = {}


_POLL_COLUMNS = tuple(a.key for a in sa_inspect(Poll).column_attrs)


def _keyed(value: Any) -> Hashable:
    """A template value as part of the cache key: a poll by its columns, filters by theirs."""
    if isinstance(value, Poll):
        return tuple(getattr(value, name) for name in _POLL_COLUMNS)
    if isinstance(value, Filters):
        return value.key
    return value


def render(template: str, cards: Markup, **context: Any) -> str:
    """render_template(template, cards=cards, **context), the part around `cards` cached.

    The key is every value in `context` (each hashable, a Poll or Filters), plus the
    language and the address."""
    full_key = (
        id(current_app._get_current_object()),  # type: ignore[attr-defined]
        template,
        current_language(),
        request.full_path,  # the language links keep the address
        tuple((name, _keyed(value)) for name, value in sorted(context.items())),
    )
    with _lock:
        page = _pages.get(full_key)
    if page is None:
        marker = Markup(_CARDS)  # noqa: S704 (this module's own marker, no input in it)
        page = render_template(template, cards=marker, csrf_token=lambda: _CSRF, **context)
        with _lock:
            if len(_pages) >= _MAX_PAGES:
                _pages.clear()
            _pages[full_key] = page
    if _CSRF in page:
        page = page.replace(_CSRF, generate_csrf())
    return page.replace(_CARDS, str(cards), 1)
