"""The console's blueprint and the organizer acting on it, shared by every view module."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from voting.extensions import login_manager

bp = Blueprint("admin", __name__, url_prefix="/admin")
login_manager.login_view = "admin.login"
login_manager.login_message = "Please log in to continue."

# Endpoints a visitor may reach without logging in.
OPEN_ENDPOINTS = frozenset({"admin.login"})


def actor() -> str:
    """The logged-in organizer's username, as the audit log records it."""
    return str(current_user.username)
