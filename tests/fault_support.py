"""Helpers for the fault tests: a throwaway PostgreSQL cluster, gunicorn run as in production,
a ballot client that survives a dead connection, a size-limited tmpfs, and the figures line."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

from tests.live_support import free_port, wait_until
from tests.support import TEST_SECRET, need_service

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _pg_bin(name: str) -> str:
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        need_service(f"PostgreSQL's {name} (apt-get install postgresql)")
    return found[-1]


class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb, pg_ctl) on a free port, in a temporary folder."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="voting-pg-"))
        self.data = self.folder / "data"
        # initdb refuses to run as root: run the server as Debian's postgres user then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.folder, "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "root", "-N")

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._as, *command], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"{command[0]} failed: {result.stdout}{result.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://root@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l",
            str(self.folder / "log"), "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop at once: open sessions are ended, as when the database host goes away."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> str:
        subprocess.run(
            ["psql", self.url(), "-q", "-c", f"CREATE DATABASE {name}"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return self.url(name)

    def remove(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def instance_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of one production-like instance (gunicorn -c gunicorn.conf.py)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR")
        and not k.startswith(("VOTING_", "GUNICORN_"))
    }
    return {
        **env,
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "VOTING_HASH_KEY": "test-hash-key",
        "VOTING_BASE_URL": "http://vote.test",
        "VOTING_RATELIMIT_ENABLED": "false",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "8",
        "GUNICORN_ACCESSLOG": "",
        "GUNICORN_LOGLEVEL": "warning",
        "GUNICORN_GRACEFUL_TIMEOUT": "1",
        **extra,
    }


class Gunicorn:
    """gunicorn -c gunicorn.conf.py (the production settings) on a port of its own."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by gunicorn() below)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the master; wait_ready() waits for its workers (start several at once)."""
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=self.log,
        )

    def wait_ready(self) -> None:
        workers = int(self.env.get("WEB_CONCURRENCY", "1"))
        ready = wait_until(
            lambda: _answers(self.base + "/healthz") and len(self.worker_pids()) == workers,
            timeout=60,
            interval=0.05,
        )
        if not ready:
            raise AssertionError("gunicorn did not start: " + self.output())

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, *, graceful: bool = True) -> None:
        """SIGTERM (graceful: open streams get GUNICORN_GRACEFUL_TIMEOUT), or SIGINT (quick)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if graceful else signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


@contextlib.contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[Gunicorn]:
    with gunicorns(env) as (server,):
        yield server


@contextlib.contextmanager
def gunicorns(*envs: dict[str, str]) -> Iterator[tuple[Gunicorn, ...]]:
    """Instances started side by side (each takes seconds to import the app)."""
    servers = tuple(Gunicorn(env) for env in envs)
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop(graceful=False)
            server.log.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class Answer:
    status: int  # 0: no answer (the connection died)
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 20,
) -> Answer:
    """One HTTP request; a connection that dies is an Answer with status 0, never an error."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})} if data else dict(headers or {})
    req = urllib.request.Request(url, data=data, headers=sent, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return Answer(int(response.status), dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as exc:
        return Answer(int(exc.code), dict(exc.headers), exc.read().decode())
    except (OSError, http.client.HTTPException):  # refused, reset, or cut mid-answer
        return Answer(0)


class Voters:
    """Threads that cast one ballot per token, retrying (as a phone would) until 201 or 409.

    Every answer is kept, so a test can compare what clients were told with what is stored.
    """

    def __init__(self, base: str, slug: str, tokens: list[str], choice: str, threads: int = 6):
        self.base, self.slug, self.choice = base, slug, choice
        self.todo = list(tokens)
        self.answers: list[tuple[float, Answer]] = []
        self.outcome: dict[str, list[int]] = {}  # token -> statuses in order
        self._lock = threading.Lock()
        self.deadline = time.monotonic() + 60
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Voters:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self) -> None:
        while time.monotonic() < self.deadline:
            with self._lock:
                if not self.todo:
                    return
                token = self.todo.pop()
            while time.monotonic() < self.deadline:
                answer = request(
                    f"{self.base}/api/polls/{self.slug}/ballots",
                    body={"token": token, "choices": [self.choice]},
                )
                with self._lock:
                    self.answers.append((time.monotonic(), answer))
                    self.outcome.setdefault(token, []).append(answer.status)
                if answer.status in (201, 409):
                    break

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=max(1.0, self.deadline - time.monotonic() + 5))
        assert not any(t.is_alive() for t in self._threads), "voters still running at the deadline"

    def count(self, status: int) -> int:
        with self._lock:
            return sum(1 for _, a in self.answers if a.status == status)

    def statuses(self) -> Counter[int]:
        with self._lock:
            return Counter(a.status for _, a in self.answers)

    def first_after(self, moment: float, status: int) -> float | None:
        with self._lock:
            times = [t for t, a in self.answers if t >= moment and a.status == status]
        return min(times) if times else None


def figures(name: str, **numbers: Any) -> None:
    """Print a fault test's figures on one line (CI's log keeps them)."""
    shown = ", ".join(f"{k.replace('_', ' ')}={v}" for k, v in numbers.items())
    print(f"\n[fault figures] {name}: {shown}")


@contextlib.contextmanager
def small_tmpfs(size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on a new temporary folder (needs root); unmounted after."""
    folder = Path(tempfile.mkdtemp(prefix="voting-full-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        folder.rmdir()
        need_service(f"a small tmpfs to fill (mount needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


def fill(folder: Path) -> Path:
    """Write a file until the file system says it is full; returns it (delete it to free)."""
    filler = folder / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as out:
        try:
            while out.write(chunk):
                pass
        except OSError:  # ENOSPC: full
            pass
    return filler
