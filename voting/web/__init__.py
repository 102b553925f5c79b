"""The web layer: blueprints, error answers and page helpers, attached by register_web."""

from __future__ import annotations

from flask import Flask

from voting.web import (
    admin,
    api,
    claim,
    errors,
    health,
    overlay,
    public,
    security,
    sessions,
    stream,
)


def register_web(app: Flask) -> None:
    """Attach the session cookie, blueprints, error handlers and the security headers."""
    sessions.install(app)
    errors.register(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(overlay.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(claim.bp)
    security.init_app(app)
