"""Issue 15, Must show 3: hostile bodies to every JSON and form endpoint give 4xx, never 5xx.

A table of bodies (nesting 10 to 100,000 deep, huge numbers, invalid UTF-8, duplicate
keys, NaN) goes to every POST route in app.url_map as JSON, to every form as the value of
each field the forms read, and to the uploads as files, from an organizer with a valid
CSRF token (so the console's forms parse what they get). Over a real gunicorn the same bodies go chunked, and a chunked or
declared 10 MB body gets 413 on every route.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.admin_support import Console
from tests.gunicorn_kit import gunicorn, raw_request, server_env, status_of
from tests.route_kit import Route, Samples, routes
from voting.web import protocol

DEPTHS = [10, 100, 1_000, 10_000, 100_000]


def _nested(depth: int) -> bytes:
    return b'{"token": ' + b"[" * depth + b"]" * depth + b', "choices": ["flood-watch"]}'


BODIES: dict[str, bytes] = {
    **{f"nested {d}": _nested(d) for d in DEPTHS},
    "nested objects 40000": b'{"a":' * 40_000 + b"1" + b"}" * 40_000,
    "huge integer": b'{"token": ' + b"9" * 100_000 + b', "choices": [1]}',
    "huge float": b'{"token": 1e999999, "choices": [-1e999999]}',
    "5000-digit choice": b'{"token": "x", "choices": [' + b"7" * 5_000 + b"]}",
    "NaN and Infinity": b'{"token": NaN, "choices": [Infinity, -Infinity]}',
    "invalid UTF-8": b'{"token": "\xff\xfe\xc3", "choices": ["\xed\xa0\x80"]}',
    "lone surrogate": b'{"token": "\\ud800", "choices": ["\\udfff"]}',
    "duplicate keys": b'{"token": "a", "token": ["b"], "choices": [], "choices": {"x": 1}}',
    "not an object": b'[["token"], {"choices": null}]',
    "truncated": b'{"token": "abc", "choices": ["flo',
}
TEN_MB = b'{"token": "' + b"x" * (10 * 1024 * 1024) + b'"}'


def _posts(app: Flask, samples: Samples) -> list[Route]:
    return [r for r in routes(app, samples) if "POST" in r.methods]


@functools.cache
def _form_fields(csrf_token: str, body: bytes) -> bytes:
    """The body as the value of every field the app's forms read, url-encoded once."""
    text = body.decode("utf-8", "replace")
    fields = ("username", "password", "code", "choice", "data", "filename", "title", "slug")
    return urlencode({"csrf_token": csrf_token, **dict.fromkeys(fields, text)}).encode()


def _send(console: Console, route: Route, encoding: str, body: bytes) -> int:
    client = console.client
    if encoding == "json":
        response = client.post(route.url, data=body, content_type="application/json")
    elif encoding == "form fields":
        response = client.post(
            route.url,
            data=_form_fields(console.token, body),
            content_type="application/x-www-form-urlencoded",
        )
    else:  # uploaded files, as the console's project import and export check take them
        boundary, data = encode_multipart(
            {
                "csrf_token": console.token,
                "file": FileStorage(io.BytesIO(body), "projects.json"),
                "board": FileStorage(io.BytesIO(body), "board.csv"),
            }
        )
        response = client.post(
            route.url, data=data, content_type=f"multipart/form-data; boundary={boundary}"
        )
    return response.status_code


@pytest.fixture
def console(app: Flask, make_poll: Callable[..., str]) -> tuple[Console, Samples]:
    samples = Samples.make(app, make_poll(eligibility="invite"))
    return Console.login(app, app.test_client()), samples


