"""Voter tokens never reach gunicorn's logs (DESIGN.md rule 3)."""

from __future__ import annotations

import logging
import runpy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from voting.logs import REDACTED, RedactingLogger, redact

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "WzEsIm9DTm1wU0pPR2lXRjBhUkd6X3RQT1EiXQ.8RZ0eW3oJ3C-zK1bW2sYcBqj0dM"


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"GET /v/{TOKEN} HTTP/1.1", f"GET /v/{REDACTED} HTTP/1.1"),
        (f"/v/{TOKEN}?utm=1", f"/v/{REDACTED}?utm=1"),
        (f"https://vote.example/v/{TOKEN}", f"https://vote.example/v/{REDACTED}"),
        (f"/login?next=%2Fv%2F{TOKEN}", f"/login?next=%2Fv%2F{REDACTED}"),
        (f"/p/x?token={TOKEN}&a=1", f"/p/x?token={REDACTED}&a=1"),
        ("POST /api/polls/x/ballots HTTP/1.1", "POST /api/polls/x/ballots HTTP/1.1"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def _logger(tmp_path: Path, extra_format: str) -> tuple[RedactingLogger, Path, Path]:
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    cfg = Config()
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg.set("access_log_format", settings["access_log_format"] + extra_format)
    cfg.set("accesslog", str(access))
    cfg.set("errorlog", str(errors))
    return RedactingLogger(cfg), access, errors


@pytest.mark.parametrize(
    "extra_format",
    ["", " %({Cookie}i)s %({referer}i)s %({raw_uri}e)s %({http_cookie}e)s %(f)s %(U)s %(q)s"],
)
def test_access_and_error_logs_hold_no_token(tmp_path: Path, extra_format: str) -> None:
    log, access, errors = _logger(tmp_path, extra_format)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/v/{TOKEN}",
        "PATH_INFO": f"/v/{TOKEN}",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": f"https://vote.example/v/{TOKEN}",
        "HTTP_COOKIE": f"vt_1={TOKEN}",
    }
    resp = SimpleNamespace(status="303 SEE OTHER", sent=0, headers=[("Set-Cookie", TOKEN)])
    req = SimpleNamespace(headers=[("COOKIE", f"vt_1={TOKEN}"), ("REFERER", f"/v/{TOKEN}")])
    log.access(resp, req, environ, timedelta(milliseconds=3))
    try:
        raise ValueError(f"bad request line /v/{TOKEN}")
    except ValueError:
        log.exception("Error handling request %s", f"/v/{TOKEN}")
    for handler in [*logging.getLogger("gunicorn.access").handlers, *log.error_log.handlers]:
        handler.flush()
    for logger in (log.access_log, log.error_log):
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
    text = access.read_text() + errors.read_text()
    assert f"/v/{REDACTED}" in access.read_text()
    assert "Error handling request" in errors.read_text()
    assert TOKEN not in text
