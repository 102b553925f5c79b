"""The web layer: blueprints, error answers and page helpers, attached by register_web."""

from __future__ import annotations

from flask import Flask

from voting.web import admin, api, claim, errors, health, overlay, public, security, stream


def register_web(app: Flask) -> None:
    """Attach blueprints, error handlers, template helpers and the security headers."""
    errors.register(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(overlay.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(claim.bp)
    security.init_app(app)
