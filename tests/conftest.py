"""Fixtures: app, client, runner, database isolation and small factories, for both backends.

The backend comes from VOTING_TEST_DATABASE_URL (PostgreSQL) or defaults to a SQLite file.
Redis-backed tests use VOTING_TEST_REDIS_URL (default redis://127.0.0.1:6379/15). With
VOTING_REQUIRE_SERVICES=1 (CI), a test whose service is unreachable fails instead of skipping.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import text
from werkzeug.serving import make_server

from voting import create_app, live
from voting.extensions import db
from voting.services import issuing, polls, projects

# Copies of ../shared/data, so a fresh clone tests without anything beside it.
SHARED_DATA = Path(__file__).resolve().parent / "data"
# Tests that take screenshots for the README write them here.
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
REQUIRE_SERVICES = os.environ.get("VOTING_REQUIRE_SERVICES") == "1"
TEST_SECRET = "test-secret-key-" + "x" * 32


def need_service(reason: str) -> None:
    """Skip locally, fail in CI: a test that needs a service must run there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


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


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("VOTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        need_service(f"Redis at {url}")
    return url


# -- a real server and a real browser -------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve an app over HTTP on 127.0.0.1 (threaded) for as long as the block runs."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


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
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield context
    context.close()


# -- factories ----------------------------------------------------------------------------


def import_samples() -> None:
    projects.import_projects(
        (SHARED_DATA / "projects-sample.csv").read_bytes(), "projects-sample.csv"
    )


@pytest.fixture
def make_poll(app: Flask) -> Callable[..., str]:
    """Import the sample projects (once) and create a poll; open it unless told not to.

    Factories push their own short app context: a test must not hold one open while it
    makes requests, or the requests would share its session (and its snapshot).
    """

    def factory(slug: str | None = None, *, open_: bool = True, **spec: Any) -> str:
        with app.app_context():
            if not db.session.execute(text("SELECT count(*) FROM projects")).scalar():
                import_samples()
            slug = slug or "poll-" + secrets.token_hex(3)
            title = spec.pop("title", "Test poll")
            polls.create_poll(polls.PollSpec(slug=slug, title=title, **spec), actor="test")
            if open_:
                polls.open_poll(slug, actor="test")
        return slug

    return factory


@pytest.fixture
def mint(app: Flask) -> Callable[..., list[str]]:
    def factory(slug: str, count: int = 1) -> list[str]:
        with app.app_context():
            return issuing.mint_tokens(slug, count, actor="test").tokens

    return factory


def in_app(app: Flask, query: Any) -> Any:
    """Run a read in a fresh app context and return its single result."""
    with app.app_context():
        return db.session.execute(query).scalar_one()


def project_slugs(app: Flask, slug: str) -> list[str]:
    with app.app_context():
        return [c["project"] for c in polls.poll_document(polls.get_poll(slug))["choices"]]
