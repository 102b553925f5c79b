"""The app factory: configuration, extensions, live updates, blueprints and commands."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from voting import config as config_module
from voting import i18n, live
from voting.cli import register_cli
from voting.config import ROOT
from voting.database import configure_sqlite, reset_write_intent
from voting.extensions import csrf, db, limiter, login_manager, redis_client
from voting.services.polls import live_documents
from voting.web import protocol, register_web


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then `config`."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    config_module.load(app, config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    # First: its hooks see each request before CSRF and the rate limiter, and its answer last.
    protocol.init_app(app)

    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    redis_client.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    live.init_app(app, source=live_documents)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
    app.teardown_appcontext(reset_write_intent)

    if app.config["PROXY_HOPS"]:
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    register_web(app)
    register_cli(app)
    return app
