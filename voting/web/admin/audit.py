"""Exports (results CSV, full JSON), the audit log, and checking an export file."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import make_response, render_template, request
from flask.typing import ResponseReturnValue

from voting.domain.errors import InvalidRequest
from voting.services import audit, exports, verification
from voting.web.admin.blueprint import actor, bp

# Entries the audit page lists at most, newest first.
AUDIT_PAGE = 500


@bp.post("/polls/<slug>/export.json")
def export_json(slug: str) -> ResponseReturnValue:
    data = exports.export_bytes(exports.export_poll(slug, actor=actor()))
    response = make_response(data)
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    # The digest `voting export` prints, so the downloaded file can be checked byte for byte.
    response.headers["X-Content-SHA256"] = exports.sha256_hex(data)
    response.headers["Content-Disposition"] = f'attachment; filename="{slug}-export.json"'
    return response


@bp.post("/polls/<slug>/results.csv")
def export_csv(slug: str) -> ResponseReturnValue:
    # A byte-order mark so spreadsheet programs read the titles as UTF-8.
    text = "\ufeff" + exports.results_csv(slug, actor=actor())
    response = make_response(text)
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{slug}-results.csv"'
    return response


def readable(value: Any) -> str:
    """An audit detail as a person reads it: yes/no, lists without brackets, "-" for none."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')} {readable(v)}" for k, v in value.items())
    return str(value)


@bp.get("/audit")
def audit_log() -> ResponseReturnValue:
    entries = audit.all_entries()
    problems = audit.verify_chain(entries)
    poll_filter = request.args.get("poll") or None
    shown = [e for e in entries if poll_filter is None or e["poll"] == poll_filter]
    shown.reverse()
    for entry in shown:
        entry["moment"] = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
        try:
            detail = json.loads(entry["detail"])
        except ValueError:
            detail = entry["detail"]
        entry["detail_text"] = (
            "; ".join(f"{k.replace('_', ' ')}: {readable(v)}" for k, v in detail.items())
            if isinstance(detail, dict)
            else readable(detail)
        )
    return render_template(
        "admin/audit.html",
        entries=shown[:AUDIT_PAGE],
        total=len(shown),
        chain_length=len(entries),
        problems=problems,
        poll_filter=poll_filter,
        page_size=AUDIT_PAGE,
    )


@bp.post("/audit/verify-export")
def verify_export() -> ResponseReturnValue:
    """`voting verify` from the browser: the same checks, item by item, on an uploaded export.

    A pure computation on the uploaded files; nothing is written, so nothing is audited.
    """
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidRequest("Choose an export file (the JSON from “Download the full export”).")
    data = upload.read()
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise InvalidRequest(f"{upload.filename} is not a JSON export.") from None
    if not isinstance(doc, dict):
        raise InvalidRequest(f"{upload.filename} is not a JSON export (not a JSON object).")
    board_upload = request.files.get("board")
    board = None
    if board_upload is not None and board_upload.filename:
        try:
            board = verification.read_board(board_upload.read().decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise InvalidRequest(f"{board_upload.filename} is not a UTF-8 CSV file.") from None
    checks = verification.check_export(doc, board)
    problems = verification.problems_of(checks)
    return render_template(
        "admin/verify_result.html",
        filename=upload.filename,
        sha256=exports.sha256_hex(data),
        checks=checks,
        problems=problems,
        ballots=len(doc.get("ballots") or []),
        entries=len(doc.get("audit") or []),
        poll=(doc.get("poll") or {}).get("slug"),
    ), 200 if not problems else 422
