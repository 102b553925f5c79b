"""docs/runbook.md names only commands that exist: each `voting` command and option is in
`voting … --help`, and every other program it names is exercised by a test."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support import TEST_SECRET
from voting.__main__ import cli

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "docs" / "runbook.md"
GROUPS = {"polls", "tokens", "projects", "roster", "audit", "admin", "db"}
# Every program the runbook names besides `voting`, and the test that runs it for real.
EXERCISED = {
    "curl": ("tests/test_metrics.py", "Authorization"),  # /metrics with and without the token
    "psql": ("tests/test_backup.py", "CREATE DATABASE"),
    "pg_restore": ("tests/test_backup.py", '"pg_restore", "--no-owner", "--dbname"'),
    "redis-cli": ("tests/test_faults.py", '"REPLICAOF", "NO", "ONE"'),
    "gunicorn": ("tests/fault_support.py", '"-c", str(ROOT / "gunicorn.conf.py")'),
}


def commands() -> list[list[str]]:
    """Every command line in the runbook: lines of its sh blocks, and inline `voting …` spans."""
    text = RUNBOOK.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        found += [shlex.split(line) for line in block.splitlines() if line.strip()]
    prose = re.sub(r"```sh\n.*?```", "", text, flags=re.DOTALL)
    found += [shlex.split(span) for span in re.findall(r"`(voting [^`]+)`", prose)]
    return found


def test_the_runbook_covers_the_day_and_every_emergency() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    for heading in ("The week before", "The day before", "One hour before", "During", "After"):
        assert f"## {heading}" in text
    for topic in (
        "Size it", "Rehearse", "Back up", "QR cards", "Redis dies", "PostgreSQL dies",
        "An instance", "The network dies", "wrong base URL", "leaked overlay key",
        "lost a card", "disputed result",
    ):  # fmt: skip
        assert topic in text, topic
    assert len(commands()) >= 30


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], str]:
    env = {
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('runbook')}/help.db",
        "REDIS_URL": "",
    }
    runner = CliRunner(env=env)
    seen: dict[tuple[str, ...], str] = {}
    for line in commands():
        if line[0] != "voting":
            continue
        path = tuple(line[1:3] if line[1] in GROUPS else line[1:2])
        if path not in seen:
            result = runner.invoke(cli, [*path, "--help"], prog_name="voting")
            assert result.exit_code == 0, (path, result.output)
            seen[path] = result.output
    return seen


def test_every_voting_command_and_option_in_the_runbook_exists(
    helps: dict[tuple[str, ...], str],
) -> None:
    checked = 0
    for line in commands():
        if line[0] != "voting":
            continue
        path = tuple(line[1:3] if line[1] in GROUPS else line[1:2])
        usage = helps[path]
        assert f"Usage: voting {' '.join(path)}" in usage, (line, usage)
        for word in line:
            if word.startswith("--"):
                option = word.split("=", 1)[0]
                assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", usage), (
                    f"{' '.join(line)}: {option} is not an option of voting {' '.join(path)}"
                )
        checked += 1
    assert checked >= 25


def test_every_other_program_in_the_runbook_is_exercised_by_a_test() -> None:
    others = {line[0] for line in commands() if line[0] != "voting"}
    assert others <= set(EXERCISED), f"not exercised by any test: {others - set(EXERCISED)}"
    for program, (test_file, marker) in EXERCISED.items():
        assert marker in (ROOT / test_file).read_text(encoding="utf-8"), program
