"""The attendees' blueprint and its static-file helpers (headers: voting.web.security)."""

from __future__ import annotations

from flask import Blueprint

from voting.web import assets

bp = Blueprint("public", __name__)
bp.add_app_template_global(assets.static_url, "static_url")
bp.after_app_request(assets.cache_static)
