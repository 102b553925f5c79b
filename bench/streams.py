"""Live-viewer benchmark: thousands of event streams through nginx while ballots arrive.

Run from the repository root, with the project installed:

    python bench/streams.py

    # the runs in docs/benchmarks.md (three runs, medians; see --help for every option):
    python bench/streams.py --viewers 5000 --rate 100 --duration 60 --ramp 60 --runs 3
    python bench/streams.py --viewers 5000 --rate 100 --duration 60 --ramp 60 --runs 3 \
        --workers 2 --stream-instance

What one run does:

1. drops and recreates the PostgreSQL database --database, migrates, imports the demo
   projects, creates and opens a plurality poll with live results, mints rate x duration
   voter tokens (plus a margin), creates an organizer and takes the overlay key;
2. starts --instances gunicorn instances with the shipped gunicorn.conf.py (PostgreSQL +
   Redis, VOTING_PROXY_HOPS=1) and Debian's nginx from deploy/nginx.conf in front of them;
   with --stream-instance, one more (--stream-workers workers, at nice --stream-nice) that
   nginx sends every event stream to, as README's "Sizing" describes;
3. opens --viewers streams through nginx over --ramp seconds, from two load-generator
   processes: results-page viewers (each GETs /p/<slug>/results, then opens the page's
   stream), overlays (?key=) and organizer consoles (the session cookie of one login);
   a stream that ends reconnects as EventSource does, with Last-Event-ID;
4. casts --rate ballots per second for --duration seconds through nginx (open loop: each
   is sent on time, on a free keep-alive connection or a new one) while GET /healthz is
   asked every 100 ms, and samples the RSS of gunicorn (master and workers) and nginx;
5. waits --settle seconds, then reports: viewers connected, updates delivered, the delay
   from each ballot to each viewer seeing it (p50/p99; measured from when the ballot was
   sent, so an upper bound on the delay from its commit), ballot and /healthz latency,
   errors, peak RSS, ballots stored against 201 answers, and the CPU each part used.

With --runs N it does this N times and prints the medians. Exit status 0 when every run
was consistent (every connected viewer saw every ballot, stored ballots = 201 answers);
with --enforce-targets, also when issue 11's targets were met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stack_support import Process, gunicorn, login_cookie, nginx  # noqa: E402

POLL = "closing"
ORGANIZER = ("bench-organizer", "bench-organizer-password-1")
TURNOUT = re.compile(rb'"turnout":(\d+)')
EVENT_ID = re.compile(rb"(?m)^id: (\d+)")
RETRY = re.compile(rb"(?m)^retry: (\d+)")

TARGETS = {
    "delivery_p99_ms": 1000.0,
    "ballot_p99_ms": 100.0,
    "healthz_p99_ms": 50.0,
    "rss_mib": 1024.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--viewers", type=int, default=5000)
    p.add_argument(
        "--overlay-share", type=float, default=0.08, help="share of viewers that are overlays"
    )
    p.add_argument(
        "--console-share", type=float, default=0.02, help="share that are organizer consoles"
    )
    p.add_argument("--rate", type=float, default=100.0, help="ballots per second")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of ballots")
    p.add_argument("--ramp", type=float, default=40.0, help="seconds over which viewers open")
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--instances", type=int, default=1)
    p.add_argument(
        "--stream-instance",
        action="store_true",
        help="one more gunicorn that holds every event stream (nginx's @STREAM_UPSTREAMS@)",
    )
    p.add_argument("--stream-workers", type=int, default=2, help="its WEB_CONCURRENCY")
    p.add_argument("--stream-nice", type=int, default=10, help="its CPU priority (nice -n)")
    p.add_argument("--worker-class", default=None, help="GUNICORN_WORKER_CLASS (default: conf's)")
    p.add_argument("--workers", type=int, default=None, help="WEB_CONCURRENCY (default: conf's)")
    p.add_argument("--loaders", type=int, default=2, help="viewer load-generator processes")
    p.add_argument("--no-page", action="store_true", help="viewers skip the results page GET")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/test"),
    )
    p.add_argument("--database", default="voting_bench_streams")
    p.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    p.add_argument("--workdir", type=Path, default=None, help="logs (default: a new /tmp dir)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--enforce-targets", action="store_true")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(f"[streams] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- setup -----------------------------------------------------------------------------------


def recreate_database(admin_url: str, name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def prepare(database_url: str, redis_url: str, secret: str, tokens: int) -> dict[str, Any]:
    """A fresh poll with live results, its tokens, an organizer and the overlay key."""
    from voting import create_app
    from voting.database import upgrade_schema
    from voting.services import issuing, organizers, overlay, polls, projects

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret,
            "ALLOW_LOCAL_BASE_URL": True,
        }
    )
    data = (ROOT / "voting" / "demo_data" / "projects.json").read_bytes()
    with app.app_context():
        upgrade_schema()
        projects.import_projects(data, "projects.json", actor="bench")
        poll = polls.create_poll(
            polls.PollSpec(slug=POLL, title="Closing session", method="plurality"),
            actor="bench",
        )
        choices = [c.project.slug for c in poll.choices if not c.withdrawn]
        polls.open_poll(POLL, actor="bench")
        minted: list[str] = []
        while len(minted) < tokens:
            n = min(issuing.MAX_MINT, tokens - len(minted))
            minted.extend(issuing.mint_tokens(POLL, n, actor="bench").tokens)
        organizers.create_organizer(*ORGANIZER, actor="bench")
        key = overlay.overlay_key(polls.get_poll(POLL))
    return {"tokens": minted, "choices": choices, "overlay_key": key}


def count_ballots(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ballots b JOIN polls p ON p.id = b.poll_id WHERE p.slug = %s",
            (POLL,),
        ).fetchone()
    return int(row[0]) if row else 0


def organizer_cookie(port: int) -> str:
    return login_cookie(port, *ORGANIZER)


# -- viewers (in load-generator processes) ---------------------------------------------------


@dataclass
class ViewerState:
    kind: str
    path: str
    cookie: str
    connected: bool = False
    failures: int = 0
    reconnects: int = 0
    last_id: str | None = None
    turnout: int = -1
    # (arrival, turnout) whenever the turnout grew; versions seen during the measured phase.
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    versions: set[int] = field(default_factory=set)
    retry_ms: int = 3000


class Viewer(asyncio.Protocol):
    """One EventSource: HTTP/1.0 (no chunked framing to undo), scanning events as they come."""

    def __init__(self, state: ViewerState, host: str, done: asyncio.Future[None]):
        self.state = state
        self.host = host
        self.done = done
        self.buf = b""
        self.head = True
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        s = self.state
        headers = [f"GET {s.path} HTTP/1.0", f"Host: {self.host}", "Accept: text/event-stream"]
        if s.cookie:
            headers.append(f"Cookie: {s.cookie}")
        if s.last_id:
            headers.append(f"Last-Event-ID: {s.last_id}")
        transport.write(("\r\n".join(headers) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        s = self.state
        if self.head:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.buf[9:12]
            self.buf = self.buf[end + 4 :]
            self.head = False
            if status != b"200":
                s.failures += 1
                assert self.transport is not None
                self.transport.close()
                return
        now = time.monotonic()
        while True:
            end = self.buf.find(b"\n\n")
            if end < 0:
                return
            block, self.buf = self.buf[:end], self.buf[end + 2 :]
            if b"event: tally" not in block:
                continue
            s.connected = True
            found = TURNOUT.search(block)
            ident = EVENT_ID.search(block)
            retry = RETRY.search(block)
            if retry:
                s.retry_ms = int(retry.group(1))
            if ident:
                s.last_id = ident.group(1).decode()
                if MEASURING.is_set():
                    s.versions.add(int(s.last_id))
            if found:
                turnout = int(found.group(1))
                if turnout > s.turnout:
                    s.turnout = turnout
                    s.arrivals.append((now, turnout))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Flag:
    """Set when the measured phase starts: versions seen before it are not counted."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value


