"""The ballot page around its cards, rendered once per poll, language, address and state.

The cards differ per voter (their own shuffle and picks; web.public.gallery caches each
card), and so does the form's CSRF token. Everything else on the page is the same for
everyone who sees the poll in the same state, language and URL. This process renders that
once, with markers where the cards and the token go, and fills them in per view.

The key holds every input the template reads besides those two, so a change to the poll,
its state, the filters or the fingerprint is a new key, never a stale page. The markers
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

from voting.i18n import current_language
from voting.models import Poll

_CARDS = f"voting-cards-{secrets.token_hex(16)}"
_CSRF = f"voting-csrf-{secrets.token_hex(16)}"
_MAX_PAGES = 1_000

_lock = threading.Lock()
_pages: dict[Hashable, str] = {}


def poll_stamp(poll: Poll) -> tuple[Hashable, ...]:
    """What ballot.html reads of the poll."""
    return (
        poll.id,
        poll.slug,
        poll.title,
        poll.description,
        poll.rehearsal_of,
        poll.eligibility,
        poll.max_choices,
    )


def render(template: str, key: tuple[Hashable, ...], cards: Markup, **context: Any) -> str:
    """render_template(template, cards=cards, **context), the part around `cards` cached.

    `key` must name every value in `context` (poll_stamp for the poll)."""
    full_key = (
        id(current_app._get_current_object()),  # type: ignore[attr-defined]
        template,
        current_language(),
        request.full_path,  # the language links keep the address
        key,
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
