"""Must show 3: each organizer action in the console writes exactly one audit entry, and
editing any stored entry makes `voting audit verify` (and the console's audit page) fail."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from tests.admin_support import (
    PASSWORD,
    Console,
    audit_actions,
    csrf_from,
    make_organizer,
    snapshot,
)
from tests.support import SHARED_DATA
from voting.extensions import db
from voting.models import AuditEvent
from voting.services import issuing, polls


@dataclass
class World:
    app: Flask
    client: FlaskClient
    make_poll: Callable[..., str]
    mint: Callable[..., list[str]]
    console: Console | None = None

    def logged_in(self) -> Console:
        if self.console is None:
            self.console = Console.login(self.app, self.client)
        return self.console

    def closed_poll(self, results: str = "hidden") -> str:
        slug = self.make_poll("cf", results_mode=results)
        [token] = self.mint(slug, 1)
        with self.app.app_context():
            from voting.services.ballots import cast_ballot

            cast_ballot(slug, token, ["flood-watch"])
            polls.close_poll(slug, actor="test")
        return slug


def _poll_form(**extra: str) -> dict[str, str]:
    return {
        "title": "Community Favorite",
        "method": "plurality",
        "eligibility": "invite",
        "results_mode": "hidden",
        "tz": "Europe/Berlin",
        "scope": "all",
        **extra,
    }


Act = Callable[[], TestResponse]


def _login_success(w: World) -> Act:
    make_organizer(w.app)
    token = csrf_from(w.client.get("/admin/login").get_data(as_text=True))
    form = {"csrf_token": token, "username": "ana", "password": PASSWORD}
    return lambda: w.client.post("/admin/login", data=form)


def _login_failure(w: World) -> Act:
    make_organizer(w.app)
    token = csrf_from(w.client.get("/admin/login").get_data(as_text=True))
    form = {"csrf_token": token, "username": "ana", "password": "wrong password"}
    return lambda: w.client.post("/admin/login", data=form)


def _logout(w: World) -> Act:
    console = w.logged_in()
    return lambda: console.post("/admin/logout")


def _create(w: World) -> Act:
    w.make_poll("other", open_=False)  # imports the projects
    console = w.logged_in()
    return lambda: console.post("/admin/polls/new", _poll_form(slug="cf"))


def _edit(w: World) -> Act:
    slug = w.make_poll("cf", open_=False)
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/edit", _poll_form(title="Renamed"))


def _open(w: World) -> Act:
    slug = w.make_poll("cf", open_=False)
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/open")


def _close(w: World) -> Act:
    slug = w.make_poll("cf")
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/close")


def _reveal(kind: str) -> Callable[[World], Act]:
    def setup(w: World) -> Act:
        slug = w.closed_poll()
        console = w.logged_in()
        data = {"seconds": "5"} if kind == "auto" else {}
        return lambda: console.post(f"/admin/polls/{slug}/reveal/{kind}", data)

    return setup


def _mint(w: World) -> Act:
    slug = w.make_poll("cf")
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/tokens", {"count": "4", "batch": "hall-a"})


def _batch_file(kind: str) -> Callable[[World], Act]:
    def setup(w: World) -> Act:
        slug = w.make_poll("cf")
        with w.app.app_context():
            issuing.mint_tokens(slug, 3, actor="test", batch="hall-a")
        console = w.logged_in()
        return lambda: console.post(f"/admin/polls/{slug}/batches/hall-a/{kind}")

    return setup


def _revoke_tokens(w: World) -> Act:
    slug = w.make_poll("cf")
    tokens = w.mint(slug, 2)
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/tokens/revoke", {"tokens": "\n".join(tokens)})


def _revoke_batch(w: World) -> Act:
    slug = w.make_poll("cf")
    with w.app.app_context():
        issuing.mint_tokens(slug, 3, actor="test", batch="hall-a")
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/batches/hall-a/revoke")


def _reissue(w: World) -> Act:
    slug = w.make_poll("cf")
    [token] = w.mint(slug, 1)
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/tokens/reissue", {"lost": token})


def _import_projects(w: World) -> Act:
    data = (SHARED_DATA / "projects-sample.csv").read_bytes()
    console = w.logged_in()
    return lambda: console.post(
        "/admin/projects/import",
        {"file": (io.BytesIO(data), "projects-sample.csv"), "commit": "1"},
        content_type="multipart/form-data",
    )


def _edit_project(w: World) -> Act:
    w.make_poll("cf", open_=False)
    console = w.logged_in()
    form = {"title": "FloodWatch 2", "team": "River Rats", "category": "Build"}
    return lambda: console.post("/admin/projects/flood-watch/edit", form)


def _withdraw(w: World) -> Act:
    slug = w.make_poll("cf")
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/projects/flood-watch/withdraw")


def _roster(w: World) -> Act:
    slug = w.make_poll("cf", open_=False, eligibility="roster")
    console = w.logged_in()
    return lambda: console.post(
        f"/admin/polls/{slug}/roster",
        {"file": (io.BytesIO(b"code\nAAA-111\nBBB-222\n"), "roster.csv"), "commit": "1"},
        content_type="multipart/form-data",
    )


def _export_json(w: World) -> Act:
    slug = w.closed_poll()
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/export.json")


def _export_csv(w: World) -> Act:
    slug = w.closed_poll()
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/results.csv")


def _rotate(w: World) -> Act:
    slug = w.make_poll("cf")
    console = w.logged_in()
    return lambda: console.post(f"/admin/polls/{slug}/overlay/rotate")


ACTIONS: dict[str, tuple[str, Callable[[World], Act]]] = {
    "login success": ("login.success", _login_success),
    "login failure": ("login.failure", _login_failure),
    "logout": ("logout", _logout),
    "create poll": ("poll.create", _create),
    "edit draft poll": ("poll.edit", _edit),
    "open": ("poll.open", _open),
    "close": ("poll.close", _close),
    "reveal one step": ("poll.reveal", _reveal("step")),
    "reveal auto-play": ("poll.reveal", _reveal("auto")),
    "reveal all": ("poll.reveal", _reveal("all")),
    "mint tokens": ("tokens.mint", _mint),
    "download a batch CSV": ("tokens.export", _batch_file("csv")),
    "open a batch QR sheet": ("tokens.export", _batch_file("sheet")),
    "revoke tokens": ("tokens.revoke", _revoke_tokens),
    "revoke a batch": ("tokens.revoke", _revoke_batch),
    "reissue a lost card": ("tokens.reissue", _reissue),
    "import projects": ("projects.import", _import_projects),
    "edit a project": ("project.edit", _edit_project),
    "withdraw a project": ("poll.withdraw", _withdraw),
    "import a roster": ("roster.import", _roster),
    "full JSON export": ("poll.export", _export_json),
    "results CSV export": ("results.export", _export_csv),
    "rotate the overlay key": ("overlay.rotate", _rotate),
}


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_console_action_writes_exactly_one_audit_entry(
    app: Flask,
    client: FlaskClient,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    name: str,
) -> None:
    expected, setup = ACTIONS[name]
    act = setup(World(app, client, make_poll, mint))
    before = audit_actions(app)
    response = act()
    ok = {401} if name == "login failure" else {200, 303}
    assert response.status_code in ok, response.get_data(as_text=True)[:500]
    after = audit_actions(app)
    assert after[: len(before)] == before
    assert after[len(before) :] == [expected]
    with app.app_context():
        entry = db.session.execute(
            select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
        ).scalar_one()
        assert entry.actor == "ana"


@pytest.mark.parametrize("kind", ["projects", "roster"])
def test_a_preview_writes_no_audit_entry_and_nothing_else(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], kind: str
) -> None:
    slug = make_poll("cf", open_=False, eligibility="roster")
    console = Console.login(app, client)
    before = snapshot(app)
    if kind == "projects":
        data = (SHARED_DATA / "devpost-export-sample.csv").read_bytes()
        response = console.post(
            "/admin/projects/import",
            {"file": (io.BytesIO(data), "devpost.csv")},
            content_type="multipart/form-data",
        )
    else:
        response = console.post(
            f"/admin/polls/{slug}/roster",
            {"file": (io.BytesIO(b"code\nAAA-111\n"), "roster.csv")},
            content_type="multipart/form-data",
        )
    assert response.status_code == 200
    assert "Nothing has been written yet" in response.get_data(as_text=True)
    assert snapshot(app) == before


TAMPER: dict[str, Callable[[Any], Any]] = {
    "at": lambda v: v + timedelta(seconds=1),
    "actor": lambda v: v + "x",
    "action": lambda v: "poll.open" if v != "poll.open" else "poll.close",
    "poll_slug": lambda v: (v or "") + "-x",
    "detail": lambda v: '{"x":1}' if v == "{}" else v[:-1] + ',"x":1}',
    "prev_hash": lambda v: "f" * 64,
    "hash": lambda v: "e" * 64,
}


def test_editing_any_stored_entry_makes_audit_verify_fail(
    app: Flask,
    client: FlaskClient,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    world = World(app, client, make_poll, mint)
    slug = world.closed_poll()
    console = world.logged_in()
    assert console.post(f"/admin/polls/{slug}/reveal/step").status_code == 303
    assert console.post(f"/admin/polls/{slug}/results.csv").status_code == 200
    assert console.post("/admin/logout").status_code == 303
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["audit", "verify"])
    assert clean.exit_code == 0, clean.output
    with app.app_context():
        ids = list(db.session.execute(select(AuditEvent.id).order_by(AuditEvent.id)).scalars())
    assert len(ids) >= 9  # creates, imports, open, mint, close, login, reveal, export, logout

    for entry_id in ids:
        for column, tamper in TAMPER.items():
            with app.app_context():
                original = db.session.execute(
                    select(getattr(AuditEvent, column)).where(AuditEvent.id == entry_id)
                ).scalar_one()
                db.session.execute(
                    update(AuditEvent)
                    .where(AuditEvent.id == entry_id)
                    .values({column: tamper(original)})
                )
                db.session.commit()
            broken = runner.invoke(args=["audit", "verify"])
            assert broken.exit_code == 1, (entry_id, column, broken.output)
            assert "FAIL" in broken.output
            if (entry_id, column) == (ids[len(ids) // 2], "detail"):
                relogged = Console.login(app, app.test_client(), create=False)
                page = relogged.page("/admin/audit")
                assert "The chain does not hold" in page
            with app.app_context():
                db.session.execute(
                    update(AuditEvent).where(AuditEvent.id == entry_id).values({column: original})
                )
                db.session.commit()
    restored = runner.invoke(args=["audit", "verify"])
    assert restored.exit_code == 0, restored.output
