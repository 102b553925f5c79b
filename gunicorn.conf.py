"""Gunicorn settings for production: run `gunicorn -c gunicorn.conf.py` from the repository.

The app also needs DATABASE_URL, REDIS_URL and SECRET_KEY (README, "Running in production"). These
environment variables tune the server:

  GUNICORN_BIND          address(es) to listen on, comma-separated (default 127.0.0.1:8000)
  WEB_CONCURRENCY        worker processes (default: CPU cores + 1, at least 2)
  GUNICORN_WORKER_CLASS  gevent (default), gthread or sync
  GUNICORN_WORKER_CONNECTIONS  connections one gevent worker holds at once (default 3000)
  GUNICORN_THREADS       threads per gthread worker (default 32)
  GUNICORN_ACCESSLOG     access log file, "-" for stdout (default), "" to switch it off
  GUNICORN_ERRORLOG      error log file, "-" for stderr (default)
  GUNICORN_LOGLEVEL      error log level (default info)
  GUNICORN_KEEPALIVE     seconds an idle keep-alive connection stays open (default 5)
  PROMETHEUS_MULTIPROC_DIR  where workers keep their metrics (default: a new temporary folder)
  GUNICORN_CONTROL_SOCKET  a path for gunicorn's control socket (gunicornc); off by default

Why gevent: an open event stream (a phone on the results page, an overlay, a console)
is a socket and a greenlet waiting on its poll's next snapshot, not a thread. Under
gthread each stream held one of 3 x 32 threads, and about 96 viewers stopped the
instance; under gevent one 2-core instance holds thousands of viewers while ballots
and /healthz answer as before (bench/streams.py, docs/benchmarks.md). The worker
patches the standard library before the app loads, so the live hub's threads, the
Redis client and psycopg 3 (which detects the patch and waits cooperatively; see
tests/test_gevent.py) all yield instead of blocking the process.

Sizing for N live viewers (figures in docs/benchmarks.md, "Live viewers"):
- connections: each viewer holds one worker connection, so workers x
  GUNICORN_WORKER_CONNECTIONS must stay above N plus the requests in flight (3 x 3000 =
  9000 by default), and `ulimit -n` above that;
- memory: about 50 KB per viewer over the ~390 MiB the master and three workers take
  (5,000 viewers measured at 618 MiB);
- CPU: N x updates delivered per second x about 150-200 us per delivered update. On
  two cores 5,000 viewers and 100 ballots/s use all of it: updates arrive, coalesced,
  seconds late. For updates within a second at that size add instances behind nginx
  (deploy/nginx.conf).
Each process keeps VOTING_DATABASE_POOL_SIZE (default 8) PostgreSQL connections, and
its requests queue for them, so workers x pool size, across all instances, must stay
within PostgreSQL's max_connections.

Voter tokens never reach the logs (README, "GET never spends a token"): voting.logs.RedactingLogger
replaces the path segment after /v/, any token= query value and the cookie header with
[redacted], in the access log and in error-log messages alike.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

wsgi_app = "voting:create_app()"

bind = [
    address.strip()
    for address in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
    if address.strip()
]
# One more process than cores: a worker spends part of each ballot waiting on PostgreSQL
# and Redis, so 2 workers left a 2-core machine a quarter idle; 3 gave 425-432 ballots/s
# against 337-372 (docs/benchmarks.md).
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, (os.cpu_count() or 1) + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gevent"
# A worker that holds this many connections stops accepting, and the others take the next
# ones: a crowd opening streams at once cannot pile onto one process without bound.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS") or 3000)
# gunicorn turns a sync worker with threads > 1 into gthread: sync means one thread.
threads = int(os.environ.get("GUNICORN_THREADS") or 32) if worker_class == "gthread" else 1
# Streams are cut on shutdown and browsers reconnect: no need to wait long for them.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 10)
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE") or 5)
# gunicorn's control socket is off unless asked for: its default is one path per user
# ($HOME/.gunicorn/gunicorn.ctl), which a second instance on the host takes over and then
# deletes when it stops, leaving the first one unreachable.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

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

# Prometheus metrics from every worker (prometheus_client's multiprocess mode, voting.metrics):
# each worker writes its values under PROMETHEUS_MULTIPROC_DIR and GET /metrics adds them up.
# prometheus_client reads the variable when it is first imported, and the master imports it
# through logger_class (voting.logs imports the voting package), so it is set here, while
# gunicorn loads this file (as module "__config__"; a test reading the file sets nothing).
# It is emptied at each start (an old run's files would count twice), and a worker that exits
# is marked dead so its open-stream gauge stops counting.
_made_metrics_dir: list[str] = []
if __name__ == "__config__" and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_metrics_dir.append(tempfile.mkdtemp(prefix="voting-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_metrics_dir[0]


def on_starting(server: Any) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and not _made_metrics_dir:
        for leftover in Path(folder).glob("*.db"):
            leftover.unlink()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    for folder in _made_metrics_dir:
        shutil.rmtree(folder, ignore_errors=True)
