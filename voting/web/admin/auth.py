"""Logging organizers in and out of the console."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_user, logout_user

from voting.extensions import limiter
from voting.services import organizers
from voting.web.admin import login_limits
from voting.web.admin.blueprint import actor, bp
from voting.web.admin.forms import LoginForm
from voting.web.limits import address_key, login_username_key, setting


def _safe_next(target: str | None) -> str | None:
    """Only a path inside the console: never another host, never a scheme-relative URL."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//") or "\\" in target:
        return None
    return target if parts.path.startswith("/admin/") or parts.path == "/admin" else None


@bp.route("/login", methods=["GET", "POST"])
# Strangers (no device cookie for this username): per address, and per username over them all.
@limiter.limit(
    setting("RATELIMIT_LOGIN_PER_IP"),
    key_func=address_key,
    methods=["POST"],
    exempt_when=login_limits.known_device,
)
@limiter.limit(
    setting("RATELIMIT_LOGIN_PER_USERNAME"),
    key_func=login_username_key,
    methods=["POST"],
    scope=login_limits.USERNAME_SCOPE,
    exempt_when=login_limits.known_device,
    deduct_when=login_limits.failed,
)
# A device that signed in as this organizer before: its own bucket only.
@limiter.limit(
    setting("RATELIMIT_LOGIN_PER_DEVICE"),
    key_func=login_limits.device_key,
    methods=["POST"],
    exempt_when=login_limits.unknown_device,
)
def login() -> ResponseReturnValue:
    error = None
    form = LoginForm()
    if request.method == "POST":
        organizer = organizers.authenticate(form.username.data, form.password.data)
        if organizer is not None:
            target = _safe_next(request.args.get("next"))
            session.clear()  # nothing from before the login survives it
            login_user(organizer)
            response = redirect(target or url_for("admin.dashboard"), code=303)
            return login_limits.remember_device(response, organizer.username)
        error = "That username and password do not match."
    return render_template("admin/login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    organizers.record_logout(actor())
    logout_user()
    session.clear()
    flash("You are logged out.", "ok")
    return redirect(url_for("admin.login"), code=303)
