"""HTTP rules around every request: bodies checked before the rate limiter, headers settled after.

`init_app` runs before flask-limiter's (create_app), and Flask runs before-request hooks in
the order they were added and after-request hooks in reverse, so these see a request first
and its answer last:

- a body is limited to MAX_BODY_LENGTH (256 KiB: a ballot or a form is a few KB) except
  on the console's uploads, which keep MAX_CONTENT_LENGTH (the cap for every body); an 8 MB url-encoded form cost
  werkzeug seconds of CPU to parse, on any form route;
- a chunked body is read (up to that limit, else 413; werkzeug cut it short silently,
  so 10 MB got 400) before anything parses it: the ballot limit's key function reads
  the body, and an error raised there would make flask-limiter believe its storage down;
- JSON nested too deeply for the parser is a 400, like any other JSON it cannot read;
- `Retry-After` is on 429 and 503 answers only, with the value the app chose
  (flask-limiter adds its own window's reset to every answer, and raised the 503's);
- a redirect never points at a host that is not trusted (werkzeug's slash-merging
  redirects are built from the Host header): such a Location is made relative.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, current_app, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wrappers import Response

RETRY_STATUSES = frozenset({429, 503})
# The routes that take files (project and roster imports, the export check).
UPLOADS = frozenset({"admin.import_projects", "admin.import_roster", "admin.verify_export"})


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a body nested too deeply is unreadable JSON (400), not a crash."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            # request.get_json turns a ValueError into 400 invalid_request (or None if silent).
            raise ValueError("The JSON is nested too deeply.") from None


def ask_to_retry(response: Response, seconds: int) -> Response:
    """Give a 429 or 503 answer its Retry-After, which nothing after the view overrides."""
    g.retry_after = seconds
    response.headers["Retry-After"] = str(seconds)
    return response


def _limit_body() -> None:
    if request.endpoint not in UPLOADS:  # MAX_CONTENT_LENGTH stays the cap for every body
        limits = [current_app.config["MAX_BODY_LENGTH"], current_app.config["MAX_CONTENT_LENGTH"]]
        request.max_content_length = min(int(n) for n in limits if n is not None)
    # A chunked body has no Content-Length for werkzeug to check up front, and werkzeug's
    # stream stops quietly at the limit (the body arrived cut short, a 400 at best). Read
    # it here, cached for get_json and the form parser, and refuse it if more was coming.
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        limit = request.max_content_length
        data = request.get_data(cache=True)
        if limit is not None and len(data) >= limit and request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()


def trusted_hosts() -> list[str]:
    """BASE_URL's host and TRUSTED_HOSTS: the only hosts an absolute redirect may name."""
    hosts = [urlsplit(str(current_app.config["BASE_URL"])).hostname or ""]
    hosts.extend(current_app.config.get("TRUSTED_HOSTS") or [])
    return [h for h in hosts if h]


def _settle(response: Response) -> Response:
    if response.status_code in RETRY_STATUSES:
        wanted = g.get("retry_after")
        if wanted is not None:
            response.headers["Retry-After"] = str(wanted)
    else:
        response.headers.pop("Retry-After", None)
    location = response.headers.get("Location")
    if location and 300 <= response.status_code < 400:
        parts = urlsplit(location)
        if parts.netloc and not host_is_trusted(parts.netloc, trusted_hosts()):
            # "/" + the path without leading slashes: never a scheme-relative //host.
            path = "/" + parts.path.lstrip("/\\")
            response.headers["Location"] = urlunsplit(("", "", path, parts.query, parts.fragment))
    return response


def check_uploads(app: Flask) -> None:
    """Every endpoint named in UPLOADS exists (call once the blueprints are registered)."""
    missing = UPLOADS - {rule.endpoint for rule in app.url_map.iter_rules()}
    if missing:
        raise LookupError(f"protocol.UPLOADS names routes that do not exist: {sorted(missing)}")


def init_app(app: Flask) -> None:
    """Install the rules; call before limiter.init_app so they wrap the limiter's hooks."""
    app.json = JSONProvider(app)
    app.before_request(_limit_body)
    app.after_request(_settle)
