"""`voting demo` with the embedded defaults (no Redis): live updates in a single process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live_support import SSEClient, free_port, get_text, post_ballot, wait_until

# `voting demo` rebuilds instance/demo.db, so two demos at once would overwrite each other:
# under pytest-xdist one worker runs every demo test (CI uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("demo")

BIN = Path(sys.executable).parent


@pytest.mark.only_on(
    "sqlite",
    "voting demo runs on its own SQLite file whatever the suite's database: once, in the SQLite pass",
)
@pytest.mark.slow
def test_demo_shows_live_updates_without_redis(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL") and not k.startswith("VOTING_")
    }
    log_path = tmp_path / "demo.log"
    with log_path.open("w+") as log:
        demo = subprocess.Popen(
            [str(BIN / "voting"), "demo", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            assert wait_until(lambda: _up(base), timeout=60, interval=0.2), log_path.read_text()
            output = log_path.read_text()
            tokens = [link.rsplit("/", 1)[1] for link in re.findall(r"http://\S+/v/\S+", output)]
            overlay = re.search(r"Overlay: http://[^/]+(/overlay/\S+)", output)
            assert len(tokens) == 3 and overlay
            assert get_text(base + overlay.group(1))[0] == 200

            slug = "community-favorite"
            with SSEClient(f"{base}/api/polls/{slug}/events") as stream:
                first = stream.next()
                assert first.data["turnout"] == 0 and first.data["results_mode"] == "live"
                choice = first.data["results"][-1]["project"]
                assert post_ballot(base, slug, tokens[0], [choice]) == 201
                cast_at = time.monotonic()
                update = stream.wait_for(lambda e: e.data.get("turnout", 0) >= 1, 5)
                assert update.at - cast_at < 2
                votes = {r["project"]: r["votes"] for r in update.data["results"]}
                assert votes[choice] == 1 and int(update.id or 0) > int(first.id or 0)

                # The organizer closes from another process (the CLI): no Redis to tell the
                # demo, yet its open streams see it within a second or two (the reconcile).
                cli_env = {**env, "SECRET_KEY": "x" * 40, "DATABASE_URL": "sqlite:///demo.db"}
                subprocess.run(
                    [str(BIN / "voting"), "polls", "close", slug],
                    env=cli_env,
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
                closed_at = time.monotonic()
                closed = stream.wait_for(lambda e: e.data.get("status") == "closed", 10)
                assert closed.at - closed_at < 5
        finally:
            demo.terminate()
            demo.wait(timeout=15)


def _up(base: str) -> bool:
    try:
        return get_text(base + "/healthz")[0] == 200
    except OSError:
        return False
