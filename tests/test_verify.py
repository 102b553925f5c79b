"""`voting verify` item by item: each edit to an export (or its board) fails its own check."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from tests.admin_support import Console, visible_text
from voting.domain import fingerprint as fp
from voting.services import ballots, polls
from voting.services.verification import check_export, read_board

Edit = Callable[[dict[str, Any]], None]
CHECKS = (
    "OK: the file is a voting-export/1 export",
    "OK: every ballot names only projects of the poll",
    "OK: the stated turnout equals the 4 ballots",
    "OK: the tie-break seed matches its hash",
    "OK: the ballots recount to the stated ranking",
    "OK: ballots (4) <= tokens issued (5)",
    "OK: ballots (4) = tokens used (4)",
    "OK: the 4 receipts (counted and superseded) are all different",
    "OK: the fingerprint is the SHA-256 of the poll's definition",
    "OK: the fingerprint is the one the audit log published last",
    "OK: the audit log's ",
)


@pytest.fixture
def exported(
    app: Flask,
    runner: FlaskCliRunner,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    tmp_path: Path,
) -> Path:
    """A revealed poll with four ballots (one token unused), exported by `voting export`."""
    slug = make_poll("cf", results_mode="live")
    tokens = mint(slug, 5)
    with app.app_context():
        for token, choice in zip(
            tokens, ["flood-watch", "flood-watch", "bias-lens", "tiny-tutor"], strict=False
        ):
            ballots.cast_ballot(slug, token, [choice])
        polls.withdraw_project(slug, "paper-trail", actor="ana")
        polls.close_poll(slug, actor="ana")
        polls.reveal(slug, actor="ana")
    out = tmp_path / "cf.json"
    result = runner.invoke(args=["export", slug, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def board_of(doc: dict[str, Any]) -> str:
    """The board's CSV as part A publishes it: receipt,choices,status, sorted by receipt."""
    rows = [(b["receipt"], ";".join(sorted(b["choices"])), "counted") for b in doc["ballots"]]
    rows += [
        (b["receipt"], ";".join(sorted(b["choices"])), "superseded")
        for b in doc.get("superseded", [])
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["receipt", "choices", "status"])
    writer.writerows(sorted(rows))
    return out.getvalue()


def verify(runner: FlaskCliRunner, *args: str) -> tuple[int, list[str]]:
    result = runner.invoke(args=["verify", *args])
    return result.exit_code, result.output.splitlines()


def test_export_writes_its_sha256_and_verify_lists_every_check(
    runner: FlaskCliRunner, exported: Path
) -> None:
    digest = hashlib.sha256(exported.read_bytes()).hexdigest()
    assert (exported.parent / "cf.json.sha256").read_text() == f"{digest}  cf.json\n"
    board = exported.parent / "board.csv"
    board.write_text(board_of(json.loads(exported.read_text())), encoding="utf-8")

    code, lines = verify(runner, str(exported), "--board", str(board))

    assert code == 0, lines
    assert lines[0] == f"SHA-256 of cf.json: {digest}"
    for expected in CHECKS:
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert "OK: the receipt board (4 counted, 0 superseded) equals the export" in lines
    assert "OK: the file's SHA-256 matches cf.json.sha256" in lines
    assert not any(line.startswith(("FAIL", "SKIP")) for line in lines)
    assert lines[-1].startswith("OK: 4 ballots recount to the stated tally")


def _edit_a_ballot(doc: dict[str, Any]) -> None:
    doc["ballots"][0]["choices"] = ["crop-doctor"]


def _edit_the_fingerprint(doc: dict[str, Any]) -> None:
    doc["poll"]["fingerprint"] = "0" * 64


def _edit_the_definition(doc: dict[str, Any]) -> None:
    doc["poll"]["definition"]["tokens_issued"] += 100


def _forge_a_consistent_definition(doc: dict[str, Any]) -> None:
    # Choices, definition and fingerprint all agree, but the audit log published another.
    doc["poll"]["choices"].append({"project": "paper-trail"})
    doc["poll"]["definition"]["choices"] = sorted(
        [*doc["poll"]["definition"]["choices"], "paper-trail"]
    )
    doc["poll"]["fingerprint"] = fp.fingerprint(doc["poll"]["definition"])


def _edit_the_audit_chain(doc: dict[str, Any]) -> None:
    doc["audit"][3]["detail"] = doc["audit"][3]["detail"].replace('"', "'")


def _use_more_tokens(doc: dict[str, Any]) -> None:
    doc["tokens"]["used"] = 5


def _issue_fewer_tokens(doc: dict[str, Any]) -> None:
    doc["tokens"]["issued"] = 3


def _drop_the_token_counts(doc: dict[str, Any]) -> None:
    del doc["tokens"]


def _repeat_a_receipt(doc: dict[str, Any]) -> None:
    doc["superseded"] = [{"receipt": doc["ballots"][1]["receipt"], "choices": ["bias-lens"]}]