def test_hostile_bodies_to_every_post_route_never_give_5xx(
    app: Flask, console: tuple[Console, Samples]
) -> None:
    organizer, samples = console
    posts = _posts(app, samples)
    assert {"api.cast", "public.cast", "claim.claim", "admin.import_projects"} <= {
        r.endpoint for r in posts
    }
    table: dict[tuple[str, str, str], int] = {}
    for route in posts:
        # JSON to every route; the forms' fields to every form; files to the uploads.
        encodings = ["json"]
        if not route.url.startswith("/api/"):
            encodings.append("form fields")
        if route.endpoint in protocol.UPLOADS:
            encodings.append("files")
        for name, body in BODIES.items():
            for encoding in encodings:
                table[(route.endpoint, name, encoding)] = _send(organizer, route, encoding, body)
    failures = {key: status for key, status in table.items() if status >= 500}
    assert not failures, failures
    # The ballot API reads each of them as a bad request (400), never as a ballot.
    for name in BODIES:
        assert table[("api.cast", name, "json")] in (400, 403), name
    assert table[("api.cast", "nested 100000", "json")] == 400
    print(f"\n{len(table)} hostile requests over {len(posts)} POST routes: 0 answers of 5xx")


def test_a_declared_10_mb_body_gets_413_on_every_post_route(
    app: Flask, console: tuple[Console, Samples]
) -> None:
    organizer, samples = console
    for route in _posts(app, samples):
        response = organizer.client.post(route.url, data=TEN_MB, content_type="application/json")
        assert response.status_code == 413, route.url
        if route.url.startswith("/api/"):
            assert response.get_json()["error"] == "too_large"


def test_only_uploads_take_more_than_a_form_needs(
    app: Flask, console: tuple[Console, Samples]
) -> None:
    organizer, samples = console
    big = b'{"token": "' + b"x" * 300 * 1024 + b'"}'  # 300 KB: no ballot or form is that long
    for route in _posts(app, samples):
        response = organizer.client.post(route.url, data=big, content_type="application/json")
        if route.endpoint in protocol.UPLOADS:
            assert response.status_code != 413, route.url
        else:
            assert response.status_code == 413, route.url
    ballot = organizer.client.post(
        f"/api/polls/{samples.slug}/ballots", data=big, content_type="application/json"
    )
    assert ballot.get_json()["message"] == "The request is too large: the limit is 256 KB."
    csv = b"slug,title,team,category,theme,repo,video\n" + b"x,y,z,Build,Global Impact,,\n" * 12_000
    assert len(csv) > 300 * 1024
    boundary, data = encode_multipart(
        {"csrf_token": organizer.token, "file": FileStorage(io.BytesIO(csv), "p.csv")}
    )
    upload = organizer.client.post(
        "/admin/projects/import",
        data=data,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert upload.status_code < 500 and upload.status_code != 413


def _chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def test_chunked_bodies_over_gunicorn(
    app: Flask,
    make_poll: Callable[..., str],
    base_config: dict[str, Any],
    redis_url: str,
    tmp_path: Path,
) -> None:
    samples = Samples.make(app, make_poll())
    env = server_env(str(base_config["SQLALCHEMY_DATABASE_URI"]), REDIS_URL=redis_url)
    posts = _posts(app, samples)
    small: dict[tuple[str, str], int] = {}
    large: dict[str, int] = {}
    with gunicorn(env, tmp_path, loglevel="info") as served:
        for route in posts:
            for name in ("nested 100000", "invalid UTF-8", "huge integer"):
                head = (
                    f"POST {route.url} HTTP/1.1\r\nHost: vote.test\r\n"
                    "Content-Type: application/json\r\nTransfer-Encoding: chunked"
                )
                small[(route.endpoint, name)] = status_of(
                    raw_request(served, head, _chunked(BODIES[name]))
                )
            head = (
                f"POST {route.url} HTTP/1.1\r\nHost: vote.test\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked"
            )
            large[route.endpoint] = status_of(raw_request(served, head, _chunked(TEN_MB)))
        served.stop()
        errors = served.error_log.read_text()
    assert not {k: s for k, s in small.items() if s >= 500 or s == 0}, small
    assert small[("api.cast", "nested 100000")] == 400
    assert set(large.values()) == {413}, large
    # A body the limiter's key function could not read no longer looks like Redis failing.
    assert "falling back to in-memory storage" not in errors
    assert "Traceback" not in errors
