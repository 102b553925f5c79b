"""Logs that never hold a voter token (DESIGN.md rule 3).

Voter links look like /v/<token>; a token can also reach a log through a referer, a
`token=` query parameter or the voter cookie. `redact` scrubs a line of text, and
`RedactingLogger` is the gunicorn logger (see gunicorn.conf.py) that applies it to every
access-log atom and, through a logging filter, to every error-log message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

REDACTED = "[redacted]"

# The path segment after /v/ (also percent-encoded, as in a referer or a ?next= value),
# and the value of any token=... or key=... (overlay key) query parameter; and q=..., the
# search of a page: on the receipt board it is a receipt, which beside the client's address
# would tie a person to their ballot (rule 4).
_TOKEN_RE = re.compile(
    r"(?P<keep>/v/|%2Fv%2F|[?&;](?:token|key|q)=)[^/?&#;\s\"']+",
    re.IGNORECASE,
)
# Header and environ atoms whose whole value is secret (the voter cookie, credentials).
_SECRET_ATOM_RE = re.compile(r"^\{(?:http_)?(?:cookie|authorization|set-cookie)\}[ieo]$")


def _might_hold_token(text: str) -> bool:
    lowered = text.lower()
    return any(mark in lowered for mark in ("/v/", "%2fv%2f", "token=", "key=", "q="))


def redact(text: str) -> str:
    """The text with every voter token replaced by [redacted]."""
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
        # (for example "Error handling request /v/...") and is scrubbed by a filter.
        if not any(isinstance(f, RedactingFilter) for f in self.error_log.filters):
            self.error_log.addFilter(RedactingFilter())

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
