"""Plain helpers the tests share: constants, a served app, poll and token factories, screenshots.

Fixtures and hooks live in conftest.py; everything a test module imports lives here.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from werkzeug.serving import make_server

from voting.extensions import db
from voting.services import issuing, polls, projects

# Copies of ../shared/data, so a fresh clone tests without anything beside it.
SHARED_DATA = Path(__file__).resolve().parent / "data"
REQUIRE_SERVICES = os.environ.get("VOTING_REQUIRE_SERVICES") == "1"
TEST_SECRET = "test-secret-key-" + "x" * 32

# Set it (e.g. VOTING_SCREENSHOTS_DIR=docs/screenshots) to refresh the README's pictures;
# without it every screenshot goes to the test's temporary folder and the tree stays as it is.
SCREENSHOTS_VARIABLE = "VOTING_SCREENSHOTS_DIR"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A phone's browser context: the `phone` fixture and phone_kit.phone_context.
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def need_service(reason: str) -> None:
    """Skip locally, fail in CI: a test that needs a service must run there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def screenshot_folder(fallback: Path) -> Path:
    """Where screenshots go: $VOTING_SCREENSHOTS_DIR when set, else `fallback` (a tmp_path)."""
    target = os.environ.get(SCREENSHOTS_VARIABLE)
    folder = Path(target) if target else fallback
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def serving(app: Flask, port: int = 0) -> Iterator[str]:
    """Serve an app over HTTP on 127.0.0.1 (threaded) for as long as the block runs."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def import_samples() -> None:
    """Import the sample projects, in the current app context."""
    projects.import_projects(
        (SHARED_DATA / "projects-sample.csv").read_bytes(), "projects-sample.csv"
    )


def make_poll_on(app: Flask, slug: str | None = None, *, open_: bool = True, **spec: Any) -> str:
    """Create a poll in app's database (importing the sample projects once); open it unless told.

    It pushes its own short app context: a test must not hold one open while it makes
    requests, or the requests would share its session (and its snapshot).
    """
    with app.app_context():
        if not db.session.execute(text("SELECT count(*) FROM projects")).scalar():
            import_samples()
        slug = slug or "poll-" + secrets.token_hex(3)
        title = spec.pop("title", "Test poll")
        polls.create_poll(polls.PollSpec(slug=slug, title=title, **spec), actor="test")
        if open_:
            polls.open_poll(slug, actor="test")
    return slug


def mint_on(app: Flask, slug: str, count: int = 1) -> list[str]:
    """Mint `count` invite tokens for a poll in app's database; returns the signed strings."""
    with app.app_context():
        return issuing.mint_tokens(slug, count, actor="test").tokens


def in_app(app: Flask, query: Any) -> Any:
    """Run a read in a fresh app context and return its single result."""
    with app.app_context():
        return db.session.execute(query).scalar_one()


def project_slugs(app: Flask, slug: str) -> list[str]:
    """The poll's choices, in ballot order."""
    with app.app_context():
        return [c["project"] for c in polls.poll_document(polls.get_poll(slug))["choices"]]


def wait_for_js(page: Any, expression: str, arg: Any = None, timeout: float = 30_000) -> None:
    """page.wait_for_function for pages whose CSP forbids eval (every page's does).

    Playwright's wait_for_function compiles its predicate inside the page, which script-src
    'self' refuses; page.evaluate runs through the DevTools protocol, which CSP does not
    govern, so the predicate is polled from here until it holds (timeout in ms, as Playwright's).
    """
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} ms waiting for {expression}")
        page.wait_for_timeout(50)


def add_css(page: Any, css: str) -> None:
    """Page.add_style_tag for pages whose CSP forbids inline styles: a constructed sheet (CSSOM)."""
    page.evaluate(
        "css => { const sheet = new CSSStyleSheet(); sheet.replaceSync(css);"
        " document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet]; }",
        css,
    )


def remove_added_css(page: Any) -> None:
    """Take away every sheet add_css added."""
    page.evaluate("() => { document.adoptedStyleSheets = []; }")
