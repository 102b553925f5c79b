"""HTTP rules around every request: bodies checked before the rate limiter, headers settled after.

`init_app` runs before flask-limiter's (create_app), and Flask runs before-request hooks in
the order they were added and after-request hooks in reverse, so these see a request first
and its answer last:

- a chunked body is read (up to MAX_CONTENT_LENGTH, else 413) before anything parses it;
  the ballot limit's key function reads the body, and an error raised there made
  flask-limiter believe its storage was down;
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
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wrappers import Response

RETRY_STATUSES = frozenset({429, 503})


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


def _read_streamed_body() -> None:
    # A chunked body has no Content-Length for werkzeug to check up front; reading it here
    # raises 413 past MAX_CONTENT_LENGTH, and caches it for get_json and the form parser.
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        request.get_data(cache=True)


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


def init_app(app: Flask) -> None:
    """Install the rules; call before limiter.init_app so they wrap the limiter's hooks."""
    app.json = JSONProvider(app)
    app.before_request(_read_streamed_body)
    app.after_request(_settle)
