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
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

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
from voting.database import upgrade_schema
from voting.extensions import db, limiter
from voting.services.polls import live_documents


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the browser fixture (directly or through another) `browser`,
    and skip a test pinned to the other CI pass (`only_on`) before its fixtures start anything."""
    backend = "postgresql" if os.environ.get("VOTING_TEST_DATABASE_URL") else "sqlite"
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
        pinned = item.get_closest_marker("only_on")
        if pinned is not None and pinned.args[0] != backend:
            item.add_marker(pytest.mark.skip(reason=pinned.args[1]))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail the run when `--dist loadgroup` did not group: the stack tests (nginx, faults) and
    the two demo tests rely on running one after another. pytest-xdist marks a grouped test by
    a `@group` suffix on its node id; pytest 9.2 silently dropped it (pytest-xdist#1386)."""
    if not getattr(session.config.option, "loadgroup", False):
        return  # not an xdist worker running loadgroup
    lost = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid
    ]
    if lost:
        why = (
            f"--dist loadgroup did not group {len(lost)} tests (first: {lost[0]}); "
            "this pytest and pytest-xdist do not work together (pytest-xdist#1386)"
        )
        print(why, file=sys.__stderr__, flush=True)  # a worker's exit reason is not shown
        pytest.exit(why, returncode=pytest.ExitCode.USAGE_ERROR)


def _worker() -> str:
    """The pytest-xdist worker this process is ("gw0", "gw1", ...), or "" when run alone."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """VOTING_TEST_DATABASE_URL, or a SQLite file; under xdist each worker gets its own database.

    A PostgreSQL test database is made fast and forgetful: commits do not wait for the disk
    (synchronous_commit=off), which nothing in a test can tell apart except by the clock.
    """
    url = os.environ.get("VOTING_TEST_DATABASE_URL")
    if not url:
        return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")
    base = make_url(url)
    if _worker():
        base = base.set(database=f"{base.database}_{_worker()}")
    engine = create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            name = base.database
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except SQLAlchemyError:
        need_service(f"PostgreSQL at {url}")
    finally:
        engine.dispose()
    return base.render_as_string(hide_password=False)


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
        upgrade_schema()
        db.engine.dispose()


def _truncate() -> None:
    """Empty every table and restart PostgreSQL's id sequences, in one transaction.

    DELETE on a test's handful of rows is about ten times cheaper than TRUNCATE, which
    rewrites every table's files whether or not the test touched it.
    """
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        for table in tables:
            conn.execute(text(f"DELETE FROM {table}"))
        if db.engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "SELECT setval(c.oid, 1, false) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE c.relkind = 'S' AND n.nspname = current_schema()"
                )
            )


class _SharedTemplates(BytecodeCache):
    """Compiled templates kept for the whole session, so each test's new app skips compiling.

    Every test builds its own app, and each app's Jinja environment would otherwise compile
    every template it renders again; the key includes the source's checksum, so an edited
    template is compiled afresh.
    """

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _SharedTemplates()


def _fresh_limiter() -> None:
    """Before an app is built: the module-level Limiter forgets what earlier apps left on it.

    flask-limiter keeps the first key prefix an enabled app gave it (`self._key_prefix or
    config`), so after test_ballot_page_hold's app (prefix "test-hold-…") the limits of
    every later app in the worker were counted under that prefix, and a test looking for
    its own keys ("voting-rl") failed, depending on which tests a worker had run. It also
    keeps "storage dead" after an earlier test's Redis died under it. In production one app
    lives per process and neither matters."""
    limiter._key_prefix = ""
    limiter._storage_dead = False
    limiter._Limiter__check_backend_count = 0  # type: ignore[attr-defined]


class Apps:
    """The apps one test builds: new ones with extra config, or the worker's default app.

    Building an app costs about 50 ms (werkzeug compiles each URL rule), so the default app,
    the `app` fixture, is built once per worker and reset after every test: a new live hub,
    its config as built, and empty tables. An app a test asks for by calling this, with or
    without overrides, is its own and is thrown away afterwards.
    """

    default_app: Flask | None = None
    default_config: dict[str, Any] = {}

    def __init__(self, base_config: dict[str, Any]) -> None:
        self.base_config = base_config
        self.made: list[Flask] = []
        self.used_default = False

    def __call__(self, **overrides: Any) -> Flask:
        _fresh_limiter()
        app = create_app({**self.base_config, **overrides})
        app.jinja_env.bytecode_cache = _TEMPLATES
        self.made.append(app)
        return app

    def default(self) -> Flask:
        if Apps.default_app is None:
            Apps.default_app = create_app(self.base_config)
            Apps.default_app.jinja_env.bytecode_cache = _TEMPLATES
            Apps.default_config = dict(Apps.default_app.config)
        # flask-limiter keeps `enabled` and its storage on the one module-level Limiter, set
        # by whichever app was built last; give them back to the default app.
        _fresh_limiter()
        limiter.init_app(Apps.default_app)
        self.used_default = True
        return Apps.default_app

    def close(self) -> None:
        """Stop every app's live threads and close every pool, then empty the tables.

        A second app still recounting would hold table locks that the DELETEs wait on.
        """
        apps = [*self.made, *([Apps.default_app] if self.used_default else [])]
        for app in apps:
            live.shutdown(app)  # its threads must not outlive its tables
        for app in apps:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        if apps:
            with apps[0].app_context():
                _truncate()
                db.engine.dispose()
        if self.used_default and Apps.default_app is not None:
            shared = Apps.default_app
            shared.config.clear()
            shared.config.update(Apps.default_config)
            shared.extensions.pop("voting.voter_signer", None)
            live.init_app(shared, source=live_documents)


@pytest.fixture
def make_app(base_config: dict[str, Any], _schema: None) -> Iterator[Apps]:
    """Build an app on the test database with extra config; each test starts from empty tables."""
    apps = Apps(base_config)
    yield apps
    apps.close()


@pytest.fixture
def app(make_app: Apps) -> Flask:
    """The default app (shared by the tests of a worker, reset after each)."""
    return make_app.default()


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
    """VOTING_TEST_REDIS_URL (default database 15); xdist worker gwN counts down from it by N."""
    url = os.environ.get("VOTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if _worker():
        parts = urlsplit(url)
        number = int(parts.path.strip("/") or 0) - int(_worker().removeprefix("gw"))
        url = urlunsplit(parts._replace(path=f"/{number % 16}"))
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
