"""Extension singletons, bound to an app with init_app in create_app."""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask, current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def client_address() -> str:
    """The client's address as ProxyFix settled it; never empty, so a limit always applies."""
    return request.remote_addr or "unknown-address"


db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()


def _default_key() -> str:
    return "addr:" + client_address()


def _default_limit() -> str:
    return str(current_app.config["RATELIMIT_DEFAULT"])


# Default limits (reads) are per client address; routes declare their own beside them. The
# default is read per request: flask-limiter takes RATELIMIT_DEFAULT from the first app it is
# bound to only, so a second app in the process (tests, `voting demo`) would keep the first's.
limiter = Limiter(key_func=_default_key, default_limits=[_default_limit])


class RedisClient:
    """The shared Redis connection pool, or None in the embedded default."""

    _key = "voting.redis"

    def init_app(self, app: Flask) -> None:
        url = app.config["REDIS_URL"]
        client: Any = None
        if url:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=0.5,
                socket_timeout=1.0,
                health_check_interval=15,
                decode_responses=True,
            )
        app.extensions[self._key] = client

    def get(self) -> redis.Redis | None:
        """The client for the current app, or None when REDIS_URL is not configured."""
        client: redis.Redis | None = current_app.extensions.get(self._key)
        return client


redis_client = RedisClient()
