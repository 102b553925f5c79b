"""Voter tokens never reach gunicorn's logs (DESIGN.md rule 3)."""

from __future__ import annotations

import logging
import runpy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config

from tests.gunicorn_kit import gunicorn, raw_request, server_env, status_of
from voting.logs import REDACTED, RedactingLogger, redact

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "WzEsIm9DTm1wU0pPR2lXRjBhUkd6X3RQT1EiXQ.8RZ0eW3oJ3C-zK1bW2sYcBqj0dM"


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"GET /v/{TOKEN} HTTP/1.1", f"GET /v/{REDACTED} HTTP/1.1"),
        (f"/v/{TOKEN}?utm=1", f"/v/{REDACTED}?utm=1"),
        (f"https://vote.example/v/{TOKEN}", f"https://vote.example/v/{REDACTED}"),
        (f"/login?next=%2Fv%2F{TOKEN}", f"/login?next={REDACTED}"),
        (f"GET /%76/{TOKEN} HTTP/1.1", f"GET /%76/{REDACTED} HTTP/1.1"),
        (f"GET /v%2f{TOKEN} HTTP/1.1", f"GET /{REDACTED} HTTP/1.1"),
        (f"GET /v/./{TOKEN} HTTP/1.1", f"GET /v/{REDACTED}/{REDACTED} HTTP/1.1"),
        (f"GET /v/{TOKEN.replace('.', '%2E')} HTTP/1.1", f"GET /v/{REDACTED} HTTP/1.1"),
        ("GET /static/app.css?v=3f2a9c HTTP/1.1", "GET /static/app.css?v=3f2a9c HTTP/1.1"),
        (
            'File "/x/sqlalchemy/engine/base.py", line 9',
            'File "/x/sqlalchemy/engine/base.py", line 9',
        ),
        (f"/p/x?token={TOKEN}&a=1", f"/p/x?token={REDACTED}&a=1"),
        ("POST /api/polls/x/ballots HTTP/1.1", "POST /api/polls/x/ballots HTTP/1.1"),
        (
            "ratelimit 5 per 1 minute (token:oCNmpSJOGiWF0aRGz_tPOQ) exceeded at endpoint: api.cast",
            f"ratelimit 5 per 1 minute (token:{REDACTED}) exceeded at endpoint: api.cast",
        ),
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


# -- Must show 1 (issue 15): every spelling of a voter link, against a real gunicorn -------

# Each spelling of /v/<token> the attack run tried, and percent-encoded and case variants.
SPELLINGS = [
    "/v/{t}",
    "/%76/{t}",
    "/%56/{t}",
    "/V/{t}",
    "/v%2f{t}",
    "/v%2F{t}",
    "/V%2F{t}",
    "/%76%2f{t}",
    "/v//{t}",
    "/v///{t}",
    "/v/./{t}",
    "/./v/{t}",
    "/v/../v/{t}",
    "/v/{t}/",
    "/v/{t}?utm_source=mail",
    "/v/{dot}",
    "/v/{encoded}",
    "/%2576/{t}",
    "/v;x/{t}",
    "http://vote.test/v/{t}",
    "/p/demo?token={t}",
    "/admin/login?next=%2Fv%2F{t}",
]


def _spelled(spelling: str, token: str) -> str:
    return spelling.format(
        t=token,
        dot=token.replace(".", "%2E"),
        encoded="".join(f"%{ord(c):02X}" for c in token),
    )


def test_no_spelling_of_a_voter_link_reaches_gunicorns_logs(
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    base_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    slug = make_poll()
    tokens = mint(slug, len(SPELLINGS) + 2)
    env = server_env(str(base_config["SQLALCHEMY_DATABASE_URI"]))
    statuses: dict[str, int] = {}
    with gunicorn(env, tmp_path) as served:
        for spelling, token in zip(SPELLINGS, tokens, strict=False):
            target = _spelled(spelling, token)
            answer = raw_request(served, f"GET {target} HTTP/1.1\r\nHost: vote.test")
            statuses[spelling] = status_of(answer)
        # The token in a referer, and a request line gunicorn itself refuses.
        referer, refused = tokens[-2:]
        raw_request(
            served,
            f"GET /p/{slug} HTTP/1.1\r\nHost: vote.test\r\nReferer: http://vote.test/v/{referer}",
        )
        raw_request(served, f"GET /v/{refused} HTTP/9.9\r\nHost: vote.test")
        served.stop()
        text = served.logs()
    # The spellings were answered (the canonical link and two others as a voter link),
    # and each answered request was logged.
    assert statuses["/v/{t}"] == 303 and statuses["/%76/{t}"] == 303, statuses
    assert 0 not in statuses.values(), statuses
    assert text.count('"GET ') >= len(SPELLINGS) + 1
    for token in tokens:
        payload, _, signature = token.partition(".")
        for secret in (token, payload, signature):
            assert secret not in text, f"{secret} is in gunicorn's logs"