MEASURING = _Flag()


async def _watch(state: ViewerState, port: int, start_at: float, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    first = True
    while not stop.is_set():
        if state.kind == "page" and first:
            await _get_page(port, f"/p/{POLL}/results", state)
        first = False
        done: asyncio.Future[None] = loop.create_future()
        try:
            transport, _ = await loop.create_connection(
                lambda done=done: Viewer(state, f"127.0.0.1:{port}", done),
                "127.0.0.1",
                port,
            )
        except OSError:
            state.failures += 1
            await asyncio.sleep(1.0)
            continue
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([done, stopped], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            transport.close()
            return
        stopped.cancel()
        # The stream ended (LIVE_STREAM_SECONDS, an instance gone): reconnect as EventSource.
        state.reconnects += 1
        await asyncio.sleep(state.retry_ms / 1000)


async def _get_page(port: int, path: str, state: ViewerState) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await reader.readline()
        await reader.read()
        writer.close()
        if b" 200 " not in head:
            state.failures += 1
    except OSError:
        state.failures += 1


def loader_main(conn: Any, port: int, specs: list[tuple[str, str, str]], ramp: float) -> None:
    """A load-generator process: opens its viewers, reports, measures, then computes delays."""
    asyncio.run(_loader(conn, port, specs, ramp))


async def _loader(conn: Any, port: int, specs: list[tuple[str, str, str]], ramp: float) -> None:
    loop = asyncio.get_running_loop()
    states = [ViewerState(kind, path, cookie) for kind, path, cookie in specs]
    stop = asyncio.Event()
    begin = time.monotonic()
    step = ramp / max(1, len(states))
    tasks = [
        asyncio.ensure_future(_watch(s, port, begin + i * step, stop)) for i, s in enumerate(states)
    ]
    deadline = begin + ramp + 30
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if time.monotonic() > begin + ramp and all(s.connected for s in states):
            break
    conn.send({"connected": sum(s.connected for s in states), "total": len(states)})
    # Wait for the parent's word: measuring (versions count from here), then finish.
    while not conn.poll():
        await asyncio.sleep(0.05)
    assert conn.recv() == "measure"
    MEASURING.set()
    while not conn.poll():
        await asyncio.sleep(0.05)
    sends: list[float] = conn.recv()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()
    conn.send(_summarise(states, sends))


def _summarise(states: list[ViewerState], sends: list[float]) -> dict[str, Any]:
    """Delays (ms histogram) from each ballot's send to each viewer's first event showing it."""
    hist: dict[int, int] = {}
    for s in states:
        seen = 0
        for at, turnout in s.arrivals:
            for k in range(seen, min(turnout, len(sends))):
                ms = int((at - sends[k]) * 1000)
                hist[ms] = hist.get(ms, 0) + 1
            seen = max(seen, turnout)
    return {
        "hist": hist,
        "turnouts": [s.turnout for s in states],
        "connected": [s.connected for s in states],
        "kinds": [s.kind for s in states],
        "versions": [sorted(s.versions) for s in states],
        "failures": sum(s.failures for s in states),
        "reconnects": sum(s.reconnects for s in states),
    }


# -- ballots and /healthz (in this process) --------------------------------------------------


async def _http(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    """Send one request; (status, whether the connection may be reused)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    # nginx ends a keep-alive connection after keepalive_requests (1,000) answers.
    reusable = re.search(rb"(?i)\r\nconnection: *close", head) is None
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if length:
        await reader.readexactly(int(length.group(1)))
    elif re.search(rb"(?i)\r\ntransfer-encoding: *chunked", head):
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, reusable


def _post(token: str, choice: str) -> bytes:
    body = json.dumps({"token": token, "choices": [choice]}).encode()
    return (
        f"POST /api/polls/{POLL}/ballots HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def cast_ballots(
    port: int, tokens: list[str], choices: list[str], rate: float, duration: float
) -> list[tuple[float, float, int]]:
    """Open loop: ballot i is sent at start + i / rate on a free connection (or a new one)."""
    # (reader, writer, when it was last answered): nginx closes a keep-alive connection left
    # idle for keepalive_timeout (30 s), so one idle for 20 s is not reused.
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    results: list[tuple[float, float, int]] = []
    count = int(rate * duration)
    start = time.monotonic() + 0.1

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        sent = time.monotonic()
        pair = None
        while idle and pair is None:
            reader, writer, used = idle.pop()
            if time.monotonic() - used < 20:
                pair = (reader, writer)
            else:
                writer.close()
        try:
            if pair is None:
                pair = await asyncio.open_connection("127.0.0.1", port)
            status, reusable = await _http(*pair, _post(tokens[i], choices[i % len(choices)]))
            if reusable:
                idle.append((*pair, time.monotonic()))
            else:
                pair[1].close()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
        results.append((sent, time.monotonic(), status))

    await asyncio.gather(*(one(i) for i in range(count)))
    for _, writer, _ in idle:
        writer.close()
    return results


async def probe_healthz(port: int, until: float) -> list[tuple[float, int]]:
    found: list[tuple[float, int]] = []
    pair = None
    while time.monotonic() < until:
        sent = time.monotonic()
        try:
            if pair is None:
                pair = await asyncio.open_connection("127.0.0.1", port)
            status, reusable = await _http(
                *pair, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            )
            if not reusable:
                pair[1].close()
                pair = None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, pair = 0, None
        found.append((time.monotonic() - sent, status))
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - sent)))
    if pair is not None:
        pair[1].close()
    return found


async def sample_rss(servers: list[Process], until: float) -> dict[str, int]:
    peak: dict[str, int] = {}
    while time.monotonic() < until:
        for kind in ("gunicorn", "nginx"):
            now = sum(s.rss_bytes() for s in servers if (s.name == "nginx") == (kind == "nginx"))
            peak[kind] = max(peak.get(kind, 0), now)
        await asyncio.sleep(1.0)
    return peak


# -- CPU accounting --------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far: the machine's busy time, each named session, PostgreSQL, Redis."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    found = {"machine": (sum(fields[:8]) - fields[3] - fields[4]) / TICK}
    sessions = {sid: name for name, sids in groups.items() for sid in sids}
    for name in [*groups, "postgres", "redis"]:
        found[name] = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        sid, ticks = int(rest[3]), (int(rest[11]) + int(rest[12])) / TICK
        if sid in sessions:
            found[sessions[sid]] += ticks
        elif int(entry.name) in sessions:
            found[sessions[int(entry.name)]] += ticks
        elif comm == "postgres":
            found["postgres"] += ticks
        elif comm.startswith("redis-server"):
            found["redis"] += ticks
    return found


# -- one run ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def hist_percentile(hist: dict[int, int], q: float) -> float:
    total = sum(hist.values())
    if not total:
        return float("nan")
    target, seen = q * total, 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= target:
            return float(ms)
    return float(max(hist))


def run_once(args: argparse.Namespace, number: int, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    tokens_needed = int(args.rate * args.duration) + 50
    log(f"run {number}: preparing the database ({tokens_needed} tokens)")
    database_url = recreate_database(args.pg_url, args.database)
    setup = prepare(database_url, args.redis_url, secret, tokens_needed)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": secret,
        "VOTING_PROXY_HOPS": "1",
        # Every ballot here comes from 127.0.0.1; a hall's come from many addresses.
        "VOTING_RATELIMIT_BALLOT_PER_IP": "1000000/minute",
        "GUNICORN_ACCESSLOG": str(workdir / "access.log"),
    }
    if args.worker_class:
        env["GUNICORN_WORKER_CLASS"] = args.worker_class
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    servers: list[Process] = []
    procs: list[Any] = []
    try:
        ports = [free_port() for _ in range(args.instances)]
        for i, p in enumerate(ports):
            servers.append(gunicorn(env, p, workdir, f"gunicorn-{i + 1}"))
        stream_ports = None
        if args.stream_instance:
            stream_ports = [free_port()]
            streams_env = {**env, "WEB_CONCURRENCY": str(args.stream_workers)}
            servers.append(
                gunicorn(
                    streams_env, stream_ports[0], workdir, "gunicorn-streams", nice=args.stream_nice
                )
            )
        port = free_port()
        servers.append(nginx(port, ports, workdir, stream_ports))
        cookie = organizer_cookie(port)
        n_console = round(args.viewers * args.console_share)
        n_overlay = round(args.viewers * args.overlay_share)
        stream = f"/api/polls/{POLL}/events"
        kinds = ["console"] * n_console + ["overlay"] * n_overlay
        kinds += ["page"] * (args.viewers - len(kinds))
        specs = []
        for i, kind in enumerate(kinds):
            if kind == "console":
                specs.append((kind, stream, cookie))
            elif kind == "overlay":
                specs.append((kind, f"{stream}?key={setup['overlay_key']}", ""))
            else:
                specs.append(("page" if not args.no_page else "stream", stream, ""))
            del i
        # Spread each kind over the loaders, so each opens some of each kind throughout.
        shares: list[list[tuple[str, str, str]]] = [[] for _ in range(args.loaders)]
        for i, spec in enumerate(specs):
            shares[i % args.loaders].append(spec)
        ctx = mp.get_context("spawn")
        pipes = []
        log(f"run {number}: opening {args.viewers} viewers over {args.ramp:.0f} s")
        for share in shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=loader_main, args=(child, port, share, args.ramp))
            proc.start()
            procs.append(proc)
            pipes.append(parent)
        opened = [p.recv() for p in pipes]
        connected = sum(o["connected"] for o in opened)
        log(f"run {number}: {connected} of {args.viewers} viewers have their first event")
        groups = {
            "gunicorn": [s.pid for s in servers if s.name != "nginx" and s.pid],
            "nginx": [s.pid for s in servers if s.name == "nginx" and s.pid],
            "loaders": [p.pid for p in procs if p.pid],
        }
        for p in pipes:
            p.send("measure")
        cpu_before = cpu_snapshot(groups)
        bench_cpu_before = time.process_time()
        wall_before = time.monotonic()
        log(f"run {number}: {args.rate:.0f} ballots/s for {args.duration:.0f} s")

        async def phase() -> tuple[Any, Any, Any]:
            until = time.monotonic() + args.duration + 1
            return await asyncio.gather(
                cast_ballots(port, setup["tokens"], setup["choices"], args.rate, args.duration),
                probe_healthz(port, until),
                sample_rss(servers, until),
            )

        ballots, healthz, rss = asyncio.run(phase())
        wall = time.monotonic() - wall_before
        cpu_after = cpu_snapshot(groups)
        bench_cpu = time.process_time() - bench_cpu_before
        time.sleep(args.settle)
        sends = sorted(sent for sent, _, status in ballots if status == 201)
        for p in pipes:
            p.send(sends)
        summaries = [p.recv() for p in pipes]
        for proc in procs:
            proc.join(timeout=60)
        stored = count_ballots(database_url)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for server in reversed(servers):
            server.stop()
    return report(
        args, ballots, healthz, rss, summaries, stored, connected, cpu_before, cpu_after,
        wall, bench_cpu,
    )  # fmt: skip


def report(
    args: argparse.Namespace,
    ballots: list[tuple[float, float, int]],
    healthz: list[tuple[float, int]],
    rss: dict[str, int],
    summaries: list[dict[str, Any]],
    stored: int,
    connected: int,
    cpu_before: dict[str, float],
    cpu_after: dict[str, float],
    wall: float,
    bench_cpu: float,
) -> dict[str, Any]:
    hist: dict[int, int] = {}
    for s in summaries:
        for ms, n in s["hist"].items():
            hist[ms] = hist.get(ms, 0) + n
    turnouts = [t for s in summaries for t in s["turnouts"]]
    was_connected = [c for s in summaries for c in s["connected"]]
    versions = [set(v) for s in summaries for v in s["versions"]]
    published = set().union(*versions) if versions else set()
    created = sum(1 for _, _, status in ballots if status == 201)
    statuses: dict[str, int] = {}
    for _, _, status in ballots:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    latencies = [(done - sent) * 1000 for sent, done, _ in ballots]
    health_ms = [d * 1000 for d, _ in healthz]
    health_errors = sum(1 for _, status in healthz if status != 200)
    every_ballot = sum(1 for t, c in zip(turnouts, was_connected, strict=True) if c and t == stored)
    every_update = sum(1 for v in versions if v >= published)
    cpu = {k: round(cpu_after.get(k, 0) - cpu_before.get(k, 0), 1) for k in cpu_after}
    cpu["bench (ballots, probes)"] = round(bench_cpu, 1)
    mine = sum(cpu[k] for k in ("gunicorn", "nginx", "loaders", "postgres", "redis"))
    cpu["everything else on the machine"] = round(max(0.0, cpu["machine"] - mine - bench_cpu), 1)
    figures = {
        "viewers": args.viewers,
        "viewers_connected": connected,
        "viewers_with_every_ballot": every_ballot,
        "updates_published": len(published),
        "viewers_with_every_update": every_update,
        "updates_delivered": sum(len(v) for v in versions),
        "delivery_p50_ms": hist_percentile(hist, 0.50),
        "delivery_p99_ms": hist_percentile(hist, 0.99),
        "delivery_max_ms": float(max(hist)) if hist else float("nan"),
        "ballots_sent": len(ballots),
        "ballot_statuses": statuses,
        "ballot_p50_ms": round(percentile(latencies, 0.50), 1),
        "ballot_p99_ms": round(percentile(latencies, 0.99), 1),
        "healthz_probes": len(healthz),
        "healthz_p99_ms": round(percentile(health_ms, 0.99), 1),
        "errors": (len(ballots) - created) + health_errors + sum(s["failures"] for s in summaries),
        "viewer_failures": sum(s["failures"] for s in summaries),
        "reconnects": sum(s["reconnects"] for s in summaries),
        "rss_gunicorn_mib": round(rss.get("gunicorn", 0) / 2**20, 1),
        "rss_nginx_mib": round(rss.get("nginx", 0) / 2**20, 1),
        "rss_mib": round((rss.get("gunicorn", 0) + rss.get("nginx", 0)) / 2**20, 1),
        "ballots_stored": stored,
        "ballots_201": created,
        "cpu_seconds": cpu,
        "wall_seconds": round(wall, 1),
    }
    for key, value in figures.items():
        log(f"  {key}: {value}")
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-streams-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"logs in {workdir}; {os.cpu_count()} cores; load average {os.getloadavg()}")
    runs = []
    for n in range(1, args.runs + 1):
        runs.append(run_once(args, n, workdir / f"run-{n}" if args.runs > 1 else workdir))
    numeric = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    medians = {k: statistics.median(r[k] for r in runs) for k in numeric}
    if args.runs > 1:
        log(f"medians of {args.runs} runs:")
        for key in numeric:
            log(f"  {key}: {medians[key]} (runs: {', '.join(str(r[key]) for r in runs)})")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "medians": medians}, indent=2))
    consistent = all(
        r["ballots_stored"] == r["ballots_201"] and r["viewers_with_every_ballot"] == r["viewers"]
        for r in runs
    )
    met = (
        medians["delivery_p99_ms"] <= TARGETS["delivery_p99_ms"]
        and medians["ballot_p99_ms"] <= TARGETS["ballot_p99_ms"]
        and medians["healthz_p99_ms"] <= TARGETS["healthz_p99_ms"]
        and medians["rss_mib"] <= TARGETS["rss_mib"]
        and medians["errors"] == 0
    )
    log(f"consistent: {consistent}; targets met (medians): {met}")
    if shutil.which("nginx") is None:
        log("note: nginx came from a fixed path")
    return 0 if consistent and (met or not args.enforce_targets) else 1


if __name__ == "__main__":
    sys.exit(main())
