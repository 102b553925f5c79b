"""Gunicorn settings for production: run `gunicorn -c gunicorn.conf.py` from the repository.

The app also needs DATABASE_URL, REDIS_URL and SECRET_KEY (README, "Running in production"). These
environment variables tune the server:

  GUNICORN_BIND          address(es) to listen on, comma-separated (default 127.0.0.1:8000)
  WEB_CONCURRENCY        worker processes (default: CPU cores + 1, at least 2)
  GUNICORN_THREADS       threads per worker (default 32: each open event stream holds one)
  GUNICORN_WORKER_CLASS  gthread (default) or sync
  GUNICORN_ACCESSLOG     access log file, "-" for stdout (default), "" to switch it off
  GUNICORN_ERRORLOG      error log file, "-" for stderr (default)
  GUNICORN_LOGLEVEL      error log level (default info)
  GUNICORN_KEEPALIVE     seconds an idle keep-alive connection stays open (default 5)

Why gthread: bench/ballots.py measured it faster than sync for the ballot POST on a
2-core machine (docs/benchmarks.md), it keeps client connections alive, and a
long-lived Server-Sent Events stream holds one thread instead of a whole process.
Each process keeps VOTING_DATABASE_POOL_SIZE (default 8) PostgreSQL connections, and
its threads queue for them, so workers x pool size, across all instances, must stay
within PostgreSQL's max_connections.

Voter tokens never reach the logs (README, "GET never spends a token"): voting.logs.RedactingLogger
replaces the path segment after /v/, any token= query value and the cookie header with
[redacted], in the access log and in error-log messages alike.
"""

from __future__ import annotations

import os

wsgi_app = "voting:create_app()"

bind = [
    address.strip()
    for address in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
    if address.strip()
]
# One more process than cores: a gthread worker spends part of each ballot waiting on
# PostgreSQL and Redis with its GIL free, so 2 workers left a 2-core machine a quarter
# idle; 3 gave 425-432 ballots/s against 337-372 (docs/benchmarks.md).
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, (os.cpu_count() or 1) + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gthread"
# gunicorn turns a sync worker with threads > 1 into gthread: sync means one thread.
# Each open event stream (overlay, results page, console) holds one thread; streams hold
# no database connection, so threads can outnumber the pool.
threads = int(os.environ.get("GUNICORN_THREADS") or 32) if worker_class == "gthread" else 1
# Streams are cut on shutdown and browsers reconnect: no need to wait long for them.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 10)
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE") or 5)

# Heartbeat files on tmpfs: a slow or full disk must not get healthy workers killed.
_SHM = "/dev/shm"  # noqa: S108 (tmpfs for heartbeat files, as gunicorn's docs advise)
if os.path.isdir(_SHM):
    worker_tmp_dir = _SHM

logger_class = "voting.logs.RedactingLogger"
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = os.environ.get("GUNICORN_ERRORLOG") or "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL") or "info"
# Remote address, time, request line (token redacted), status, bytes, duration in microseconds.
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(D)sus'
