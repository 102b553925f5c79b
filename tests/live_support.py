"""Helpers for the live-results tests: an SSE client, a throwaway Redis, a TCP proxy."""

from __future__ import annotations

import http.client
import json
import queue
import random
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis

from tests.support import need_service


def _ephemeral_start() -> int:
    """The first port the kernel hands out for outgoing connections (and for bind(0))."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, for a server this test starts.

    Taken below the ephemeral range: a port from bind(0) is one the kernel also gives to
    outgoing connections, and a server that takes seconds to start (the demo migrates and
    seeds first) once found its port already used by some client's connection. Random,
    so parallel test processes seldom pick the same one; checked free by binding it."""
    high = _ephemeral_start()
    low = max(1024, high - 12_000)
    for _ in range(200):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found in {low}-{high}")


@dataclass
class Event:
    event: str
    data: Any
    id: str | None
    retry: int | None
    at: float = field(default_factory=time.monotonic)


class SSEClient:
    """Reads a text/event-stream in a thread; events land in a queue with their arrival time."""

    def __init__(
        self, url: str, headers: dict[str, str] | None = None, timeout: float = 15
    ) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.conn.connect()
        self.sock = self.conn.sock  # the response takes it over; close() must reach it
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.seen: list[Event] = []
        self.ended = threading.Event()
        if self.status == 200:
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        else:
            self.body = self.response.read()
            self.response.close()
            self.ended.set()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            while True:
                raw = self.response.readline()
                if not raw:
                    break
                line = raw.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if "event" in fields or "data" in fields:
                        data = fields.get("data")
                        self.events.put(
                            Event(
                                event=fields.get("event", "message"),
                                data=json.loads(data) if data else None,
                                id=fields.get("id"),
                                retry=int(fields["retry"]) if "retry" in fields else None,
                            )
                        )
                    fields = {}
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
        except Exception:  # closed under our feet (close() from the test thread): the end
            pass
        finally:
            with suppress(Exception):
                self.response.close()
            self.ended.set()
            self.events.put(None)

    def next(self, timeout: float = 10, *, heartbeats: bool = False) -> Event:
        """The next event (heartbeats skipped unless asked for)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no event within {timeout} s")
            try:
                item = self.events.get(timeout=left)
            except queue.Empty:
                raise AssertionError(f"no event within {timeout} s") from None
            if item is None:
                self.events.put(None)
                raise AssertionError("the stream ended")
            self.seen.append(item)
            if heartbeats or item.event != "heartbeat":
                return item

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10) -> Event:
        """The first event (tally or other) that satisfies the predicate."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if predicate(event):
                return event

    def tallies(self) -> list[Event]:
        return [e for e in self.seen if e.event == "tally"]

    def close(self) -> None:
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.ended.wait(5)  # the reader sees the end of the stream and closes the response
        with suppress(Exception):
            self.response.close()
        self.sock.close()
        self.conn.close()

    def __enter__(self) -> SSEClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def post_ballot(base: str, slug: str, token: str, choices: list[str]) -> int:
    request = urllib.request.Request(
        f"{base}/api/polls/{slug}/ballots",
        data=json.dumps({"token": token, "choices": choices}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def get_text(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def wait_until(predicate: Callable[[], bool], timeout: float = 10, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class RedisProcess:
    """A throwaway redis-server on a free port that a test may kill and start again."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            need_service("redis-server binary")
        self.binary = str(binary)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                probe.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class TCPProxy:
    """Forwards 127.0.0.1:port to a target; drop() cuts every connection, like a network loss."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        """Stop listening and cut every open connection."""
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not, and
            # the port would stay taken.
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
