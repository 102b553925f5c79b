"""`voting demo` seeds, prints its links and serves on 127.0.0.1; tokens stay out of its log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.live_support import free_port, wait_until
from voting.logs import redact

# `voting demo` rebuilds instance/demo.db, so two demos at once would overwrite each other:
# under pytest-xdist one worker runs every demo test (CI uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("demo")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) == 200
    except OSError:
        return False


@pytest.mark.only_on(
    "sqlite",
    "voting demo runs on its own SQLite file whatever the suite's database: once, in the SQLite pass",
)
def test_demo_serves_and_redacts_tokens(tmp_path: Path) -> None:
    port = free_port()
    voting = Path(sys.executable).parent / "voting"
    env = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")
    }
    log = (tmp_path / "demo.log").open("w+")
    proc = subprocess.Popen(
        [str(voting), "demo", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        base = f"http://127.0.0.1:{port}"
        # Until the demo serves (60 s: it migrates, seeds and hashes a password first, which
        # a shared machine can slow to tens of seconds).
        if not wait_until(lambda: _answers(base + "/healthz"), timeout=60, interval=0.2):
            raise AssertionError("demo did not answer: " + Path(log.name).read_text())
        output = Path(log.name).read_text()
        links = re.findall(r"http://127\.0\.0\.1:\d+/v/\S+", output)
        assert len(links) == 3
        assert (
            "user: organizer  password: " in output and "/overlay/community-favorite?key=" in output
        )
        with urllib.request.urlopen(base + "/", timeout=5) as r:
            assert "NumHack Community Favorite (demo)" in r.read().decode()
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(links[0], timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 303 and exc.headers["Location"] == "/p/community-favorite"
        token = links[0].rsplit("/", 1)[1]

        def served_log() -> str:
            text = Path(log.name).read_text()
            return text.split("Voter links", 1)[1].split("More voter links", 1)[1]

        # The server logs a request once it has answered it: wait for that line to be written.
        assert wait_until(lambda: "/v/" in served_log()), "the request was never logged"
        assert "/v/[redacted]" in served_log()
        assert token not in served_log()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_redact() -> None:
    assert redact("GET /v/abc.def HTTP/1.1") == "GET /v/[redacted] HTTP/1.1"
    assert redact("/overlay/x?key=abc&theme=dark") == "/overlay/x?key=[redacted]&theme=dark"
    assert redact("/p/slug/results") == "/p/slug/results"
