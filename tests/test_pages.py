"""Attendee pages without JavaScript: voter link, ballot form, confirm, receipt."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.support import csrf_from, in_app
from voting.models import Ballot, Project


def test_voter_link_gets_never_spend_and_the_form_flow_votes(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    for _ in range(10):  # link previews and scanners
        response = client.get(f"/v/{token}")
        assert response.status_code == 303
        assert response.headers["Location"] == f"/p/{slug}"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and f"Path=/p/{slug}" in cookie
    assert in_app(app, select(func.count(Ballot.id))) == 0

    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert 'type="radio" name="choice" value="flood-watch"' in page
    confirm = client.post(
        f"/p/{slug}/confirm", data={"csrf_token": csrf_from(page), "choice": "flood-watch"}
    )
    assert confirm.status_code == 200
    confirm_html = confirm.get_data(as_text=True)
    assert "Confirm your vote" in confirm_html and "FloodWatch" in confirm_html
    cast = client.post(
        f"/p/{slug}/cast", data={"csrf_token": csrf_from(confirm_html), "choice": "flood-watch"}
    )
    assert cast.status_code == 303 and cast.headers["Location"] == f"/p/{slug}/receipt"
    receipt = client.get(f"/p/{slug}/receipt")
    assert receipt.status_code == 200
    code = in_app(app, select(Ballot.receipt))
    assert code in receipt.get_data(as_text=True)
    again = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "You have already voted" in again and code in again


def test_forms_without_csrf_change_nothing(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    client.get(f"/v/{token}")
    response = client.post(f"/p/{slug}/cast", data={"choice": "flood-watch"})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    assert in_app(app, select(func.count(Ballot.id))) == 0


def test_invalid_link_and_missing_token_pages(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    response = client.get("/v/not-a-real-token")
    assert response.status_code == 403
    assert "This voting link does not work" in response.get_data(as_text=True)
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "You need your voting link to vote" in page
    assert 'name="choice"' not in page


def test_home_lists_open_polls(client: FlaskClient, make_poll: Callable[..., str]) -> None:
    slug = make_poll(title="Open Poll Title")
    page = client.get("/").get_data(as_text=True)
    assert "Open Poll Title" in page and f"/p/{slug}" in page


def test_overlay_needs_its_key(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    from voting.services import overlay, polls

    slug = make_poll()
    with app.app_context():
        poll = polls.get_poll(slug)
        url = overlay.overlay_url(poll)
    key = url.split("key=")[1]
    assert client.get(f"/overlay/{slug}?key={key}").status_code == 200
    assert client.get(f"/overlay/{slug}?key=forged").status_code == 403
    assert client.get(f"/overlay/{slug}").status_code == 403
    with app.app_context():
        overlay.rotate_overlay_key(polls.get_poll(slug), actor="t")
    assert client.get(f"/overlay/{slug}?key={key}").status_code == 403


def test_admin_login_audits_and_refuses_bad_passwords(
    app: Flask, client: FlaskClient, runner
) -> None:  # type: ignore[no-untyped-def]
    runner.invoke(
        args=["admin", "create", "ana", "--password-stdin"], input="a long enough password\n"
    )
    page = client.get("/admin/login").get_data(as_text=True)
    bad = client.post(
        "/admin/login", data={"csrf_token": csrf_from(page), "username": "ana", "password": "wrong"}
    )
    assert bad.status_code == 401
    unknown = client.post(
        "/admin/login", data={"csrf_token": csrf_from(page), "username": "bob", "password": "x"}
    )
    assert unknown.status_code == 401
    assert client.get("/admin/").status_code == 302
    good = client.post(
        "/admin/login",
        data={
            "csrf_token": csrf_from(page),
            "username": "ana",
            "password": "a long enough password",
        },
    )
    assert good.status_code == 303
    assert client.get("/admin/").status_code == 200
    from voting.models import AuditEvent

    with app.app_context():
        from voting.extensions import db

        actions = (
            db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars().all()
        )
    assert actions == ["organizer.create", "login.failure", "login.failure", "login.success"]
    assert in_app(app, select(func.count(Project.id))) == 0
