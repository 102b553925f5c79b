"""Numbers typed oddly (a superscript "²" is a digit to str.isdigit, not to int) get a
clear answer, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient

from tests.admin_support import Console
from voting.services import overlay, polls


def test_the_overlay_falls_back_to_its_default_top(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    with app.app_context():
        url = urlsplit(overlay.overlay_url(polls.get_poll(slug)))
    response = client.get(f"{url.path}?{url.query}&top=%C2%B2")
    assert response.status_code == 200
    assert b"Test poll" in response.data


def test_a_stream_ignores_a_last_event_id_it_cannot_read(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(results_mode="live")
    response = client.get(f"/api/polls/{slug}/events", headers={"Last-Event-ID": "²"})
    try:
        assert response.status_code == 200
        assert next(response.response).startswith(b"retry:")  # type: ignore[call-overload]
    finally:
        response.close()


def test_console_numbers_are_refused_with_a_sentence(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    console = Console.login(app, client)
    minted = console.post(f"/admin/polls/{slug}/tokens", {"count": "²", "batch": ""})
    assert minted.status_code == 400
    assert b"whole number" in minted.data
    with app.app_context():
        polls.close_poll(slug, actor="t")
    auto = console.post(f"/admin/polls/{slug}/reveal/auto", {"seconds": "²"})
    assert auto.status_code == 400
    assert b"Choose between 1 and 600 seconds" in auto.data
