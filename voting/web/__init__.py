"""Blueprints and the one place that turns domain errors into HTTP answers."""

from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    """Attach blueprints, error handlers and template helpers."""
    from voting.web import admin, api, claim, errors, health, overlay, public, sessions, stream

    sessions.install(app)
    errors.register(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(overlay.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(claim.bp)
