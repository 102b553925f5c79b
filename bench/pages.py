"""The pages on the way to a ballot, against /healthz in the same run: gunicorn + PostgreSQL + Redis.

Run from the repository root, with the project installed (or PYTHONPATH=.) and wrk:

    python bench/pages.py
    python bench/pages.py --compare /tmp/voting-base --rounds 3     # before/after, one run
    python bench/pages.py --rounds 1 --profile /tmp/prof-pages      # and where the CPU goes

    python bench/pages.py --pg-url postgresql://root@127.0.0.1:5432/test \\
        --database voting_bench_pages --redis-url redis://127.0.0.1:6379/0 --projects 100 \\
        --duration 10 --connections 32 --wrk-threads 2 --rounds 1 --priority 0 \\
        [--compare DIR] [--workdir DIR]

It recreates the database, imports --projects projects (the demo's twelve, repeated under
new slugs), opens a live-results poll, casts 200 ballots through the service, and then, for
each round and checkout (this one, and --compare's), starts gunicorn with gunicorn.conf.py
and measures with wrk (closed loop, --connections connections, --duration s each):

- GET /healthz, the baseline;
- GET /p/<slug>, the ballot page, anonymous (no cookie: a first visit, which is also given
  its order cookie);
- GET /p/<slug> with a voter cookie (a token that has not voted: the page to vote from),
  first as a first view (no session cookie: wrk keeps no cookies, so the page makes the
  form's CSRF session every time), then as a phone's second view (the session cookie the
  first view set, sent back);
- GET /p/<slug>/results and GET /api/polls/<slug>/results;
- GET /api/polls/<slug>/results with If-None-Match set to the ETag the server gave
  (304 expected; a checkout without ETags answers 200);
- GET /p/<slug>/results and /api/polls/<slug>/results with Accept-Encoding: gzip, as every
  browser sends it (a checkout that does not gzip answers them as it answers the others).

It prints requests/s, p50/p99, the answers' statuses and the ratio to /healthz for each,
and the medians per checkout. Every request comes from 127.0.0.1, so the per-address
default limit (VOTING_RATELIMIT_DEFAULT, 6000/minute) is raised to 10000000/minute for the
run and the script says so. The machine may be shared: compare checkouts within one run.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from harness import (
    ROOT,
    Server,
    WrkResult,
    children,
    describe_server,
    free_port,
    log,
    raise_priority,
    recreate_database,
    run_wrk,
    start_profile,
    summarize_profile,
    wait_healthy,
)

SLUG = "pages"
TARGETS = {
    "ballot page, anonymous": 0.5,
    "ballot page, voter cookie": 0.5,
    "results JSON": 0.8,
    "results JSON, gzip": 0.8,
}
GZIP = "Accept-Encoding: gzip"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the ballot and results pages with wrk.")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/test"),
    )
    p.add_argument("--database", default="voting_bench_pages")
    p.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    p.add_argument("--projects", type=int, default=100)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--priority", type=int, default=0, help="renice our processes to -N (root)")
    p.add_argument("--compare", type=Path, default=None, help="another checkout, same run")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="after the last round, 10 s more of each ballot page per checkout with py-spy "
        "(--gil) on one worker; raw profiles in DIR",
    )
    return p.parse_args(argv)


def prepare(database_url: str, redis_url: str, secret_key: str, count: int) -> tuple[int, str]:
    """Projects, an open live poll with 200 ballots; returns (poll id, an unspent token)."""
    from voting import create_app
    from voting.database import upgrade_schema
    from voting.services import ballots, issuing, polls, projects

    demo = json.loads((ROOT / "voting" / "demo_data" / "projects.json").read_text())["projects"]
    many = []
    for i in range(count):
        base = dict(demo[i % len(demo)])
        base["slug"] = f"{base['slug']}-{i}"
        base["title"] = f"{base['title']} {i}"
        many.append(base)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret_key,
            "ALLOW_LOCAL_BASE_URL": True,
        }
    )
    with app.app_context():
        upgrade_schema()
        report = projects.import_projects(
            json.dumps({"projects": many}).encode(), "projects.json", actor="bench"
        )
        if report.rejected:
            raise SystemExit(f"projects rejected: {report.rejected}")
        poll = polls.create_poll(
            polls.PollSpec(slug=SLUG, title="Pages", results_mode="live"), actor="bench"
        )
        slugs = [c.project.slug for c in poll.choices if not c.withdrawn]
        polls.open_poll(SLUG, actor="bench")
        tokens = issuing.mint_tokens(SLUG, 201, actor="bench").tokens
        for i, token in enumerate(tokens[:200]):
            ballots.cast_ballot(SLUG, token, [slugs[(i * 7) % len(slugs)]])
        return polls.get_poll(SLUG).id, tokens[200]


def session_cookie(port: int, path: str, cookie: str) -> str | None:
    """The `name=value` of the session cookie a first view with `cookie` is given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                return value.split(";", 1)[0]
        return None
    finally:
        conn.close()


def etag_of(port: int, path: str) -> str | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.getheader("ETag")
    finally:
        conn.close()


PROFILED = (
    "ballot page, anonymous",
    "ballot page, voter cookie",
    "ballot page, voter cookie, second view",
)