@pytest.mark.parametrize(
    ("edit", "failure"),
    [
        (_edit_a_ballot, "FAIL: the ballots recount to the stated ranking"),
        (_edit_the_fingerprint, "FAIL: the fingerprint is the SHA-256 of the poll's definition"),
        (_edit_the_definition, "FAIL: the fingerprint is the SHA-256 of the poll's definition"),
        (
            _forge_a_consistent_definition,
            "FAIL: the fingerprint is the one the audit log published last",
        ),
        (_edit_the_audit_chain, "FAIL: the audit log's"),
        (_use_more_tokens, "FAIL: ballots (4) = tokens used (5)"),
        (_issue_fewer_tokens, "FAIL: ballots (4) <= tokens issued (3)"),
        (_drop_the_token_counts, "FAIL: ballots = tokens used"),
        (_repeat_a_receipt, "FAIL: the 5 receipts (counted and superseded) are all different"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_verify_fails_on_each_edit_with_its_own_check(
    runner: FlaskCliRunner, exported: Path, edit: Edit, failure: str
) -> None:
    doc = json.loads(exported.read_text(encoding="utf-8"))
    edit(doc)
    edited = exported.parent / "edited.json"
    edited.write_text(json.dumps(doc, indent=2), encoding="utf-8")

    code, lines = verify(runner, str(edited))

    assert code == 1
    failed = [line for line in lines if line.startswith("FAIL")]
    assert any(line.startswith(failure) for line in failed), lines
    assert failed[-1].startswith("FAIL: ") and "checks failed" in failed[-1]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda rows: rows[1].__setitem__(1, "crop-doctor"),
            "counted receipts whose choices differ",
        ),
        (lambda rows: rows.pop(2), "counted receipts missing from the board"),
        (
            lambda rows: rows.append(["ZZZZ-ZZZZ-ZZZZ", "bias-lens", "counted"]),
            "on the board but not in the export",
        ),
        (
            lambda rows: rows[1].__setitem__(2, "superseded"),
            "superseded receipts on the board but not in the export",
        ),
    ],
    ids=["choices", "missing", "extra", "status"],
)
def test_verify_fails_when_the_board_differs(
    runner: FlaskCliRunner, exported: Path, edit: Callable[[list[list[str]]], None], problem: str
) -> None:
    rows = list(csv.reader(io.StringIO(board_of(json.loads(exported.read_text())))))
    edit(rows)
    board = exported.parent / "board.csv"
    board.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")

    code, lines = verify(runner, str(exported), "--board", str(board))

    assert code == 1
    [line] = [x for x in lines if x.startswith("FAIL: the receipt board")]
    assert problem in line


def test_a_board_with_superseded_ballots_matches_the_exports_list() -> None:
    doc: dict[str, Any] = {
        "ballots": [{"receipt": "AAAA", "choices": ["b", "a"]}],
        "superseded": [{"receipt": "BBBB", "choices": ["c"]}],
    }
    board = read_board("\ufeffreceipt,choices,status\r\nAAAA,a;b,counted\r\nBBBB,c,superseded\r\n")
    assert board.counted == {"AAAA": ["a", "b"]} and board.superseded == {"BBBB": ["c"]}
    assert not read_board("receipt,status\n").counted
    assert read_board("receipt,status\n").problems == [
        "the board file does not start with receipt,choices,status"
    ]
    checks = check_export({"format": "voting-export/1", **doc, "poll": {}, "tally": {}}, board)
    assert checks[-1].ok and checks[-1].item.startswith(
        "the receipt board (1 counted, 1 superseded)"
    )


def test_a_file_changed_byte_for_byte_fails_its_digest_only(
    runner: FlaskCliRunner, exported: Path
) -> None:
    # Same JSON, other bytes: every content check passes, the published digest does not.
    exported.write_text(json.dumps(json.loads(exported.read_text())), encoding="utf-8")
    code, lines = verify(runner, str(exported))
    assert code == 1
    assert next(line for line in lines if line.startswith("FAIL")).startswith(
        "FAIL: the file's SHA-256 matches cf.json.sha256"
    )
    assert sum(1 for line in lines if line.startswith("FAIL")) == 2  # that check, and the total


def test_a_draft_export_skips_the_fingerprint_and_passes(
    app: Flask, runner: FlaskCliRunner, make_poll: Callable[..., str], tmp_path: Path
) -> None:
    slug = make_poll(open_=False)
    out = tmp_path / "draft.json"
    assert runner.invoke(args=["export", slug, "--out", str(out)]).exit_code == 0
    code, lines = verify(runner, str(out))
    assert code == 0, lines
    assert (
        "SKIP: the fingerprint is the SHA-256 of the poll's definition (the poll has not opened, so it has no fingerprint)"
        in lines
    )
    assert "OK: the fingerprint is the one the audit log published last" in lines


def test_verify_refuses_what_is_not_an_export(runner: FlaskCliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    result = runner.invoke(args=["verify", str(bad)])
    assert result.exit_code == 1 and "not a JSON object" in result.output
    bad.write_text('{"format": "other/1"}', encoding="utf-8")
    code, lines = verify(runner, str(bad))
    assert code == 1 and "FAIL: the file is an export (not a voting-export/1 document)" in lines


def test_the_console_download_sends_its_digest_and_the_check_page_lists_the_items(
    app: Flask, client: FlaskClient, exported: Path
) -> None:
    console = Console.login(app, client)
    download = console.post("/admin/polls/cf/export.json")
    body = download.get_data()
    assert download.headers["X-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    doc = json.loads(body)
    board = board_of(doc).encode()

    checked = console.post(
        "/admin/audit/verify-export",
        {"file": (io.BytesIO(body), "cf.json"), "board": (io.BytesIO(board), "board.csv")},
        content_type="multipart/form-data",
    )
    assert checked.status_code == 200
    text = visible_text(checked.get_data(as_text=True))
    assert hashlib.sha256(body).hexdigest() in text
    for expected in CHECKS:
        assert expected.replace(": ", " ", 1) in text, expected
    assert "OK the receipt board (4 counted, 0 superseded) equals the export" in text

    doc["poll"]["fingerprint"] = "f" * 64
    doctored = console.post(
        "/admin/audit/verify-export",
        {"file": (io.BytesIO(json.dumps(doc).encode()), "cf.json")},
        content_type="multipart/form-data",
    )
    assert doctored.status_code == 422
    text = visible_text(doctored.get_data(as_text=True))
    assert "FAIL the fingerprint is the SHA-256 of the poll's definition" in text
