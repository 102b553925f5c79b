"""The production stack as processes: gunicorn instances (gunicorn.conf.py) behind Debian's nginx.

nginx runs from deploy/nginx.conf, filled in for a temporary directory and a free port, as
a process of our own (-p/-c), never the system service. bench/streams.py uses this too.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )


def render_nginx(
    listen: str,
    upstreams: list[str],
    state_dir: Path,
    user: str = "root",
    stream_upstreams: list[str] | None = None,
) -> str:
    """deploy/nginx.conf with its placeholders filled in; the streams go to
    `stream_upstreams` when given, else to the same instances as the rest."""

    def servers(addresses: list[str]) -> str:
        return " ".join(f"server {u} max_fails=1 fail_timeout=2s;" for u in addresses)

    text = NGINX_TEMPLATE.read_text()
    for name, value in {
        "@LISTEN@": listen,
        "@STREAM_UPSTREAMS@": servers(stream_upstreams or upstreams),
        "@UPSTREAMS@": servers(upstreams),
        "@STATE_DIR@": str(state_dir),
        "@USER@": user,
    }.items():
        text = text.replace(name, value)
    return text


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited during start-up:\n{tail(log)}")
        try:
            if http_get(port, "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer /healthz within 60 s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_all(servers: list[Process]) -> None:
    """SIGTERM every server's process group at once, then wait for each: their graceful
    shutdowns (gunicorn waits GUNICORN_GRACEFUL_TIMEOUT for kept-alive connections) overlap."""
    stopping = []
    for server in servers:
        proc, server.proc = server.proc, None
        if proc is None or proc.poll() is not None:
            continue
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        stopping.append(proc)
    for proc in stopping:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class Process:
    """A server in its own session, so stop() and kill() reach its workers too."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], workdir: Path):
        self.name = name
        self.command = command
        self.env = env
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, not a shutdown."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_all([self])

    def wait_healthy(self, port: int) -> None:
        assert self.proc is not None
        _wait_healthy(self.proc, port, self.name, self.log)

    def pids(self) -> list[int]:
        """This process and every process in its session (gunicorn's workers, nginx's)."""
        if self.proc is None:
            return []
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2 :].split()[3]) == self.proc.pid:
                found.append(int(entry.name))
        return found

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total


def gunicorn(
    env: dict[str, str], port: int, workdir: Path, name: str, *, wait: bool = True, nice: int = 0
) -> Process:
    """gunicorn with the shipped gunicorn.conf.py on 127.0.0.1:port (started; healthy);
    `nice` lowers its CPU priority, as a stream instance's service would (README)."""
    server = Process(
        name,
        [
            *(["nice", "-n", str(nice)] if nice else []),
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "gunicorn.conf.py"),
        ],
        {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        workdir,
    )
    server.start()
    if wait:
        server.wait_healthy(port)
    return server


def nginx(
    port: int, upstream_ports: list[int], workdir: Path, stream_ports: list[int] | None = None
) -> Process:
    """Debian's nginx from deploy/nginx.conf on 127.0.0.1:port, in front of the upstreams
    (the event streams to `stream_ports` when given)."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx)")
    state = workdir / "nginx"
    state.mkdir(parents=True, exist_ok=True)
    conf = state / "nginx.conf"
    conf.write_text(
        render_nginx(
            f"127.0.0.1:{port}",
            [f"127.0.0.1:{p}" for p in upstream_ports],
            state,
            stream_upstreams=[f"127.0.0.1:{p}" for p in stream_ports] if stream_ports else None,
        )
    )
    command = [binary, "-p", str(state), "-c", str(conf), "-e", str(state / "error.log")]
    check = subprocess.run(
        [*command, "-t", "-q"], capture_output=True, text=True, check=False, cwd=state
    )
    if check.returncode != 0:
        raise RuntimeError("nginx -t refused deploy/nginx.conf:\n" + check.stderr)
    server = Process("nginx", [*command, "-g", "daemon off;"], dict(os.environ), workdir)
    server.start()
    assert server.proc is not None
    _wait_healthy(server.proc, port, "nginx", server.log)
    return server


def _cookies(resp: http.client.HTTPResponse) -> str:
    """Every cookie an answer sets (the session, and any other), as a Cookie header."""
    return "; ".join(v.split(";")[0] for v in resp.msg.get_all("Set-Cookie") or [])


def login_cookie(port: int, username: str, password: str) -> str:
    """Log in to the console as a browser would (CSRF included); the session cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", "/admin/login")
        resp = conn.getresponse()
        html = resp.read().decode()
        cookie = _cookies(resp)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert token, "no CSRF token on the login page"
        body = urlencode({"csrf_token": token.group(1), "username": username, "password": password})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
        conn.request("POST", "/admin/login", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status in (302, 303), f"the login answered {resp.status}"
        return _cookies(resp)
    finally:
        conn.close()
