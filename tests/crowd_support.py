"""A crowd of live viewers in one thread: hundreds of event streams on one asyncio loop.

Each viewer behaves like EventSource: it reads `tally` events, remembers the last id,
and when its stream ends it reconnects after the server's `retry:` delay, sending
Last-Event-ID. Tests wait on the crowd's condition (woken by every event), never sleep.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TURNOUT = re.compile(rb'"turnout":(\d+)')
EVENT_ID = re.compile(rb"(?m)^id: (\d+)")
RETRY = re.compile(rb"(?m)^retry: (\d+)")
HAS_RESULTS = re.compile(rb'"results":')


@dataclass
class Watcher:
    path: str
    cookie: str = ""
    page: str = ""
    page_status: int | None = None
    phase: str = "waiting"
    statuses: list[int] = field(default_factory=list)
    turnout: int = -1
    last_id: str | None = None
    retry_ms: int = 3000
    connects: int = 0
    # (arrival, turnout) each time the turnout grew, and whether any event held counts.
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    saw_counts: bool = False
    open: bool = False

    def first_seen(self, turnout: int) -> float | None:
        return next((at for at, n in self.arrivals if n >= turnout), None)


class _Stream(asyncio.Protocol):
    def __init__(self, crowd: Crowd, watcher: Watcher, ended: asyncio.Future[None]) -> None:
        self.crowd, self.w, self.ended = crowd, watcher, ended
        self.buf, self.head = b"", True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        lines = [f"GET {self.w.path} HTTP/1.0", "Host: 127.0.0.1", "Accept: text/event-stream"]
        if self.w.cookie:
            lines.append(f"Cookie: {self.w.cookie}")
        if self.w.last_id:
            lines.append(f"Last-Event-ID: {self.w.last_id}")
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.head:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = int(self.buf[9:12])
            self.w.statuses.append(status)
            self.buf, self.head = self.buf[end + 4 :], False
            if status != 200:
                self.transport.close()
                self.crowd.changed()
                return
            self.w.open = True
        now = time.monotonic()
        while (end := self.buf.find(b"\n\n")) >= 0:
            block, self.buf = self.buf[:end], self.buf[end + 2 :]
            if b"event: tally" not in block:
                continue
            if found := RETRY.search(block):
                self.w.retry_ms = int(found.group(1))
            if found := EVENT_ID.search(block):
                self.w.last_id = found.group(1).decode()
            self.w.saw_counts = self.w.saw_counts or bool(HAS_RESULTS.search(block))
            if (found := TURNOUT.search(block)) and int(found.group(1)) > self.w.turnout:
                self.w.turnout = int(found.group(1))
                self.w.arrivals.append((now, self.w.turnout))
        self.crowd.changed()

    def connection_lost(self, exc: Exception | None) -> None:
        self.w.open = False
        if not self.ended.done():
            self.ended.set_result(None)
        self.crowd.changed()


class Crowd:
    """Viewers of one nginx (or gunicorn) port, each on its own connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.watchers: list[Watcher] = []
        # The loop keeps only weak references to tasks: these keep every viewer's alive.
        self._futures: list[object] = []
        self.cond = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def changed(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def add(
        self, path: str, count: int, *, cookie: str = "", page: str = "", per_second: float = 0
    ) -> None:
        """Open `count` viewers of `path`, all at once or `per_second` at a time.

        With `page`, each viewer first GETs that page, as a browser opening it would.
        """
        new = [Watcher(path, cookie, page) for _ in range(count)]
        self.watchers.extend(new)
        for i, w in enumerate(new):
            delay = i / per_second if per_second else 0.0
            self._futures.append(asyncio.run_coroutine_threadsafe(self._watch(w, delay), self.loop))

    async def _watch(self, w: Watcher, delay: float) -> None:
        await asyncio.sleep(delay)
        if w.page:
            w.page_status = await self._get(w.page, w.cookie, w)
        while not self._stop.is_set():
            ended: asyncio.Future[None] = self.loop.create_future()
            w.connects += 1
            try:
                transport, _ = await self.loop.create_connection(
                    lambda ended=ended: _Stream(self, w, ended), "127.0.0.1", self.port
                )
            except OSError:
                w.statuses.append(0)
                self.changed()
                await asyncio.sleep(w.retry_ms / 1000)
                continue
            stopping = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait([ended, stopping], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if self._stop.is_set():
                    transport.close()
            if self._stop.is_set():
                return
            await asyncio.sleep(w.retry_ms / 1000)  # as EventSource: wait, then reconnect

    async def _get(self, path: str, cookie: str, w: Watcher) -> int:
        try:
            w.phase = "connecting"
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            extra = f"Cookie: {cookie}\r\n" if cookie else ""
            writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
            w.phase = "sent"
            head = await reader.readline()
            w.phase = "head"
            await reader.read()
            w.phase = "read"
            writer.close()
            return int(head[9:12])
        except (OSError, ValueError):
            return 0

    def wait_until(self, predicate: Callable[[list[Watcher]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.watchers):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
        return True

    def everyone_sees(self, turnout: int, timeout: float = 10) -> bool:
        return self.wait_until(lambda ws: all(w.turnout >= turnout for w in ws), timeout)

    def close(self) -> None:
        """End every stream and the loop."""

        async def finish() -> None:
            self._stop.set()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(finish(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def __enter__(self) -> Crowd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def established(port: int) -> int:
    """Open TCP connections whose local end is 127.0.0.1:port (a server's clients)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state = parts[1], parts[3]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count
