"""The attendees' blueprint, its static-file helpers and the security headers on its pages."""

from __future__ import annotations

from flask import Blueprint, Response, request

from voting.web import assets
from voting.web.public.gallery import EMBED_HOSTS

bp = Blueprint("public", __name__)
bp.add_app_template_global(assets.static_url, "static_url")
bp.after_app_request(assets.cache_static)

CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "script-src 'self'",
        "style-src 'self'",
        f"frame-src {' '.join(EMBED_HOSTS)}",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)


@bp.after_request
def _headers(response: Response) -> Response:
    """A strict Content-Security-Policy on our pages: nothing loads from another host."""
    if response.mimetype == "text/html" and request.endpoint != "public.results_page":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
