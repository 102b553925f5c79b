"""Configuration: defaults, then the environment, then a mapping given to create_app."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from flask import Flask

# The checkout: templates/, static/, migrations/ and translations/ sit beside voting/.
ROOT = Path(__file__).resolve().parent.parent

DEFAULT_CATEGORIES = ["Build", "Train", "Analyse"]
DEFAULT_THEMES = [
    "Global Impact",
    "Open Source & AI Accessibility",
    "AI Innovation & Productivity",
]


class ConfigError(RuntimeError):
    """The configuration cannot run the service; the message says what to set."""


DEFAULTS: dict[str, Any] = {
    # The embedded default: a SQLite file under instance/ (Flask-SQLAlchemy puts a
    # relative sqlite path there), limits in memory, live updates in-process.
    "SQLALCHEMY_DATABASE_URI": "sqlite:///voting.db",
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    "REDIS_URL": None,
    "SECRET_KEY": None,
    "SECRET_KEY_FALLBACKS": [],
    # Keys the email and roster-code hashes; None: derived from SECRET_KEY. Set it so that
    # rotating SECRET_KEY keeps stored hashes matching.
    "HASH_KEY": None,
    "DEMO": False,
    "TESTING": False,
    # The public address that voter links and QR codes point at. Minting and printing
    # refuse a loopback address outside the demo unless ALLOW_LOCAL_BASE_URL is set
    # (voting.links.check_printable_base).
    "BASE_URL": "http://127.0.0.1:5000",
    "ALLOW_LOCAL_BASE_URL": False,
    "CATEGORIES": DEFAULT_CATEGORIES,
    "THEMES": DEFAULT_THEMES,
    # Compiled catalogs: translations/<code>/LC_MESSAGES/messages.mo (voting.i18n).
    "BABEL_TRANSLATION_DIRECTORIES": str(ROOT / "translations"),
    # Uploads (project CSV/JSON, rosters, an export to check) above this are refused with 413.
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    # Every other request body (a ballot, a form): far above any real one (voting.web.protocol).
    "MAX_BODY_LENGTH": 256 * 1024,
    # PostgreSQL: connections each process keeps open. A request that finds them all
    # busy waits for one (up to SQLAlchemy's pool_timeout) instead of opening another:
    # with overflow, 32 threads churned through a new connection every four ballots
    # (docs/benchmarks.md). Set both in SQLALCHEMY_ENGINE_OPTIONS to override.
    "DATABASE_POOL_SIZE": 8,
    "DATABASE_MAX_OVERFLOW": 0,
    # SQLite: how long a writer waits for the database lock before giving up.
    "SQLITE_BUSY_TIMEOUT_MS": 30_000,
    "PROXY_HOPS": 0,
    # Hosts the app answers for (Flask refuses any other Host with 400); None: any host.
    # Redirects never name a host outside these and BASE_URL's (voting.web.protocol).
    "TRUSTED_HOSTS": None,
    # Strict-Transport-Security on HTTPS answers (one year); 0 leaves the header off.
    "HSTS_SECONDS": 365 * 24 * 3600,
    "WTF_CSRF_TIME_LIMIT": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # The console never sets Flask-Login's remember cookie; should it ever, it is locked
    # down too (REMEMBER_COOKIE_SECURE follows SESSION_COOKIE_SECURE unless set).
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    # Organizer passwords: scrypt with N=2^17, r=8, p=1, OWASP's recommended minimum.
    "PASSWORD_HASH_METHOD": "scrypt:131072:8:1",
    # The console's live section reloads this often when its event stream is away.
    "ADMIN_LIVE_REFRESH_SECONDS": 5,
    # Rate limits (flask-limiter syntax); README "Rate limits" gives the reason for each.
    # The storage is Redis when REDIS_URL is set, else memory (RATELIMIT_STORAGE_URI).
    "RATELIMIT_KEY_PREFIX": "voting-rl",
    # Fixed window: one INCR per limit per request, whatever the limit's size.
    "RATELIMIT_STRATEGY": "fixed-window",
    # X-RateLimit-* headers on every answer, as clients expect. They cost two more Redis
    # round trips per request (docs/benchmarks.md); VOTING_RATELIMIT_HEADERS_ENABLED=false
    # drops them. A 429 carries Retry-After either way (voting.web.errors).
    "RATELIMIT_HEADERS_ENABLED": True,
    # Redis down: limits fall back to memory per process rather than refusing requests.
    "RATELIMIT_SWALLOW_ERRORS": True,
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_ENABLED": True,
    # Per token id: attempts a minute, its first ballot included (that one is not counted
    # in Redis; the database records it).
    "RATELIMIT_BALLOT_PER_TOKEN": "5/minute",
    # Per address: ballots that record nothing (bad tokens, repeats, refused choices). A
    # first ballot with a valid token is never counted, so a hall behind one NAT is never
    # held back; this only caps the CPU that refusals cost (README "Rate limits").
    "RATELIMIT_BALLOT_PER_IP": "1500/minute",
    "RATELIMIT_LINK_PER_IP": "600/minute",
    # Sign-ins from devices that never signed in as the username tried: per address, and
    # failed ones per username over every address (an attacker's 30 guesses an hour). A
    # device that signed in before has its own bucket (voting.web.admin.login_limits).
    "RATELIMIT_LOGIN_PER_IP": "20/minute",
    "RATELIMIT_LOGIN_PER_USERNAME": "30/hour",
    "RATELIMIT_LOGIN_PER_DEVICE": "10/minute",
    # Off (None): a hall of phones behind one conference NAT opens thousands of streams from
    # one address, and a stream costs the server a socket (issue 11). Set it (say
    # "600/minute") to cap reconnects per address again.
    "RATELIMIT_STREAM_PER_IP": None,
    "RATELIMIT_DEVICE_TOKENS_PER_IP": "500/hour",
    "RATELIMIT_DEFAULT": "6000/minute",
    # GET /metrics (Prometheus) answers only with `Authorization: Bearer <this>`; None: the
    # route answers 404. Set VOTING_METRICS_TOKEN to a long random string.
    "METRICS_TOKEN": None,
    # One JSON line per request on stderr (route, status, duration, request id, instance).
    "LOG_JSON": False,
    # How logs name this process; None: host:pid.
    "INSTANCE_NAME": None,
    # The ballot page holds what it reads alike for every visitor (the cards' projects, the
    # fingerprint) this long per process; a change made in this process voids it at once
    # (voting.services.held). 0: read them on every view.
    "PAGE_HOLD_SECONDS": 1.0,
    # The public receipt board lists this many receipts per page (about 10 KB of HTML).
    "RECEIPTS_PAGE_SIZE": 100,
    # Live updates (voting.live; VOTING_LIVE_* in the environment).
    # Streams send a heartbeat at least this often (proxies drop idle connections).
    "LIVE_HEARTBEAT_SECONDS": 15.0,
    # At most one snapshot per poll per this many seconds, per publisher.
    # Each worker recounts every poll it changed at this pace: at 300 ballots/s on 2 cores,
    # 0.25 s spent a fifth of the machine on recounts and doubled the ballot's p99
    # (docs/benchmarks.md, fourth stop).
    "LIVE_MIN_INTERVAL": 0.5,
    # At most one event per stream per this many seconds (latest wins). Apart from the
    # recount's pace: snapshots from several workers and instances arrive faster than any
    # one's, and a viewer's wait for the next event adds to a ballot's delivery, which must
    # stay within a second (issue 11). A 100-project event is about 11 KB.
    "LIVE_STREAM_MIN_INTERVAL": 0.25,
    # The reconnect delay suggested to EventSource (a random 0-2 s is added per stream).
    "LIVE_RETRY_MS": 3000,
    # A stream ends after this long; EventSource reconnects with Last-Event-ID, which
    # re-checks who is listening and spreads long-lived connections over instances.
    "LIVE_STREAM_SECONDS": 300.0,
    # While streams are open, recompute from the database at least this often. None: 10 s
    # with Redis (publishes arrive at once; this only repairs lost ones; at most 2 s while
    # Redis is unreachable), 1 s without (another process, such as the CLI, cannot notify us).
    "LIVE_RECONCILE_SECONDS": None,
    "LIVE_KEY_PREFIX": "voting-live",
    # Cached snapshots expire from Redis after this long without a change.
    "LIVE_CACHE_TTL_SECONDS": 2 * 24 * 3600,
}


def normalize_database_url(url: str) -> str:
    """Make postgres URLs use psycopg 3, whatever spelling the platform hands us."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _split_keys(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def load(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    """Fill app.config from defaults, the environment, then overrides; then validate."""
    app.config.from_mapping(DEFAULTS)

    env = os.environ
    if env.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = env["DATABASE_URL"]
    if env.get("REDIS_URL"):
        app.config["REDIS_URL"] = env["REDIS_URL"]
    if env.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = env["SECRET_KEY"]
    if env.get("SECRET_KEY_FALLBACKS"):
        app.config["SECRET_KEY_FALLBACKS"] = _split_keys(env["SECRET_KEY_FALLBACKS"])
    # VOTING_PROXY_HOPS=1 -> PROXY_HOPS = 1 (values are parsed as JSON when they can be).
    app.config.from_prefixed_env("VOTING")

    if overrides:
        app.config.from_mapping(overrides)

    validate(app.config)
    _derive(app.config)


def _derive(config: MutableMapping[str, Any]) -> None:
    """Settings that follow from others unless they were given outright."""
    url = config.get("REDIS_URL")
    config.setdefault("RATELIMIT_STORAGE_URI", url or "memory://")
    if url:
        config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
        )
    config.setdefault("REMEMBER_COOKIE_SECURE", bool(config.get("SESSION_COOKIE_SECURE")))


def validate(config: MutableMapping[str, Any]) -> None:
    """Refuse to start with a configuration that would be unsafe or cannot work."""
    config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(config["SQLALCHEMY_DATABASE_URI"])
    if isinstance(config.get("SECRET_KEY_FALLBACKS"), str):
        config["SECRET_KEY_FALLBACKS"] = _split_keys(config["SECRET_KEY_FALLBACKS"])
    if isinstance(config.get("TRUSTED_HOSTS"), str):  # VOTING_TRUSTED_HOSTS=a.example,b.example
        config["TRUSTED_HOSTS"] = _split_keys(config["TRUSTED_HOSTS"])

    if not config.get("SECRET_KEY"):
        if config.get("TESTING") or config.get("DEMO"):
            # Throwaway key: demo data and test databases do not outlive the process.
            config["SECRET_KEY"] = secrets.token_hex(32)
            return validate(config)
        raise ConfigError(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long "
            "random string, for example the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`. "
            "It signs voter tokens and sessions, so keep it secret and stable."
        )
    if len(str(config["SECRET_KEY"])) < 16 and not (config.get("TESTING") or config.get("DEMO")):
        raise ConfigError("SECRET_KEY is too short: use at least 32 random characters.")

    try:
        hops = int(config.get("PROXY_HOPS") or 0)
    except (TypeError, ValueError):
        raise ConfigError(
            "VOTING_PROXY_HOPS must be a whole number (0 when not behind a proxy)."
        ) from None
    if hops < 0:
        raise ConfigError("VOTING_PROXY_HOPS must be 0 or more.")
    config["PROXY_HOPS"] = hops

    for key in ("CATEGORIES", "THEMES"):
        value = config.get(key)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(";") if part.strip()]
            config[key] = value
        if not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"VOTING_{key} must be a non-empty list of names.")

    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    # An explicit poolclass (NullPool behind PgBouncer, say) takes no pool sizes.
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") and "poolclass" not in options:
        options.setdefault("pool_size", config["DATABASE_POOL_SIZE"])
        options.setdefault("max_overflow", config["DATABASE_MAX_OVERFLOW"])
        try:
            options["pool_size"] = int(options["pool_size"])
            options["max_overflow"] = int(options["max_overflow"])
        except (TypeError, ValueError):
            raise ConfigError(
                "The database pool size and overflow (VOTING_DATABASE_POOL_SIZE, "
                "VOTING_DATABASE_MAX_OVERFLOW) must be whole numbers."
            ) from None
        if options["pool_size"] < 1 or options["max_overflow"] < 0:
            raise ConfigError(
                "VOTING_DATABASE_POOL_SIZE must be at least 1 and "
                "VOTING_DATABASE_MAX_OVERFLOW at least 0."
            )
        config["SQLALCHEMY_ENGINE_OPTIONS"] = options

    if not str(config.get("BASE_URL", "")).startswith(("http://", "https://")):
        raise ConfigError("VOTING_BASE_URL must start with http:// or https://.")
    config["BASE_URL"] = str(config["BASE_URL"]).rstrip("/")

    token = config.get("METRICS_TOKEN")
    if token is not None and len(str(token)) < 16:
        raise ConfigError("VOTING_METRICS_TOKEN is too short: use at least 32 random characters.")

    size = config.get("RECEIPTS_PAGE_SIZE")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError("VOTING_RECEIPTS_PAGE_SIZE must be a whole number, 1 or more.")

    heartbeat = float(config["LIVE_HEARTBEAT_SECONDS"])
    if not 0 < heartbeat <= 15:
        raise ConfigError("VOTING_LIVE_HEARTBEAT_SECONDS must be more than 0 and at most 15.")
