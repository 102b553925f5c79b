"""Uploads with a preview first (project and roster imports), and editing one project."""

from __future__ import annotations

import base64
import binascii

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from voting.domain.errors import InvalidRequest, VotingError
from voting.services import polls, projects, roster
from voting.web.admin.blueprint import actor, bp
from voting.web.admin.forms import ProjectForm


def _upload() -> tuple[bytes, str]:
    """The uploaded file, or the bytes a preview page carried back for the real import."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return upload.read(), upload.filename
    encoded = request.form.get("data", "")
    if not encoded:
        raise InvalidRequest("Choose a file to upload.")
    try:
        data = base64.b64decode(encoded.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidRequest("The upload was damaged on the way; choose the file again.") from None
    return data, request.form.get("filename", "")[:200]


def _carry(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


@bp.get("/projects")
def project_list() -> ResponseReturnValue:
    return render_template("admin/projects.html", projects=projects.list_projects(), error=None)


@bp.post("/projects/import")
def import_projects() -> ResponseReturnValue:
    try:
        data, filename = _upload()
        commit = request.form.get("commit") == "1"
        report = projects.import_projects(data, filename, actor=actor(), dry_run=not commit)
    except VotingError as exc:
        return render_template(
            "admin/projects.html", projects=projects.list_projects(), error=exc.message
        ), 400
    if commit:
        flash(
            f"Imported {filename}: {len(report.created)} created, {len(report.updated)} "
            f"updated, {len(report.unchanged)} unchanged, {len(report.rejected)} rejected.",
            "ok",
        )
        return redirect(url_for("admin.project_list"), code=303)
    return render_template(
        "admin/import_preview.html",
        report=report,
        filename=filename,
        data=_carry(data),
        good=len(report.created) + len(report.updated),
    )


@bp.route("/projects/<project>/edit", methods=["GET", "POST"])
def edit_project(project: str) -> ResponseReturnValue:
    item = projects.get_project(project)
    error = None
    form = ProjectForm(data={name: getattr(item, name) or "" for name in projects.EDITABLE})
    if request.method == "POST":
        try:
            changed = projects.update_project(project, form.values(), actor=actor())
        except VotingError as exc:
            error = exc.message
        else:
            what = ", ".join(c.replace("_", " ") for c in changed) or "nothing changed"
            flash(f"Saved {item.slug}: {what}.", "ok")
            return redirect(url_for("admin.project_list"), code=303)
    return render_template(
        "admin/project_form.html",
        project=item,
        values=form.values(),
        error=error,
        categories=current_app.config["CATEGORIES"],
        themes=current_app.config["THEMES"],
    ), 400 if error else 200


@bp.post("/polls/<slug>/roster")
def import_roster(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    data, filename = _upload()
    commit = request.form.get("commit") == "1"
    report = roster.import_roster(slug, data, actor=actor(), dry_run=not commit)
    if commit:
        flash(
            f"Imported the roster {filename}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.rejected)} rejected.",
            "ok",
        )
        return redirect(url_for("admin.poll", slug=slug, _anchor="tokens"), code=303)
    return render_template(
        "admin/roster_preview.html",
        poll=poll,
        report=report,
        filename=filename,
        data=_carry(data),
        good=report.added + report.updated,
    )
