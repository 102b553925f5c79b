"""Backups: a copy of the whole database (pg_dump, or SQLite's online backup), audited first."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from voting.database import atomic, begin_write
from voting.domain.errors import VotingError
from voting.extensions import db
from voting.services import audit

PG_DUMP_FILE = "database.dump"
SQLITE_FILE = "database.sqlite3"


class BackupFailed(VotingError):
    code = "backup_failed"
    status = 500
    message = "The backup could not be made."


@atomic
def _record(actor: str, target: str) -> None:
    begin_write()
    audit.record(actor, "backup", None, file=target)
    db.session.commit()


def copy_database(folder: Path, *, actor: str) -> Path:
    """Write the whole database into `folder`; the file written.

    The audit entry is committed first, so the copy holds the record of its own making.
    PostgreSQL: `pg_dump --format=custom` (restore with pg_restore). SQLite: the online
    backup API, a consistent copy even while the service writes.
    """
    url = make_url(db.engine.url)
    folder.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "postgresql":
        target = folder / PG_DUMP_FILE
        _record(actor, target.name)
        _pg_dump(url.set(drivername="postgresql"), target)
        return target
    if url.get_backend_name() == "sqlite" and url.database:
        target = folder / SQLITE_FILE
        _record(actor, target.name)
        source = sqlite3.connect(url.database)
        copy = sqlite3.connect(target)
        try:
            with copy:
                source.backup(copy)
        finally:
            copy.close()
            source.close()
        return target
    raise BackupFailed(f"No backup is known for the database {url.get_backend_name()!r}.")


def _pg_dump(url: URL, target: Path) -> None:
    binary = shutil.which("pg_dump")
    if binary is None:
        raise BackupFailed("pg_dump is not installed (apt-get install postgresql-client).")
    # The password goes in the environment, not the command line (`ps` shows that).
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    dsn = url.set(password=None).render_as_string(hide_password=False)
    result = subprocess.run(  # noqa: S603 (our own arguments, no shell)
        [binary, "--format=custom", "--no-owner", "--file", str(target), "--dbname", dsn],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if result.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupFailed(f"pg_dump failed: {result.stderr.strip()}")
