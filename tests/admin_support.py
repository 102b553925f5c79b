"""Helpers for the organizer-console tests: a logged-in test client and database snapshots."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from tests.support import csrf_from
from voting.extensions import db
from voting.models import AuditEvent
from voting.services import organizers

PASSWORD = "a long enough password"


def make_organizer(app: Flask, username: str = "ana", password: str = PASSWORD) -> None:
    with app.app_context():
        organizers.create_organizer(username, password, actor="test")


def audit_actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, so a test can tell that nothing at all changed."""
    with app.app_context():
        tables = {}
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(text(f"SELECT * FROM {table.name}")).all()
            tables[table.name] = sorted((tuple(r) for r in rows), key=repr)
        db.session.rollback()
        return tables


@dataclass
class Console:
    """A test client logged in as an organizer, posting forms with its CSRF token."""

    app: Flask
    client: FlaskClient
    token: str = ""
    username: str = "ana"
    pages: list[str] = field(default_factory=list)

    @classmethod
    def login(
        cls, app: Flask, client: FlaskClient, username: str = "ana", *, create: bool = True
    ) -> Console:
        if create:
            make_organizer(app, username)
        page = client.get("/admin/login").get_data(as_text=True)
        response = client.post(
            "/admin/login",
            data={"csrf_token": csrf_from(page), "username": username, "password": PASSWORD},
        )
        assert response.status_code == 303, response.get_data(as_text=True)
        console = cls(app=app, client=client, username=username)
        console.token = csrf_from(client.get("/admin/").get_data(as_text=True))
        return console

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def page(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


def visible_text(html: str) -> str:
    """The page's text without tags, whitespace folded (for assertions on wording)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()
