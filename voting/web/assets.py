"""Static files under content-hashed URLs, so browsers may keep them for a year.

`static_url("style.css")` gives `/static/style.css?v=<hash of the file>`: a new deploy
changes the hash, hence the URL, so a long max-age never serves a stale file. A request
whose `v` matches the file's current hash is answered `immutable` for a year; any other
(an old hash, none at all) must revalidate.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Response, current_app, request, url_for

ONE_YEAR = 60 * 60 * 24 * 365
_digests: dict[tuple[str, int, int], str] = {}


def file_digest(filename: str) -> str | None:
    """The first 10 hex digits of the file's SHA-256, or None when it does not exist."""
    folder = current_app.static_folder
    if folder is None:
        return None
    path = Path(folder, filename)
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    digest = _digests.get(key)
    if digest is None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        _digests[key] = digest
    return digest


def static_url(filename: str) -> str:
    """The cache-busting URL of a static file."""
    return url_for("static", filename=filename, v=file_digest(filename))


def cache_static(response: Response) -> Response:
    """A year of caching for a hashed static URL whose hash is current."""
    if request.endpoint != "static" or response.status_code not in (200, 304):
        return response
    wanted = request.args.get("v")
    filename = (request.view_args or {}).get("filename", "")
    if wanted and wanted == file_digest(filename):
        response.cache_control.public = True
        response.cache_control.max_age = ONE_YEAR
        response.cache_control.immutable = True
        response.cache_control.no_cache = None
    return response
