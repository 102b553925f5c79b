"""The organizer console: the blueprint's guard, error page and template helpers."""

# Views parse forms and render; the services decide, commit and write the audit entry.
# Every page needs a logged-in organizer (one before_request guards the whole blueprint, so
# a new route cannot forget it); every form carries Flask-WTF's CSRF token. Dangerous steps
# (open, close, reveal, rotating the overlay key, withdrawing, revoking a batch) are two
# steps: a GET shows a page naming the consequence, and its form POSTs to the same address.
# Headers (no-store, no framing): the CONSOLE policy in voting.web.security.

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from voting.domain.errors import VotingError
from voting.extensions import db, login_manager
from voting.models import Organizer

# The view modules add their routes to bp as they are imported.
from voting.web.admin import (  # noqa: F401
    audit,
    auth,
    dashboard,
    lifecycle,
    polls,
    tokens,
    uploads,
)
from voting.web.admin.blueprint import OPEN_ENDPOINTS, bp
from voting.web.admin.timezones import fmt_local, fmt_utc, iso, tz_name
from voting.web.errors import wants_json

__all__ = ["bp"]


@login_manager.user_loader
def load_organizer(user_id: str) -> Organizer | None:
    if not user_id.isdecimal():
        return None
    return db.session.get(Organizer, int(user_id))


@login_manager.unauthorized_handler
def _unauthorized() -> ResponseReturnValue:
    if wants_json():
        return jsonify(error="unauthorized", message="Please log in first."), 401
    flash(login_manager.login_message, "info")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("admin.login", next=target), code=302)


@bp.before_request
def _require_login() -> ResponseReturnValue | None:
    if request.endpoint in OPEN_ENDPOINTS or current_user.is_authenticated:
        return None
    return login_manager.unauthorized()


@bp.errorhandler(VotingError)
def _refused(exc: VotingError) -> ResponseReturnValue:
    if wants_json():
        return jsonify(error=exc.code, message=exc.message), exc.status
    slug = (request.view_args or {}).get("slug")
    back = url_for("admin.poll", slug=slug) if slug else url_for("admin.dashboard")
    return render_template("admin/refused.html", message=exc.message, back=back), exc.status


@bp.context_processor
def _console_helpers() -> dict[str, Any]:
    return {
        "admin_local": fmt_local,
        "admin_utc": fmt_utc,
        "admin_iso": iso,
        "admin_tz": tz_name,
        "admin_tz_chosen": lambda: bool(session.get("tz")),
    }
