from __future__ import annotations

import pytest
from sqlalchemy.pool import NullPool

from voting import create_app
from voting.config import ConfigError, normalize_database_url
from voting.extensions import db


def test_missing_secret_key_is_a_clear_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(
        ConfigError, match=r"SECRET_KEY is not set\. Set the SECRET_KEY environment variable"
    ):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_short_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="too short"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_demo_and_tests_get_a_throwaway_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    a = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    b = create_app({"DEMO": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert len(a.config["SECRET_KEY"]) == 64
    assert a.config["SECRET_KEY"] != b.config["SECRET_KEY"]


def test_environment_then_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", "old-key-1, old-key-2")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/votes")
    monkeypatch.setenv("VOTING_PROXY_HOPS", "1")
    monkeypatch.setenv("VOTING_BASE_URL", "https://vote.example.org/")
    app = create_app({"VOTING_UNUSED": 1, "BASE_URL": "https://override.example.org"})
    assert app.config["SECRET_KEY"] == "k" * 40
    assert app.config["SECRET_KEY_FALLBACKS"] == ["old-key-1", "old-key-2"]
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/votes"
    assert app.config["PROXY_HOPS"] == 1
    assert app.config["BASE_URL"] == "https://override.example.org"


def test_embedded_default_needs_nothing_but_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///voting.db"
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert app.config["REDIS_URL"] is None


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("VOTING_PROXY_HOPS", "-1", "0 or more"),
        ("VOTING_PROXY_HOPS", '"two"', "whole number"),
        ("VOTING_BASE_URL", '"ftp://x"', "http"),
        ("VOTING_CATEGORIES", "[]", "non-empty"),
    ],
)
def test_bad_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://a@b/c", "postgresql+psycopg://a@b/c"),
        ("postgresql://a@b/c", "postgresql+psycopg://a@b/c"),
        ("postgresql+psycopg://a@b/c", "postgresql+psycopg://a@b/c"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgres_urls_use_psycopg3(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_categories_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("VOTING_CATEGORIES", "Hardware; Software")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["CATEGORIES"] == ["Hardware", "Software"]


def test_postgres_pool_keeps_its_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    url = "postgresql://nobody@127.0.0.1:1/none"  # no connection is made here
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_size": 8, "max_overflow": 0}
    monkeypatch.setenv("VOTING_DATABASE_POOL_SIZE", "12")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"] == 12
    with app.app_context():
        assert db.engine.pool.size() == 12  # type: ignore[attr-defined]
    explicit = {"pool_size": 3, "max_overflow": 5}
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": explicit})
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == explicit
    # SQLite keeps SQLAlchemy's own pool settings.
    assert (
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["SQLALCHEMY_ENGINE_OPTIONS"]
        == {}
    )
    # An explicit pool class gets no pool sizes (NullPool refuses them).
    nullpool = {"poolclass": NullPool}
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": nullpool})
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == nullpool
    with app.app_context():
        assert isinstance(db.engine.pool, NullPool)
    # Values given as strings (JSON in VOTING_SQLALCHEMY_ENGINE_OPTIONS) are read as numbers.
    monkeypatch.setenv("VOTING_SQLALCHEMY_ENGINE_OPTIONS", '{"pool_size": "5"}')
    assert create_app({"SQLALCHEMY_DATABASE_URI": url}).config["SQLALCHEMY_ENGINE_OPTIONS"] == {
        "pool_size": 5,
        "max_overflow": 0,
    }
    monkeypatch.delenv("VOTING_SQLALCHEMY_ENGINE_OPTIONS")
    monkeypatch.setenv("VOTING_DATABASE_POOL_SIZE", "0")
    with pytest.raises(ConfigError, match="at least 1"):
        create_app({"SQLALCHEMY_DATABASE_URI": url})
    monkeypatch.setenv("VOTING_DATABASE_POOL_SIZE", '"many"')
    with pytest.raises(ConfigError, match="whole numbers"):
        create_app({"SQLALCHEMY_DATABASE_URI": url})
