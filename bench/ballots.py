"""Ballot-casting benchmark: gunicorn (gunicorn.conf.py) + PostgreSQL + Redis, driven by wrk.

Run from the repository root, with the project installed (or PYTHONPATH=.):

    python bench/ballots.py                       # saturation: 32 connections, closed loop
    python bench/ballots.py --rate 300 --duration 30 --skip-healthz   # open loop, 300/s

    # before/after in one run, on one database (the machine is shared: compare like this):
    git worktree add --detach /tmp/voting-base <old commit>
    python bench/ballots.py --compare /tmp/voting-base --rounds 3 --profile /tmp/prof

    # the options, with their defaults (workers, class and threads default to what
    # gunicorn.conf.py picks: WEB_CONCURRENCY or CPU cores + 1, gthread, 32 threads):
    python bench/ballots.py --pg-url postgresql://root@127.0.0.1:5432/test \\
        --database voting_bench --redis-url redis://127.0.0.1:6379/0 \\
        --tokens 60000 --duration 20 --connections 32 --wrk-threads 2 --port 0 \\
        --attempts 1 --wait-quiet 10 --priority 0 --rate 0 --rounds 1 [--workers N] \\
        [--worker-class sync|gthread] [--gunicorn-threads N] [--skip-healthz] \\
        [--compare DIR] [--profile DIR] [--enforce-targets] [--json FILE] [--workdir DIR]

What it does:

1. drops and recreates the PostgreSQL database --database (on the server of --pg-url,
   which must allow CREATE DATABASE), applies the migrations, imports the demo projects
   shipped in voting/demo_data/projects.json, creates and opens a plurality poll and
   mints --tokens voter tokens with voting.services.issuing.mint_tokens, signed with a
   random SECRET_KEY generated for this run;
2. for each round and each checkout (this one; with --compare the other one too, the
   order alternating between rounds), starts gunicorn with that checkout's
   gunicorn.conf.py and code, the same SECRET_KEY, DATABASE_URL and REDIS_URL, opens
   three voter links (GET /v/<token>) so the access log has something to hide, warms
   the workers up with GET /readyz, then runs wrk with bench/ballots.lua: for --duration
   seconds, --connections connections POST distinct valid ballots
   {"token": "...", "choices": ["<project>"]} to /api/polls/<slug>/ballots (each wrk
   thread reads its own stripe of the token file, so no token is sent twice). Closed loop
   by default (each connection sends again when answered: the saturation throughput);
   with --rate R, open loop (R ballots/s offered on a fixed schedule, one connection per
   wrk thread, latency counted from when each ballot was due);
3. runs wrk on GET /healthz with the same connections and duration (not with --rate);
4. prints throughput, p50/p95/p99 latency, errors and CPU per request for every run, the
   medians per checkout, and checks that the number of ballots in the database equals
   the number of 201 answers, and that no token reached gunicorn's logs;
5. with --profile, runs each checkout once more for 10 s with py-spy recording one worker
   (--gil: CPU time only) and prints where the request's time goes.

The machine may be shared: before each measurement the script waits (--wait-quiet) for
other work to stop, and a run during which other processes took more than 5% of the
machine is repeated with fresh tokens (--attempts; the last one is reported if none was
clean). Every report line shows the CPU time per request that gunicorn, PostgreSQL,
Redis, wrk and the rest of the machine used. On a machine others use, compare checkouts
only within one run (--compare), and read the medians.

Each wrk run sends requests only during the window; afterwards every connection waits
until wrk stops (2 s later), so every ballot that was sent has been answered and counted.

Rate limits stay on (Redis, as in production), at the shipped defaults: a first ballot
with a valid token consults no counter. --ballot-ip-limit sets VOTING_RATELIMIT_BALLOT_PER_IP
for this run (only needed for a --compare checkout that counts every ballot per address).

Exit status: 0 when the run is consistent (database == 201 answers, no token in the
logs, tokens did not run out); 1 otherwise. With --enforce-targets a missed target
(>= TARGET_RATE ballots/s at saturation, p99 < 50 ms in open loop, 0 errors) also exits 1.
gunicorn is always stopped.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    NOISY_SHARE,
    POLL_SLUG,
    ROOT,
    Server,
    WrkResult,
    children,
    count_ballots,
    describe,
    describe_server,
    free_port,
    get,
    leaked_tokens,
    log,
    prepare,
    raise_priority,
    recreate_database,
    run_wrk,
    start_profile,
    summarize_profile,
    wait_healthy,
    wait_until_quiet,
)

LINK_CHECKS = 3
# Issue 16: twice the 468/s of docs/benchmarks.md at saturation; p99 <= 50 ms at 300/s.
TARGET_RATE = 936.0
TARGET_P99_MS = 50.0


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
        default=None,
        help="VOTING_RATELIMIT_BALLOT_PER_IP for this checkout (default: the shipped one)",
    )
    p.add_argument(
        "--baseline-ip-limit",
        default="1000000/minute",
        help="VOTING_RATELIMIT_BALLOT_PER_IP for the --compare checkout: before issue 16 every "
        "ballot counted against it, and all of wrk's come from 127.0.0.1",
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
        default=10.0,
        help="seconds to wait, at most, for other work on the machine to stop before measuring",
    )
    p.add_argument(
        "--attempts",
        type=int,
        default=1,
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
        "--nginx",
        action="store_true",
        help="send the load through Debian's nginx from deploy/nginx.conf (VOTING_PROXY_HOPS=1)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="open loop: offer this many ballots/s in all, on a fixed schedule (0: closed loop, "
        "each connection sends again as soon as it is answered, i.e. saturation)",
    )
    p.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="another checkout (e.g. `git worktree add /tmp/base main`) to measure in the same "
        "run, against the same database: rounds alternate baseline and this checkout",
    )
    p.add_argument("--rounds", type=int, default=1, help="measurements of each checkout")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="after measuring, a 10-s ballot run per checkout with py-spy on one worker "
        "(CPU: only the thread holding the GIL); raw stacks go to DIR/<label>.txt",
    )
    p.add_argument(
        "--enforce-targets", action="store_true", help="exit 1 when a performance target is missed"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk).")
    sys.path.insert(0, str(ROOT))

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="voting-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    secret_key = secrets.token_hex(32)
    run_id = secrets.token_hex(4)
    checkouts = [("this", ROOT)]
    if args.compare:
        if not (args.compare / "gunicorn.conf.py").exists():
            raise SystemExit(f"--compare {args.compare}: no gunicorn.conf.py there")
        checkouts = [("baseline", args.compare.resolve()), ("this", ROOT)]

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

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": secret_key,
        "GUNICORN_ACCESSLOG": "-",
        # This run's own counters: nothing left over from an earlier run interferes.
        "VOTING_RATELIMIT_KEY_PREFIX": f"voting-bench-{run_id}",
    }
    limit_for = {"this": args.ballot_ip_limit, "baseline": args.baseline_ip_limit}
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    if args.worker_class:
        env["GUNICORN_WORKER_CLASS"] = args.worker_class
    if args.gunicorn_threads:
        env["GUNICORN_THREADS"] = str(args.gunicorn_threads)

    servers: list[Server] = []
    atexit.register(lambda: [s.stop() for s in servers])
    proxies: list[Any] = []  # tests.stack_support.Process (nginx), with --nginx
    atexit.register(lambda: [p.stop() for p in proxies])
    if args.nginx:
        env["VOTING_PROXY_HOPS"] = "1"

    def _terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    remaining = tokens
    ballot_runs: list[WrkResult] = []
    results: dict[str, list[WrkResult]] = {label: [] for label, _ in checkouts}
    health: dict[str, list[WrkResult]] = {label: [] for label, _ in checkouts}
    profiles: dict[str, tuple[Path, float]] = {}
    settings = ""

    def measure(session: int | None, port: int, mode: str, path: str) -> WrkResult:
        """Run wrk, again (fresh tokens) if other work on the machine got in the way."""
        nonlocal remaining
        rate = args.rate if mode == "ballot" else 0.0
        for attempt in range(1, args.attempts + 1):
            wait_until_quiet(args.wait_quiet)
            how = f"open loop at {rate:g}/s" if rate else "closed loop"
            log(f"{mode} {path}: {args.connections} connections, {how}, {args.duration} s "
                f"(attempt {attempt})")  # fmt: skip
            if mode == "ballot":
                token_file.write_text("\n".join(remaining) + "\n")
            result = run_wrk(
                args, session, port, mode, path, args.duration, token_file, slugs, rate
            )  # fmt: skip
            if mode == "ballot":
                ballot_runs.append(result)
                stripes = args.connections if rate else args.wrk_threads
                remaining = remaining[stripes * (result.stripe_used + 1) :]
            other = result.other_share()
            if other <= NOISY_SHARE:
                return result
            log(f"other work took {other:.0%} of the machine during the run")
        return result

    def serve(label: str, root: Path) -> tuple[Server, int]:
        port = args.port or free_port()
        own = {"GUNICORN_BIND": f"127.0.0.1:{port}"}
        if limit_for[label]:
            own["VOTING_RATELIMIT_BALLOT_PER_IP"] = str(limit_for[label])
        server = Server({**env, **own}, workdir, root, label)
        servers.append(server)
        server.start()
        wait_healthy(server, port)
        for token in link_tokens:
            status, _ = get(port, f"/v/{token}")
            if status != 303:
                raise SystemExit(f"GET /v/<token> answered {status} on {label}, expected 303")
        session = server.proc.pid if server.proc else None
        if args.nginx:
            from tests.stack_support import nginx

            front = free_port()
            proxies.append(nginx(front, [port], workdir / f"nginx-{label}-{len(proxies)}"))
            port = front  # wrk talks to nginx; its CPU shows as "rest of machine"
        run_wrk(args, session, port, "get", "/readyz", 2)  # warm-up: workers open their pools
        if args.priority:
            reniced = raise_priority(-args.priority, session, database_url, args.database)
            log(f"reniced {reniced} processes (gunicorn, PostgreSQL backends) to {-args.priority}")
        return server, port

    def stop_all() -> None:
        for proxy in proxies:
            proxy.stop()
        for server in servers:
            server.stop()

    try:
        for round_ in range(args.rounds):
            order = checkouts if round_ % 2 == 0 else checkouts[::-1]
            for label, root in order:
                server, port = serve(label, root)
                settings = describe_server({**env, "GUNICORN_BIND": "-"}, root)
                log(f"round {round_ + 1}, {label} ({root}): gunicorn up on port {port}: {settings}")
                session = server.proc.pid if server.proc else None
                result = measure(session, port, "ballot", f"/api/polls/{POLL_SLUG}/ballots")
                results[label].append(result)
                print("\n".join(describe(f"  {label} ballots", result, 201)), flush=True)
                if not args.skip_healthz and not args.rate:
                    h = measure(session, port, "get", "/healthz")
                    health[label].append(h)
                    print("\n".join(describe(f"  {label} healthz", h, 200)), flush=True)
                stop_all()
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for label, root in checkouts:
                server, port = serve(label, root)
                workers = children(server.proc.pid if server.proc else 0)
                out = args.profile / f"{label}.txt"
                spy = start_profile(workers[0], out, 10) if workers else None
                token_file.write_text("\n".join(remaining) + "\n")
                result = run_wrk(
                    args, server.proc.pid if server.proc else None, port, "ballot",
                    f"/api/polls/{POLL_SLUG}/ballots", 10, token_file, slugs, args.rate,
                )  # fmt: skip
                ballot_runs.append(result)
                stripes = args.connections if args.rate else args.wrk_threads
                remaining = remaining[stripes * (result.stripe_used + 1) :]
                if spy is not None:
                    spy.wait(timeout=60)
                profiles[label] = (out, 1000 * result.cpu_s["gunicorn"] / max(result.answered, 1))
                stop_all()
    finally:
        stop_all()
        token_file.unlink(missing_ok=True)

    db_ballots, db_choices = count_ballots(database_url)
    logs = [p for s in servers for p in (s.stdout_path, s.stderr_path)]
    leaks = leaked_tokens(sorted(set(logs)), link_tokens + tokens[:2000])
    access_logs = sorted({s.stdout_path for s in servers})
    redacted_links = sum(p.read_text(errors="replace").count("/v/[redacted]") for p in access_logs)

    n201 = sum(r.count(201) for r in ballot_runs)
    lines = [
        "",
        f"configuration: {settings}{'; through nginx (deploy/nginx.conf)' if args.nginx else ''}"
        "; Redis limiter on; VOTING_RATELIMIT_BALLOT_PER_IP: "
        + ", ".join(f"{label} {limit_for[label] or 'shipped default'}" for label, _ in checkouts),
        f"machine: {os.cpu_count()} CPUs, load generator on the same machine: wrk "
        + (f"-t{args.connections} -c{args.connections}, open loop at {args.rate:g} ballots/s"
           if args.rate else f"-t{args.wrk_threads} -c{args.connections}, closed loop")
        + f", {args.duration} s per run, {args.rounds} round(s)",
    ]  # fmt: skip
    for label, root in checkouts:
        runs = results[label]
        lines.append(f"{label} ({root}), median of {len(runs)}:")
        lines += median_lines(runs, health[label])
    if profiles:
        lines.append("CPU profile of the ballot request (py-spy --gil, one worker, 10 s):")
        for label, (path, ms) in profiles.items():
            lines.append(f"{label}: {path}")
            lines += summarize_profile(path, ms)
    lines += [
        f"database: {db_ballots:,} ballots, {db_choices:,} ballot choices; 201 answers: {n201:,}"
        f" (over {len(ballot_runs)} runs)",
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

    mine = results["this"]
    rate = statistics.median(r.rate for r in mine)
    misses = []
    if not args.rate and rate < TARGET_RATE:
        misses.append(f"throughput {rate:,.0f}/s < {TARGET_RATE:,.0f}/s")
    if args.rate:
        p99 = statistics.median(r.scheduled_us["p99"] / 1000 for r in mine)
        if p99 >= TARGET_P99_MS:
            misses.append(f"open-loop p99 {p99:.1f} ms >= {TARGET_P99_MS:.0f} ms")
    bad = sum(r.answered - r.count(201) + r.socket_errors() for r in mine)
    if bad:
        misses.append(f"{bad} non-201 answers or socket errors")
    print("targets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    print("consistency: " + ("ok" if not failures else "FAILED: " + "; ".join(failures)))

    if args.json:
        figures = {
            "settings": settings,
            "runs": {
                label: [{**r.__dict__, "raw": None, "rate": r.rate} for r in runs]
                for label, runs in results.items()
            },
            "db_ballots": db_ballots,
            "db_choices": db_choices,
            "misses": misses,
            "failures": failures,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if failures or (misses and args.enforce_targets):
        return 1
    return 0


def median_lines(runs: list[WrkResult], health: list[WrkResult]) -> list[str]:
    """One checkout's medians: throughput, latency, CPU per ballot, and the healthz ratio."""
    med = statistics.median

    def cpu(key: str, rs: list[WrkResult]) -> float:
        return med(1000 * r.cpu_s[key] / max(r.answered, 1) for r in rs)

    lines = [
        f"  ballots/s {med(r.rate for r in runs):,.0f} (runs: "
        + ", ".join(f"{r.rate:,.0f}" for r in runs)
        + f"); p50 {med(r.ms('p50') for r in runs):.1f} ms, p99 {med(r.ms('p99') for r in runs):.1f}"
        f" ms; non-201 {sum(r.answered - r.count(201) for r in runs)}, socket errors "
        f"{sum(r.socket_errors() for r in runs)}",
        f"  CPU ms per ballot: gunicorn {cpu('gunicorn', runs):.2f}, PostgreSQL "
        f"{cpu('postgres', runs):.2f}, Redis {cpu('redis', runs):.2f}, wrk {cpu('wrk', runs):.2f}",
    ]
    if runs and runs[0].scheduled_us.get("n"):
        lines.append(
            "  open loop, ms from when due: p50 "
            f"{med(r.scheduled_us['p50'] for r in runs) / 1000:.1f}, p99 "
            f"{med(r.scheduled_us['p99'] for r in runs) / 1000:.1f}, max "
            f"{med(r.scheduled_us['max'] for r in runs) / 1000:.1f}"
        )
    if health:
        h = med(r.rate for r in health)
        lines.append(
            f"  healthz/s {h:,.0f}; ratio ballots/healthz {med(r.rate for r in runs) / h:.2f}"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
