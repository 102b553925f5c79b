"""Logs that never hold a voter token (DESIGN.md rule 3).

A token can reach a log through the request line in any spelling (/v/<token>, /%76/<token>,
/v%2f<token>, /v//<token>, /v/./<token>), a referer, a `token=` query parameter or the voter
cookie. `redact` scrubs a line of text: every path or query segment that holds a signed value
(as itsdangerous writes one), once percent-decoded, and whatever follows /v/, token=, key= or
q=. `RedactingLogger` is the gunicorn logger (see gunicorn.conf.py) that applies it to every
access-log atom and, through a filter on the error log's handlers, to every error-log line,
the app's own loggers (voting, flask-limiter) included.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

from gunicorn.glogging import Logger

REDACTED = "[redacted]"

# The path segment after /v/ (also percent-encoded, as in a referer or a ?next= value),
# and the value of any token=... or key=... (overlay key) query parameter; and q=..., the
# search of a page: on the receipt board it is a receipt, which beside the client's address
# would tie a person to their ballot (rule 4).
# Also "token:<id>", the ballot limit's key, which flask-limiter logs when it is breached.
_TOKEN_RE = re.compile(
    r"(?P<keep>/v/|%2Fv%2F|[?&;](?:token|key|q)=|\btoken:)[^/?&#;\s\"')]+",
    re.IGNORECASE,
)
# A signed value as itsdangerous writes it (voter tokens, overlay keys): a base64url payload
# (a leading "." marks a compressed one), a dot, and a base64url signature (27 characters
# for the default HMAC-SHA1). Searched for in each segment after percent-decoding, so no
# spelling of the path (/%76/..., /v%2f..., a %2E for the dot) carries a token past it.
_SIGNED_RE = re.compile(r"\.?[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}")
# A run of text between the separators of paths, queries, cookies and quoted log fields,
# long enough to hold a signed value: at least 31 characters (10, the dot, 20), and
# percent-decoding only shortens a segment, so a shorter one never holds a token. A request
# line like "POST /api/polls/x/ballots HTTP/1.1" then costs one regex pass and no callback.
_SEGMENT_RE = re.compile(r"[^/?&#;=,\s\"'<>]{31,}")
# Header and environ atoms whose whole value is secret (the voter cookie, credentials).
_SECRET_ATOM_RE = re.compile(r"^\{(?:http_)?(?:cookie|authorization|set-cookie)\}[ieo]$")
# The app's loggers, written to gunicorn's error log (through the same filter) at its level.
APP_LOGGERS = ("voting", "flask-limiter")


def _decoded(segment: str) -> str:
    """The segment percent-decoded until it stops changing (double encoding included)."""
    for _ in range(3):
        decoded = unquote(segment)
        if decoded == segment:
            break
        segment = decoded
    return segment


def _scrub_segment(match: re.Match[str]) -> str:
    segment = match.group(0)
    return REDACTED if _SIGNED_RE.search(_decoded(segment)) else segment


def _might_hold_token(text: str) -> bool:
    lowered = text.lower()
    return any(mark in lowered for mark in ("/v/", "%2fv%2f", "token=", "token:", "key=", "q="))


def redact(text: str) -> str:
    """The text with every voter token (and overlay key, and searched receipt) redacted."""
    text = _SEGMENT_RE.sub(_scrub_segment, text)
    if not _might_hold_token(text):
        return text
    return _TOKEN_RE.sub(lambda m: m.group("keep") + REDACTED, text)


class RedactingFilter(logging.Filter):
    """Scrubs tokens from a log record's message, arguments and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            # gunicorn's access log formats with a mapping of atoms.
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RedactingLogger(Logger):
    """gunicorn's Logger, with voter tokens removed from the access and error logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # Only the atoms the format names are ever written; scrub those and no others.
        self._format_atoms = format_atoms(cfg.access_log_format)
        # The access log is scrubbed atom by atom below; the error log holds free text
        # (for example "Error handling request /v/...") and is scrubbed by a filter on its
        # handlers, so that records of other loggers written there are scrubbed too.
        own = [h for h in self.error_log.handlers if getattr(h, "_gunicorn", False)]
        for handler in own:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
        # Without this the app's records have no handler under gunicorn: flask-limiter gives
        # its logger a NullHandler (its "falling back to in-memory storage" line was never
        # seen), and the rest went to stderr unscrubbed, past the error log file.
        for name in APP_LOGGERS:
            app_log = logging.getLogger(name)
            for handler in list(app_log.handlers):
                if getattr(handler, "_gunicorn", False):  # from a setup before a reload
                    app_log.removeHandler(handler)
            for handler in own:
                app_log.addHandler(handler)
            app_log.setLevel(self.loglevel)
            app_log.propagate = False

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in self._format_atoms:
            value = atoms.get(key)
            if not isinstance(value, str):
                continue
            if _SECRET_ATOM_RE.match(key):
                atoms[key] = REDACTED
            else:
                atoms[key] = redact(value)
        return atoms


def format_atoms(access_log_format: str) -> frozenset[str]:
    """The atom names an access-log format uses, spelled as gunicorn looks them up."""
    names = re.findall(r"%\((.*?)\)", access_log_format)
    return frozenset(n.lower() if n.startswith("{") else n for n in names)
