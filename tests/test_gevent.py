"""The gevent worker (gunicorn.conf.py's default) needs a database driver that yields while it waits.

psycopg 3 detects gevent's monkey patching and waits cooperatively. If it ever stopped
doing so, one query waiting on PostgreSQL would freeze every stream and request of its
worker: this proves it does not, in a process patched as gunicorn's gevent worker patches.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import need_service

# Greenlet A asks for an advisory lock that B's connection holds, and so waits inside
# PostgreSQL. B releases it only after seeing A waiting, which it can only see if A's
# wait gave the process back. A driver that blocked the process would leave B unable to
# run: A would fail on its lock_timeout and B would never release.
SCRIPT = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import sys

    import gevent
    import psycopg

    url = sys.argv[1]
    holder = psycopg.connect(url, autocommit=True)
    waiter = psycopg.connect(url, autocommit=True)
    probe = psycopg.connect(url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(911011)")
    waiter.execute("SET lock_timeout = '15s'")
    order = []

    def wait():
        try:
            waiter.execute("SELECT pg_advisory_lock(911011)")
            order.append("waiter got the lock")
        except psycopg.Error as exc:
            order.append(f"waiter failed: {exc}")

    def release():
        pid = waiter.info.backend_pid
        while not probe.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,)
        ).fetchone()[0]:
            gevent.sleep(0.01)
        order.append("released while the other query waited")
        holder.execute("SELECT pg_advisory_unlock(911011)")

    gevent.joinall([gevent.spawn(wait), gevent.spawn(release)], timeout=30)
    print(order)
    """
)


@pytest.mark.only_on(
    "postgresql", "PostgreSQL only: the embedded default (SQLite) does not use the gevent worker"
)
def test_psycopg_waits_cooperatively_under_gevent(database_url: str, tmp_path: Path) -> None:
    try:
        import gevent  # noqa: F401
    except ImportError:
        need_service("gevent (a dependency of the package)")
    script = tmp_path / "cooperates.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(
        ["released while the other query waited", "waiter got the lock"]
    )
