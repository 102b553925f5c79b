"""Ballot-casting benchmark: gunicorn (gunicorn.conf.py) + PostgreSQL + Redis, driven by wrk.

Run from the repository root, with the project installed (or PYTHONPATH=.):

    python bench/ballots.py

    # the run in docs/benchmarks.md (a shared machine: raise our priority):
    python bench/ballots.py --priority 10

    # the options, with their defaults (workers, class and threads default to what
    # gunicorn.conf.py picks: WEB_CONCURRENCY or CPU cores + 1, gthread, 32 threads):
    python bench/ballots.py --pg-url postgresql://root@127.0.0.1:5432/test \\
        --database voting_bench --redis-url redis://127.0.0.1:6379/0 \\
        --tokens 60000 --duration 20 --connections 32 --wrk-threads 2 --port 0 \\
        --attempts 3 --wait-quiet 120 --priority 0 [--workers N] \\
        [--worker-class sync|gthread] [--gunicorn-threads N] [--skip-healthz] \\
        [--enforce-targets] [--json FILE] [--workdir DIR]

What it does:

1. drops and recreates the PostgreSQL database --database (on the server of --pg-url,
   which must allow CREATE DATABASE), applies the migrations, imports the demo projects
   shipped in voting/demo_data/projects.json, creates and opens a plurality poll and
   mints --tokens voter tokens with voting.services.issuing.mint_tokens, signed with a
   random SECRET_KEY generated for this run;
2. starts gunicorn with gunicorn.conf.py and that same SECRET_KEY, DATABASE_URL and
   REDIS_URL, and waits for GET /healthz;
3. opens three voter links (GET /v/<token>) so the access log has something to hide,
   warms the workers up with GET /readyz, then runs wrk with bench/ballots.lua: for
   --duration seconds, --connections connections POST distinct valid ballots
   {"token": "...", "choices": ["<project>"]} to /api/polls/<slug>/ballots (each wrk
   thread reads its own stripe of the token file, so no token is sent twice);
4. runs wrk on GET /healthz with the same connections and duration;
5. prints throughput, p50/p95/p99 latency and errors for both, their ratio, and checks
   that the number of ballots in the database equals the number of 201 answers, and
   that no token reached gunicorn's logs.

The machine may be shared: before each measurement the script waits (--wait-quiet) for
other work to stop, and a run during which other processes took more than 5% of the
machine is discarded and repeated with fresh tokens (--attempts; the last one is
reported if none was clean). Every report line shows the CPU time per request that
gunicorn, PostgreSQL, Redis, wrk and the rest of the machine used.

Each wrk run sends requests only during the window; afterwards every connection waits
until wrk stops (2 s later), so every ballot that was sent has been answered and counted.

Rate limits stay on (Redis, as in production). The per-token limit is keyed on the token
id, so distinct tokens never meet it; the per-address ballot limit is raised with
VOTING_RATELIMIT_BALLOT_PER_IP, because every request here comes from 127.0.0.1.

Exit status: 0 when the run is consistent (database == 201 answers, no token in the
logs, tokens did not run out); 1 otherwise. With --enforce-targets a missed target
(>= 800 ballots/s, p99 < 50 ms, 0 errors) also exits 1. gunicorn is always stopped.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "ballots.lua"
POLL_SLUG = "bench"
LINK_CHECKS = 3
GRACE_S = 2
TARGET_RATE = 800.0
TARGET_P99_MS = 50.0
QUIET_LOAD = 0.10  # busy share of the machine that counts as quiet before a run
NOISY_SHARE = 0.05  # share of the machine used by other work that voids a run


@dataclass
class WrkResult:
    statuses: dict[str, int]
    sent: int
    answered: int
    elapsed_s: float
    exhausted: bool
    stripe_used: int
    requests: int
    errors: dict[str, int]
    latency_us: dict[str, float]
    raw: str = field(repr=False, default="")
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.answered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def count(self, status: int) -> int:
        return self.statuses.get(str(status), 0)

    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    def ms(self, key: str) -> float:
        return self.latency_us[key] / 1000.0

    def other_share(self) -> float:
        """The share of the machine that processes outside the benchmark used."""
        c = self.cpu_s
        mine = sum(c[k] for k in ("gunicorn", "postgres", "redis", "wrk"))
        return max(0.0, c["machine"] - mine) / max(c["capacity"], 1e-9)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark ballot casting with gunicorn, PostgreSQL, Redis and wrk."
    )
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/test"),
        help="an existing database on the server to use (for CREATE/DROP DATABASE)",
    )
    p.add_argument("--database", default="voting_bench", help="name of the throwaway database")
    p.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    p.add_argument("--tokens", type=int, default=60_000, help="voter tokens to mint")
    p.add_argument("--duration", type=int, default=20, help="seconds of load per wrk run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="WEB_CONCURRENCY for gunicorn (default: gunicorn.conf.py's)",
    )
    p.add_argument(
        "--worker-class",
        default=None,
        choices=["sync", "gthread"],
        help="GUNICORN_WORKER_CLASS (default: gunicorn.conf.py's)",
    )
    p.add_argument(
        "--gunicorn-threads",
        type=int,
        default=None,
        help="GUNICORN_THREADS (default: gunicorn.conf.py's)",
    )
    p.add_argument("--port", type=int, default=0, help="port for gunicorn (0: pick a free one)")
    p.add_argument(
        "--ballot-ip-limit",
        default="1000000/minute",
        help="VOTING_RATELIMIT_BALLOT_PER_IP for this run",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where logs go (default: a new directory under /tmp, kept)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="seconds to wait, at most, for other work on the machine to stop before measuring",
    )
    p.add_argument(
        "--attempts",
        type=int,
        default=3,
        help="runs of each measurement at most, while other work on the machine voids them",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=0,
        help="renice gunicorn, wrk and this run's PostgreSQL backends to -N (root only) so "
        "that other work on a shared machine disturbs the measurement less",
    )
    p.add_argument("--skip-healthz", action="store_true", help="do not run the /healthz comparison")
    p.add_argument(
        "--enforce-targets", action="store_true", help="exit 1 when a performance target is missed"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# -- database ------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def recreate_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_url, name)


def prepare(
    database_url: str, redis_url: str, secret_key: str, count: int
) -> tuple[list[str], list[str]]:
    """Migrate, import the demo projects, open a poll, mint tokens; return (tokens, slugs)."""
    from flask_migrate import upgrade

    from voting import create_app
    from voting.services import issuing, polls, projects

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret_key,
        }
    )
    data = (ROOT / "voting" / "demo_data" / "projects.json").read_bytes()
    with app.app_context():
        upgrade()
        report = projects.import_projects(data, "projects.json", actor="bench")
        if report.rejected:
            raise SystemExit(f"demo projects rejected: {report.rejected}")
        poll = polls.create_poll(
            polls.PollSpec(slug=POLL_SLUG, title="Benchmark", method="plurality"), actor="bench"
        )
        slugs = [c.project.slug for c in poll.choices if not c.withdrawn]
        polls.open_poll(POLL_SLUG, actor="bench")
        tokens: list[str] = []
        while len(tokens) < count:
            n = min(issuing.MAX_MINT, count - len(tokens))
            tokens.extend(issuing.mint_tokens(POLL_SLUG, n, actor="bench").tokens)
    return tokens, slugs


def count_ballots(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        ballots = conn.execute(
            "SELECT count(*) FROM ballots b JOIN polls p ON p.id = b.poll_id WHERE p.slug = %s",
            (POLL_SLUG,),
        ).fetchone()
        choices = conn.execute(
            "SELECT count(*) FROM ballot_choices c JOIN polls p ON p.id = c.poll_id WHERE p.slug = %s",
            (POLL_SLUG,),
        ).fetchone()
    assert ballots is not None and choices is not None
    return int(ballots[0]), int(choices[0])


# -- gunicorn ------------------------------------------------------------------------------


class Server:
    """gunicorn in its own process group; stop() is safe to call any number of times."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.stdout_path = workdir / "gunicorn-access.log"
        self.stderr_path = workdir / "gunicorn-error.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def error_tail(self, lines: int = 30) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_healthy(server: Server, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise SystemExit("gunicorn exited during start-up:\n" + server.error_tail())
        try:
            status, _ = get(port, "/healthz", timeout=1.0)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"/healthz did not answer within {timeout:.0f} s:\n" + server.error_tail())


