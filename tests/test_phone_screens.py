"""Must show 5: a screenshot of each attendee page at phone size (390x844).

Set VOTING_SCREENSHOTS_DIR=docs/screenshots to refresh the README's pictures; otherwise they
go to the test's temporary folder (the `screenshots` fixture), and the test still checks that
each one was taken at phone size.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from tests.phone_kit import phone_context, rate_limited_page, shoot, tour


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_screenshots_of_every_page(
    app: Flask,
    live_server: str,
    browser: Any,
    make_app: Callable[..., Flask],
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    screenshots: Path,
) -> None:
    taken: list[Path] = []

    def visit(page: Any, name: str) -> None:
        taken.append(shoot(page, name, screenshots))

    with phone_context(browser) as context:
        tour(live_server, app, make_poll, mint, context, visit)
        # Spanish, chosen by the browser's Accept-Language; and dark mode.
    with phone_context(browser, locale="es-ES") as context:
        page = context.new_page()
        page.goto(f"{live_server}/p/numhack")
        assert page.locator("html").get_attribute("lang") == "es"
        taken.append(shoot(page, "ballot-es", screenshots))
    with phone_context(browser, color_scheme="dark") as context:
        page = context.new_page()
        page.goto(f"{live_server}/p/numhack/project/crop-doctor")
        taken.append(shoot(page, "detail-dark", screenshots))
    with phone_context(browser) as context:
        page = rate_limited_page(make_app, context)
        taken.append(shoot(page, "rate-limited", screenshots))

    names = {p.stem for p in taken}
    assert names >= {
        "phone-home",
        "phone-ballot",
        "phone-ballot-filtered",
        "phone-ballot-chosen",
        "phone-detail",
        "phone-confirm",
        "phone-receipt",
        "phone-already-voted",
        "phone-no-token",
        "phone-not-open",
        "phone-closed",
        "phone-invalid-link",
        "phone-rate-limited",
        "phone-ballot-es",
        "phone-detail-dark",
    }
    for path in taken:
        assert png_size(path) == (390, 844), path
