"""Fixtures and hooks only: app, client, runner, database isolation, small factories, browser.

The backend comes from VOTING_TEST_DATABASE_URL (PostgreSQL) or defaults to a SQLite file.
Redis-backed tests use VOTING_TEST_REDIS_URL (default redis://127.0.0.1:6379/15). With
VOTING_REQUIRE_SERVICES=1 (CI), a test whose service is unreachable fails instead of skipping.
A test drives Chromium through the `browser` fixture, and every such test is marked `browser`
(CI runs them once, on PostgreSQL). Both backends run everything else.
Plain helpers that test modules import are in tests/support.py, never here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import text

from tests.live_support import RedisProcess
from tests.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    TEST_SECRET,
    make_poll_on,
    mint_on,
    need_service,
    screenshot_folder,
    serving,
)
from voting import create_app, live
from voting.extensions import db


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the browser fixture (directly or through another) `browser`."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("VOTING_TEST_DATABASE_URL")
    if url:
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")


@pytest.fixture(scope="session")
def base_config(database_url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PASSWORD_HASH_METHOD": "scrypt:16384:8:1",
        "RATELIMIT_ENABLED": False,
        "BASE_URL": "http://vote.test",
        "HASH_KEY": "test-hash-key",
    }


@pytest.fixture(scope="session")
def _schema(base_config: dict[str, Any]) -> None:
    """Migrate once per session, from an empty schema."""
    app = create_app(base_config)
    with app.app_context():
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()


def _truncate() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def make_app(base_config: dict[str, Any], _schema: None) -> Iterator[Callable[..., Flask]]:
    """Build an app on the test database with extra config; each test starts from empty tables."""
    made: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        app = create_app({**base_config, **overrides})
        made.append(app)
        return app

    yield factory
    # Stop every app's live threads and close every pool before emptying the tables: a
    # second app still recounting would hold table locks that TRUNCATE waits on.
    for app in made:
        live.shutdown(app)  # its threads must not outlive its tables
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if made:
        with made[0].app_context():
            _truncate()
            db.engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def ctx(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgres", "postgresql"))


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A throwaway redis-server on a free port; the test can kill and restart it."""
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("VOTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        need_service(f"Redis at {url}")
    return url


# -- a real server, a real browser, and where screenshots go ---------------------------------


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test app served over HTTP on 127.0.0.1, for browsers and other processes."""
    with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        need_service(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need_service("the playwright package")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A fresh browser context the size of a phone (390x844)."""
    context = browser.new_context(**PHONE)
    yield context
    context.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """The folder a test saves its screenshots in: $VOTING_SCREENSHOTS_DIR, else its tmp_path."""
    return screenshot_folder(tmp_path)


# -- factories ----------------------------------------------------------------------------


@pytest.fixture
def make_poll(app: Flask) -> Callable[..., str]:
    """make_poll(slug=None, *, open_=True, **spec): support.make_poll_on on the test app."""
    return functools.partial(make_poll_on, app)


@pytest.fixture
def mint(app: Flask) -> Callable[..., list[str]]:
    """mint(slug, count=1): support.mint_on on the test app."""
    return functools.partial(mint_on, app)