# -- CPU accounting ------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return (total - idle) / TICK, total / TICK


def cpu_by_group(gunicorn_session: int | None) -> dict[str, float]:
    """CPU seconds used so far by gunicorn (its session), PostgreSQL and Redis processes."""
    groups = {"gunicorn": 0.0, "postgres": 0.0, "redis": 0.0}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        session, ticks = int(rest[3]), int(rest[11]) + int(rest[12])
        if gunicorn_session is not None and session == gunicorn_session:
            groups["gunicorn"] += ticks / TICK
        elif comm == "postgres":
            groups["postgres"] += ticks / TICK
        elif comm.startswith("redis-server"):
            groups["redis"] += ticks / TICK
    return groups


def raise_priority(nice: int, session: int | None, database_url: str, database: str) -> int:
    """Renice gunicorn's processes and the PostgreSQL backends serving this database."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    pids = [int(r[0]) for r in rows]
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            if session is not None and int(raw[raw.rindex(")") + 2 :].split()[3]) == session:
                pids.append(int(entry.name))
    done = 0
    for pid in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
            done += 1
        except OSError:
            pass
    return done


def wait_until_quiet(limit_s: float) -> None:
    """Wait (at most limit_s) until other work on the machine has stopped."""
    deadline = time.monotonic() + limit_s
    load = background_load()
    while load > QUIET_LOAD and time.monotonic() < deadline:
        log(f"machine {load:.0%} busy with other work; waiting for it to calm down")
        time.sleep(4.0)
        load = background_load()
    log(f"machine busy before the run: {load:.0%} of all CPUs")


def background_load(seconds: float = 1.0) -> float:
    """How busy the machine is (0..1 of all cores) before we start, over a short sample."""
    busy0, total0 = machine_busy()
    time.sleep(seconds)
    busy1, total1 = machine_busy()
    return (busy1 - busy0) / max(total1 - total0, 1e-9)


# -- wrk -----------------------------------------------------------------------------------


def run_wrk(
    args: argparse.Namespace,
    session: int | None,
    port: int,
    mode: str,
    path: str,
    duration: int,
    token_file: Path | None = None,
    slugs: list[str] | None = None,
) -> WrkResult:
    cmd = [
        *(["nice", "-n", str(-args.priority)] if args.priority else []),
        "wrk",
        "-t", str(args.wrk_threads),
        "-c", str(args.connections),
        "-d", f"{duration + GRACE_S}s",
        # Longer than the grace period: wrk counts parked connections as timed out otherwise.
        "--timeout", f"{GRACE_S + 8}s",
        "-s", str(LUA),
        f"http://127.0.0.1:{port}{path}",
        "--",
        mode, str(duration), str(args.wrk_threads), str(token_file or "-"), path,
        ",".join(slugs or []),
    ]  # fmt: skip
    before, busy_before = cpu_by_group(session), machine_busy()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    after, busy_after = cpu_by_group(session), machine_busy()
    cpu = {k: after[k] - before[k] for k in after}
    cpu["wrk"] = (children.ru_utime + children.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    cpu["machine"] = busy_after[0] - busy_before[0]
    cpu["capacity"] = busy_after[1] - busy_before[1]
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
    return WrkResult(raw=proc.stdout, cpu_s=cpu, **data)


# -- checks and report ---------------------------------------------------------------------


def leaked_tokens(paths: list[Path], tokens: list[str]) -> list[str]:
    """The tokens (or their signatures) that appear in any of the log files."""
    text = "".join(p.read_text(errors="replace") for p in paths if p.exists())
    leaked = []
    for token in tokens:
        payload, _, signature = token.rpartition(".")
        if token in text or (signature and signature in text) or (payload and payload in text):
            leaked.append(token)
    return leaked


def describe(name: str, r: WrkResult, ok_status: int) -> list[str]:
    others = {k: v for k, v in sorted(r.statuses.items()) if k != str(ok_status)}
    return [
        f"{name}: {r.rate:,.0f} requests/s ({r.answered:,} answered in {r.elapsed_s:.2f} s), "
        f"{r.count(ok_status):,} x {ok_status}",
        f"  latency ms: p50 {r.ms('p50'):.1f}  p95 {r.ms('p95'):.1f}  p99 {r.ms('p99'):.1f}  "
        f"p99.9 {r.ms('p99.9'):.1f}  max {r.ms('max'):.1f}  mean {r.ms('mean'):.1f}",
        f"  non-{ok_status} answers: {sum(others.values())} {others or ''}".rstrip(),
        f"  socket errors: {r.socket_errors()} {r.errors}; sent {r.sent:,}, answered {r.answered:,}",
        "  " + cpu_line(r),
    ]


def cpu_line(r: WrkResult) -> str:
    """Where the CPU went during the run, in ms per answered request."""
    c, n = r.cpu_s, max(r.answered, 1)
    mine = sum(c[k] for k in ("gunicorn", "postgres", "redis", "wrk"))
    other = c["machine"] - mine
    parts = ", ".join(
        f"{k} {1000 * c[k] / n:.2f}" for k in ("gunicorn", "postgres", "redis", "wrk")
    )
    return (
        f"CPU ms/request: {parts}, rest of machine {1000 * other / n:.2f}; "
        f"machine {c['machine'] / c['capacity']:.0%} busy"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk).")
    sys.path.insert(0, str(ROOT))

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="voting-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    secret_key = secrets.token_hex(32)
    port = args.port or free_port()
    run_id = secrets.token_hex(4)

    log(f"recreating database {args.database!r}")
    database_url = recreate_database(args.pg_url, args.database)
    log(
        f"migrating, importing projects, opening poll {POLL_SLUG!r}, minting {args.tokens:,} tokens"
    )
    started = time.monotonic()
    tokens, slugs = prepare(database_url, args.redis_url, secret_key, args.tokens + LINK_CHECKS)
    log(f"prepared in {time.monotonic() - started:.1f} s; {len(slugs)} projects")
    link_tokens, tokens = tokens[-LINK_CHECKS:], tokens[:-LINK_CHECKS]
    token_file = workdir / "tokens.txt"
    token_file.write_text("\n".join(tokens) + "\n")

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": secret_key,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESSLOG": "-",
        "VOTING_RATELIMIT_BALLOT_PER_IP": args.ballot_ip_limit,
        # This run's own counters: nothing left over from an earlier run interferes.
        "VOTING_RATELIMIT_KEY_PREFIX": f"voting-bench-{run_id}",
    }
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    if args.worker_class:
        env["GUNICORN_WORKER_CLASS"] = args.worker_class
    if args.gunicorn_threads:
        env["GUNICORN_THREADS"] = str(args.gunicorn_threads)

    server = Server(env, workdir)
    atexit.register(server.stop)

    def _terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        server.start()
        wait_healthy(server, port)
        settings = describe_server(env)
        log(f"gunicorn up on port {port}: {settings}")

        for token in link_tokens:
            status, _ = get(port, f"/v/{token}")
            if status != 303:
                raise SystemExit(f"GET /v/<token> answered {status}, expected 303")
        session = server.proc.pid if server.proc else None
        run_wrk(args, session, port, "get", "/readyz", 2)  # warm-up: workers open their pools
        if args.priority:
            reniced = raise_priority(-args.priority, session, database_url, args.database)
            log(f"reniced {reniced} processes (gunicorn, PostgreSQL backends) to {-args.priority}")

        def measure(mode: str, path: str) -> WrkResult:
            """Run wrk, again (fresh tokens) if other work on the machine got in the way."""
            nonlocal remaining
            for attempt in range(1, args.attempts + 1):
                wait_until_quiet(args.wait_quiet)
                log(f"{mode} {path}: {args.connections} connections, {args.duration} s "
                    f"(attempt {attempt})")  # fmt: skip
                if mode == "ballot":
                    token_file.write_text("\n".join(remaining) + "\n")
                result = run_wrk(
                    args, session, port, mode, path, args.duration, token_file, slugs
                )  # fmt: skip
                if mode == "ballot":
                    ballot_runs.append(result)
                    remaining = remaining[args.wrk_threads * (result.stripe_used + 1) :]
                other = result.other_share()
                if other <= NOISY_SHARE:
                    return result
                log(f"other work took {other:.0%} of the machine during the run; discarded")
            log("the machine never stayed quiet: reporting the last attempt anyway")
            return result

        remaining = tokens
        ballot_runs: list[WrkResult] = []
        ballots = measure("ballot", f"/api/polls/{POLL_SLUG}/ballots")
        health = None if args.skip_healthz else measure("get", "/healthz")
    finally:
        server.stop()
        token_file.unlink(missing_ok=True)

    db_ballots, db_choices = count_ballots(database_url)
    leaks = leaked_tokens([server.stdout_path, server.stderr_path], link_tokens + tokens[:2000])
    redacted_links = server.stdout_path.read_text(errors="replace").count("/v/[redacted]")

    n201 = sum(r.count(201) for r in ballot_runs)
    non201 = ballots.answered - ballots.count(201)
    lines = [
        "",
        f"configuration: {settings}; per-IP ballot limit raised to {args.ballot_ip_limit} "
        "(VOTING_RATELIMIT_BALLOT_PER_IP); per-token limit and Redis limiter on",
        f"machine: {os.cpu_count()} CPUs, wrk -t{args.wrk_threads} -c{args.connections} "
        f"for {args.duration} s on the same machine",
        *describe("ballots (POST /api/polls/bench/ballots)", ballots, 201),
    ]
    if health is not None:
        lines += describe("healthz (GET /healthz)", health, 200)
        lines.append(f"ratio ballots/healthz throughput: {ballots.rate / health.rate:.2f}")
    lines += [
        f"database: {db_ballots:,} ballots, {db_choices:,} ballot choices; 201 answers: {n201:,}"
        + (f" (over {len(ballot_runs)} attempts)" if len(ballot_runs) > 1 else ""),
        f"logs: {redacted_links} redacted voter-link lines, {len(leaks)} tokens found "
        f"(logs in {workdir})",
    ]
    print("\n".join(lines), flush=True)

    failures = []
    if db_ballots != n201:
        failures.append(f"ballots in the database ({db_ballots}) != 201 answers ({n201})")
    if db_choices != db_ballots:
        failures.append(
            f"ballot choices ({db_choices}) != ballots ({db_ballots}) in a plurality poll"
        )
    if any(r.exhausted for r in ballot_runs):
        failures.append("wrk ran out of tokens: raise --tokens")
    if leaks:
        failures.append(f"{len(leaks)} voter tokens appear in gunicorn's logs")
    if redacted_links < LINK_CHECKS:
        failures.append("the access log does not show the redacted voter links")

    misses = []
    if ballots.rate < TARGET_RATE:
        misses.append(f"throughput {ballots.rate:,.0f}/s < {TARGET_RATE:,.0f}/s")
    if ballots.ms("p99") >= TARGET_P99_MS:
        misses.append(f"p99 {ballots.ms('p99'):.1f} ms >= {TARGET_P99_MS:.0f} ms")
    if non201 or ballots.socket_errors():
        misses.append(f"{non201} non-201 answers, {ballots.socket_errors()} socket errors")
    print("targets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    print("consistency: " + ("ok" if not failures else "FAILED: " + "; ".join(failures)))

    if args.json:
        figures = {
            "settings": settings,
            "ballots": {**ballots.__dict__, "raw": None, "rate": ballots.rate},
            "healthz": {**health.__dict__, "raw": None, "rate": health.rate} if health else None,
            "db_ballots": db_ballots,
            "db_choices": db_choices,
            "misses": misses,
            "failures": failures,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if failures or (misses and args.enforce_targets):
        return 1
    return 0


def describe_server(env: dict[str, str]) -> str:
    """The settings gunicorn.conf.py resolves to under this environment."""
    import runpy

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text = f"gunicorn {conf['worker_class']}, {conf['workers']} workers"
    if conf["worker_class"] == "gthread":
        text += f" x {conf['threads']} threads"
    return text


if __name__ == "__main__":
    sys.exit(main())