def profile(
    args: argparse.Namespace,
    session: int | None,
    port: int,
    label: str,
    name: str,
    path: str,
    header: str | None,
) -> list[str]:
    """10 s more of one path with py-spy (--gil) on one worker: where its CPU goes."""
    workers = children(session or 0)
    out = args.profile / f"{label}-{name.replace(' ', '-').replace(',', '')}.txt"
    args.profile.mkdir(parents=True, exist_ok=True)
    spy = start_profile(workers[0], out, 8) if workers else None
    r = run_wrk(args, session, port, "get", path, 10, header=header)
    if spy is not None:
        spy.wait(timeout=60)
    ms = 1000 * r.cpu_s["gunicorn"] / max(r.answered, 1)
    heading = f"CPU profile, {label}, {name} ({r.rate:,.0f}/s meanwhile):"
    return [heading, *summarize_profile(out, ms)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk).")
    sys.path.insert(0, str(ROOT))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="voting-pages-"))
    workdir.mkdir(parents=True, exist_ok=True)
    secret_key = secrets.token_hex(32)
    checkouts = [("this", ROOT)]
    if args.compare:
        checkouts = [("baseline", args.compare.resolve()), ("this", ROOT)]
    log(f"recreating database {args.database!r}, {args.projects} projects, 200 ballots")
    database_url = recreate_database(args.pg_url, args.database)
    poll_id, voter = prepare(database_url, args.redis_url, secret_key, args.projects)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": secret_key,
        "GUNICORN_ACCESSLOG": "",
        "VOTING_RATELIMIT_DEFAULT": "10000000/minute",
        "VOTING_RATELIMIT_KEY_PREFIX": f"voting-pages-{secrets.token_hex(4)}",
        "VOTING_LIVE_KEY_PREFIX": f"voting-pages-{secrets.token_hex(4)}",
    }
    paths = [
        ("healthz", "/healthz", None),
        ("ballot page, anonymous", f"/p/{SLUG}", None),
        ("ballot page, voter cookie", f"/p/{SLUG}", f"Cookie: vt_{poll_id}={voter}"),
        ("ballot page, voter cookie, second view", f"/p/{SLUG}", "session"),
        ("results page", f"/p/{SLUG}/results", None),
        ("results JSON", f"/api/polls/{SLUG}/results", None),
        ("results JSON, If-None-Match", f"/api/polls/{SLUG}/results", "etag"),
        # What a phone's browser asks: the same answers, gzipped (once per version).
        ("results page, gzip", f"/p/{SLUG}/results", GZIP),
        ("results JSON, gzip", f"/api/polls/{SLUG}/results", GZIP),
    ]
    servers: list[Server] = []
    atexit.register(lambda: [s.stop() for s in servers])
    runs: dict[str, dict[str, list[WrkResult]]] = {
        label: {name: [] for name, _, _ in paths} for label, _ in checkouts
    }
    settings = ""
    profiles: list[list[str]] = []
    try:
        for round_ in range(args.rounds):
            for label, root in checkouts if round_ % 2 == 0 else checkouts[::-1]:
                port = free_port()
                server = Server({**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}, workdir, root, label)
                servers.append(server)
                server.start()
                wait_healthy(server, port)
                settings = describe_server({**env, "GUNICORN_BIND": "-"}, root)
                session = server.proc.pid if server.proc else None
                run_wrk(args, session, port, "get", "/readyz", 2)  # warm-up
                if args.priority:
                    raise_priority(-args.priority, session, database_url, args.database)
                log(f"round {round_ + 1}, {label} ({root}): {settings}")
                for name, path, header in paths:
                    if header == "session":
                        cookie = f"vt_{poll_id}={voter}"
                        held = session_cookie(port, path, cookie)
                        header = f"Cookie: {cookie}; {held}" if held else f"Cookie: {cookie}"
                    if header == "etag":
                        tag = etag_of(port, path)
                        header = f"If-None-Match: {tag}" if tag else None
                    r = run_wrk(args, session, port, "get", path, args.duration, header=header)
                    runs[label][name].append(r)
                    log(
                        f"  {name}: {r.rate:,.0f}/s, p50 {r.ms('p50'):.1f} ms, "
                        f"p99 {r.ms('p99'):.1f} ms, answers {dict(sorted(r.statuses.items()))}"
                    )
                    if args.profile and round_ == args.rounds - 1 and name in PROFILED:
                        profiles.append(profile(args, session, port, label, name, path, header))
                server.stop()
    finally:
        for server in servers:
            server.stop()

    med = statistics.median
    print(f"\nconfiguration: {settings}; {args.projects} projects; wrk -t{args.wrk_threads} "
          f"-c{args.connections}, {args.duration} s per path, {args.rounds} round(s); "
          "VOTING_RATELIMIT_DEFAULT raised to 10000000/minute (one address)")  # fmt: skip
    misses = []
    for label, root in checkouts:
        health = med(r.rate for r in runs[label]["healthz"])
        print(f"{label} ({root}), medians:")
        print("  | path | req/s | p50 ms | p99 ms | x healthz | answers |")
        for name, path, _ in paths:
            rs = runs[label][name]
            rate = med(r.rate for r in rs)
            statuses: dict[str, int] = {}
            for r in rs:
                for k, v in r.statuses.items():
                    statuses[k] = statuses.get(k, 0) + v
            print(
                f"  | {name} `{path}` | {rate:,.0f} | {med(r.ms('p50') for r in rs):.1f} | "
                f"{med(r.ms('p99') for r in rs):.1f} | {rate / health:.2f} | "
                f"{dict(sorted(statuses.items()))} |"
            )
            if label == "this" and name in TARGETS and rate / health < TARGETS[name]:
                misses.append(f"{name}: {rate / health:.2f} x healthz < {TARGETS[name]}")
            if label == "this" and "If-None-Match" in name and set(statuses) != {"304"}:
                misses.append(f"{name}: answers {statuses}, not only 304")
    print("targets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    for lines in profiles:
        print("\n".join(lines))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    label: {n: [{**r.__dict__, "raw": None} for r in rs] for n, rs in v.items()}
                    for label, v in runs.items()
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
