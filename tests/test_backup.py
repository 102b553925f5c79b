"""`voting backup`, and a restore into a fresh database: `voting verify` passes, same tally."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy.engine import make_url

from tests.support import TEST_SECRET
from voting import create_app, live
from voting.database import bind_migrations
from voting.extensions import db
from voting.services import polls


def _tally(doc: dict) -> dict[str, int]:
    return {row["project"]: row["votes"] for row in doc["results"]}


def test_backup_then_restore_into_a_fresh_database_verifies_with_the_same_tally(
    app: Flask,
    runner: FlaskCliRunner,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    database_url: str,
    is_postgres: bool,
    tmp_path: Path,
) -> None:
    slug = make_poll("backed-up", results_mode="hidden")
    client = app.test_client()
    picks = ["flood-watch", "coral-count", "flood-watch", "bias-lens", "flood-watch"] * 2
    for token, pick in zip(mint(slug, 10), picks, strict=True):
        assert (
            client.post(
                f"/api/polls/{slug}/ballots", json={"token": token, "choices": [pick]}
            ).status_code
            == 201
        )
    assert runner.invoke(args=["polls", "close", slug]).exit_code == 0
    with app.app_context():
        original = polls.results_view(polls.get_poll(slug), organizer=True)

    result = runner.invoke(args=["backup", "--out", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    export = tmp_path / "backup" / f"{slug}.json"
    assert (tmp_path / "backup" / f"{slug}.json.sha256").exists()
    verified = runner.invoke(args=["verify", str(export)])
    assert verified.exit_code == 0 and "OK:" in verified.output, verified.output

    # Restore into a fresh database, as the runbook says.
    if is_postgres:
        dump = tmp_path / "backup" / "database.dump"
        assert dump.exists() and "pg_restore" in result.output
        fresh = f"voting_restore_{secrets.token_hex(4)}"
        server = make_url(database_url).set(drivername="postgresql")
        admin_url = server.render_as_string(hide_password=False)
        subprocess.run(["psql", admin_url, "-q", "-c", f"CREATE DATABASE {fresh}"], check=True)
        restored_url = server.set(database=fresh).render_as_string(hide_password=False)
        subprocess.run(
            ["pg_restore", "--no-owner", "--dbname", restored_url, str(dump)],
            check=True,
            capture_output=True,
        )
    else:
        copy = tmp_path / "backup" / "database.sqlite3"
        assert copy.exists()
        target = tmp_path / "restored.db"
        shutil.copy(copy, target)
        restored_url = f"sqlite:///{target}"
    restored = create_app(
        {"TESTING": True, "SECRET_KEY": TEST_SECRET, "SQLALCHEMY_DATABASE_URI": restored_url,
         "HASH_KEY": "test-hash-key", "BASE_URL": "http://vote.test"}
    )  # fmt: skip
    bind_migrations(restored)  # what `voting db` does before its command runs
    try:
        on_restored = restored.test_cli_runner()
        assert on_restored.invoke(args=["db", "check"]).exit_code == 0
        assert on_restored.invoke(args=["audit", "verify"]).exit_code == 0
        again = tmp_path / "restored.json"
        assert on_restored.invoke(args=["export", slug, "--out", str(again)]).exit_code == 0
        checked = on_restored.invoke(args=["verify", str(again)])
        assert checked.exit_code == 0 and "OK:" in checked.output, checked.output
        with restored.app_context():
            after = polls.results_view(polls.get_poll(slug), organizer=True)
    finally:
        live.shutdown(restored)
        with restored.app_context():
            db.session.remove()
            db.engine.dispose()
        if is_postgres:
            subprocess.run(["psql", admin_url, "-q", "-c", f"DROP DATABASE {fresh}"], check=True)
    assert _tally(after) == _tally(original) and after["turnout"] == original["turnout"] == 10
    assert _tally(json.loads(export.read_text())["tally"]) == _tally(
        original
    )  # the backup's export
    print(f"\nbackup and restore: {after['turnout']} ballots, tally {_tally(after)} on both")
