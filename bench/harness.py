"""What bench/ballots.py and bench/pages.py share: the database, gunicorn, wrk, CPU accounting.

Not a benchmark by itself; see docs/benchmarks.md for the commands.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
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
GRACE_S = 2
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
    scheduled_us: dict[str, float] = field(default_factory=dict)
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
    from voting import create_app
    from voting.database import upgrade_schema
    from voting.services import issuing, polls, projects

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret_key,
            "ALLOW_LOCAL_BASE_URL": True,  # the bench mints for loopback only
        }
    )
    data = (ROOT / "voting" / "demo_data" / "projects.json").read_bytes()
    with app.app_context():
        upgrade_schema()
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
    """gunicorn in its own process group; stop() is safe to call any number of times.

    `root` is the checkout whose code it serves (its gunicorn.conf.py, its voting/ first on
    PYTHONPATH): this one, or another commit's for a before/after comparison.
    """

    def __init__(
        self, env: dict[str, str], workdir: Path, root: Path = ROOT, label: str = "gunicorn"
    ) -> None:
        self.root = root
        self.env = {
            **env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        }
        self.stdout_path = workdir / f"{label}-access.log"
        self.stderr_path = workdir / f"{label}-error.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(self.root / "gunicorn.conf.py")],
                cwd=self.root,
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
    rate: float = 0.0,
    header: str | None = None,
) -> WrkResult:
    """One wrk run; `rate` > 0 offers that many requests per second (open loop)."""
    # Open loop: one connection per wrk thread, each on its own schedule (ballots.lua).
    threads = args.connections if rate else args.wrk_threads
    cmd = [
        *(["nice", "-n", str(-args.priority)] if args.priority else []),
        "wrk",
        "-t", str(threads),
        "-c", str(args.connections),
        *(["-H", header] if header else []),
        "-d", f"{duration + GRACE_S}s",
        # Longer than the grace period: wrk counts parked connections as timed out otherwise.
        "--timeout", f"{GRACE_S + 8}s",
        "-s", str(LUA),
        f"http://127.0.0.1:{port}{path}",
        "--",
        mode, str(duration), str(threads), str(token_file or "-"), path,
        ",".join(slugs or []), str(rate),
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
    due = r.scheduled_us
    return [
        f"{name}: {r.rate:,.0f} requests/s ({r.answered:,} answered in {r.elapsed_s:.2f} s), "
        f"{r.count(ok_status):,} x {ok_status}",
        f"  latency ms: p50 {r.ms('p50'):.1f}  p95 {r.ms('p95'):.1f}  p99 {r.ms('p99'):.1f}  "
        f"p99.9 {r.ms('p99.9'):.1f}  max {r.ms('max'):.1f}  mean {r.ms('mean'):.1f}",
        *(
            [
                f"  open loop, ms from when each was due: p50 {due['p50'] / 1000:.1f}  "
                f"p90 {due['p90'] / 1000:.1f}  p99 {due['p99'] / 1000:.1f}  "
                f"p99.9 {due['p99.9'] / 1000:.1f}  max {due['max'] / 1000:.1f}"
            ]
            if due.get("n")
            else []
        ),
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


def describe_server(env: dict[str, str], root: Path = ROOT) -> str:
    """The settings gunicorn.conf.py resolves to under this environment."""
    import runpy

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        conf = runpy.run_path(str(root / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text = f"gunicorn {conf['worker_class']}, {conf['workers']} workers"
    if conf["worker_class"] == "gthread":
        text += f" x {conf['threads']} threads"
    return text


def children(pid: int) -> list[int]:
    """The gunicorn master's worker processes."""
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(x) for x in found]


# -- CPU profile ---------------------------------------------------------------------------

# Where a request's Python time goes: each sample goes to the part of its innermost frame
# that names one of these (psycopg called by voting/ code counts as the database).
PROFILE_PARTS = [
    ("flask-limiter and limits", ("flask_limiter/", "limits/")),
    ("Redis client", ("redis/",)),
    ("database (SQLAlchemy, psycopg)", ("sqlalchemy/", "psycopg/")),
    ("token signature (itsdangerous)", ("itsdangerous/",)),
    ("templates (Jinja)", ("jinja2/", "templates/")),
    ("voting code itself", ("voting/",)),
]
OTHER_PART = "Flask, Werkzeug, gunicorn, stdlib"


def start_profile(pid: int, out: Path, seconds: int) -> subprocess.Popen[bytes] | None:
    """py-spy on one gunicorn worker, sampling only the thread that holds the GIL (CPU)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        log("py-spy is not installed (pip install py-spy): no profile")
        return None
    cmd = [spy, "record", "--pid", str(pid), "--gil", "--rate", "100", "--nonblocking"]
    cmd += ["--duration", str(seconds), "--format", "raw", "--output", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, ms_per_request: float | None = None, top: int = 12) -> list[str]:
    """Shares of the request threads' samples: by part, and the top own-time frames."""
    if not path.exists():
        return [f"  (no profile written to {path})"]
    total, own = 0, {}
    parts = dict.fromkeys([*(name for name, _ in PROFILE_PARTS), OTHER_PART], 0)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "wsgi_app" not in stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        part = next(
            (
                name
                for frame in reversed(frames)
                for name, markers in PROFILE_PARTS
                if any(m in frame for m in markers)
            ),
            OTHER_PART,
        )
        parts[part] += n
        leaf = frames[-1].rsplit(":", 1)[0] + ")"
        own[leaf] = own.get(leaf, 0) + n
    if not total:
        return ["  (the profile holds no request samples)"]
    lines = [f"  {total} samples in requests; share by part (innermost frame)"]
    if ms_per_request:
        lines[0] += f", and of the {ms_per_request:.2f} ms of gunicorn CPU per request in that run"
    for name, n in parts.items():
        ms = f"  {ms_per_request * n / total:5.2f} ms" if ms_per_request else ""
        lines.append(f"    {100 * n / total:5.1f}%{ms}  {name}")
    lines.append("  top frames by own time:")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {100 * n / total:5.1f}%  {frame}")
    return lines
