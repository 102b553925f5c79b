"""The organizer console (login and the poll overview; issue 7 grows the rest)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from voting.database import begin_write
from voting.extensions import db, limiter, login_manager
from voting.models import Organizer
from voting.services import audit, overlay, polls
from voting.services.organizers import check_password, hash_password
from voting.web.limits import address_key, login_username_key, setting

bp = Blueprint("admin", __name__, url_prefix="/admin")
login_manager.login_view = "admin.login"
login_manager.login_message = "Please log in to continue."

# Verified against when the username is unknown, so both paths cost one scrypt.
_DUMMY_HASH: dict[str, str] = {}


@login_manager.user_loader
def load_organizer(user_id: str) -> Organizer | None:
    if not user_id.isdigit():
        return None
    return db.session.get(Organizer, int(user_id))


def _dummy_hash() -> str:
    if "hash" not in _DUMMY_HASH:
        _DUMMY_HASH["hash"] = hash_password("not-a-real-password")
    return _DUMMY_HASH["hash"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(setting("RATELIMIT_LOGIN_PER_IP"), key_func=address_key, methods=["POST"])
@limiter.limit(
    setting("RATELIMIT_LOGIN_PER_USERNAME"), key_func=login_username_key, methods=["POST"]
)
def login() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        username = request.form.get("username", "")[:80]
        password = request.form.get("password", "")
        organizer = db.session.execute(
            select(Organizer).where(Organizer.username == username)
        ).scalar_one_or_none()
        if organizer is None:
            check_password(Organizer(password_hash=_dummy_hash()), password)
            ok = False
        else:
            ok = check_password(organizer, password)
        begin_write()
        audit.record(username or "(empty)", "login.success" if ok else "login.failure")
        db.session.commit()
        if ok and organizer is not None:
            login_user(organizer)
            return redirect(url_for("admin.dashboard"), code=303)
        error = "That username and password do not match."
    return render_template("admin/login.html", error=error), 401 if error else 200


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    logout_user()
    return redirect(url_for("admin.login"), code=303)


@bp.get("/")
@login_required
def dashboard() -> ResponseReturnValue:
    rows = []
    for poll in polls.list_polls():
        rows.append(
            {
                "poll": poll,
                "status": polls.effective_status(poll),
                "turnout": polls.turnout(poll),
                "overlay_url": overlay.overlay_url(poll),
            }
        )
    return render_template("admin/dashboard.html", rows=rows, user=current_user)
