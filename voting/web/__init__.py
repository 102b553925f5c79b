"""The web layer: blueprints, error answers and page helpers, attached by register_web."""

from __future__ import annotations

from flask import Flask

from voting.domain.fingerprint import short
from voting.web import (
    admin,
    api,
    claim,
    errors,
    health,
    observability,
    overlay,
    presenting,
    protocol,
    public,
    security,
    sessions,
    stream,
)


def register_web(app: Flask) -> None:
    """Attach the session cookie, blueprints, error handlers, page filters and security headers."""
    sessions.install(app)
    observability.init_app(app)
    # `{{ fp|short_fingerprint }}`: the poll fingerprint as people compare it (1a2b-3c4d-5e6f).
    app.add_template_filter(short, "short_fingerprint")
    # `tied_with(shown, row)`: the places a shown row is tied with (its `tied` flag's names).
    app.add_template_global(presenting.tied_with, "tied_with")
    errors.register(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(overlay.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(claim.bp)
    security.init_app(app)
    protocol.check_uploads(app)
