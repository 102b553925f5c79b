"""A real gunicorn with the shipped gunicorn.conf.py, its access and error logs in files.

The attack-run tests (test_logs, test_hardening) talk to it over raw sockets, so that a
request line is sent exactly as written (no client normalises /v//x or %76), then stop it
and read both logs whole.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.live_support import free_port, wait_until
from tests.support import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"


@dataclass
class Served:
    """A running gunicorn: its address and where its logs go."""

    host: str
    port: int
    access_log: Path
    error_log: Path
    proc: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def logs(self) -> str:
        """Both logs as they stand (complete once the server has stopped)."""
        return self.access_log.read_text(errors="replace") + self.error_log.read_text(
            errors="replace"
        )

    def stop(self) -> None:
        """Stop gunicorn (SIGTERM), which flushes its logs; only the process we started."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like app process on the test database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VOTING_", "GUNICORN_", "REDIS_", "DATABASE_"))
    }
    env.update(
        SECRET_KEY=TEST_SECRET,
        DATABASE_URL=database_url,
        VOTING_HASH_KEY="test-hash-key",
        VOTING_BASE_URL="http://vote.test",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@contextmanager
def gunicorn(env: dict[str, str], folder: Path, *, loglevel: str = "debug") -> Iterator[Served]:
    """gunicorn -c gunicorn.conf.py (one gthread worker) on a free port, logs under folder."""
    port = free_port()
    access, errors = folder / "access.log", folder / "error.log"
    env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "8",
        "GUNICORN_ACCESSLOG": str(access),
        "GUNICORN_ERRORLOG": str(errors),
        "GUNICORN_LOGLEVEL": loglevel,
    }
    proc = subprocess.Popen(
        [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    served = Served("127.0.0.1", port, access, errors, proc)
    try:
        if not wait_until(lambda: _healthy(served), timeout=60, interval=0.1):
            text = errors.read_text() if errors.exists() else ""
            raise AssertionError("gunicorn did not start:\n" + text[-3000:])
        yield served
    finally:
        served.stop()


def _healthy(served: Served) -> bool:
    if served.proc.poll() is not None:
        raise AssertionError("gunicorn exited: " + served.error_log.read_text()[-3000:])
    try:
        with urllib.request.urlopen(served.base + "/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def raw_request(served: Served, head: str, body: bytes = b"", *, timeout: float = 30) -> bytes:
    """Send head (request line and headers, \\r\\n-separated, without the blank line) as is.

    The body goes from a thread while this one reads: a server may answer (413) before it
    has read all of a large body and then close, and the answer must be read before the
    connection is reset.
    """
    data = head.rstrip("\r\n").encode("latin-1") + b"\r\n"
    if "connection:" not in head.lower():
        data += b"Connection: close\r\n"
    data += b"\r\n" + body

    def send(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the server stopped reading: it has answered
            sock.sendall(data)

    chunks: list[bytes] = []
    with socket.create_connection((served.host, served.port), timeout=timeout) as sock:
        sender = threading.Thread(target=send, args=(sock,), daemon=True)
        sender.start()
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        sender.join(timeout)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 when the server closed without one)."""
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def headers_of(answer: bytes) -> dict[str, Any]:
    """The headers of a raw HTTP answer, names lower-cased."""
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}
