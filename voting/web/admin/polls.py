"""Creating and editing polls, the poll page and its live section."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from voting.domain.errors import VotingError
from voting.domain.statuses import Eligibility, Method, PollStatus, ResultsMode
from voting.links import public_url
from voting.models import Poll
from voting.services import exports, overlay, polls, projects
from voting.web.admin.blueprint import actor, bp
from voting.web.admin.forms import NewPollForm, PollForm, poll_values
from voting.web.admin.lifecycle import lifecycle_steps
from voting.web.admin.live import live_context
from voting.web.admin.timezones import all_zones, tz_name

F = TypeVar("F", bound=PollForm)


def _poll_form(form_class: type[F], poll: Poll | None) -> F:
    """The posted fields over the defaults; on a GET, the poll's settings (or the defaults)."""
    tz = tz_name()
    return form_class(data=poll_values(poll if request.method == "GET" else None, tz))


def _render_poll_form(
    poll: Poll | None, form: PollForm, error: str | None = None
) -> ResponseReturnValue:
    return render_template(
        "admin/poll_form.html",
        poll=poll,
        values=form.values(),
        error=error,
        zones=all_zones(),
        methods=list(Method),
        eligibilities=list(Eligibility),
        results_modes=list(ResultsMode),
        categories=current_app.config["CATEGORIES"],
        all_projects=projects.list_projects(),
    ), 400 if error else 200


@bp.route("/polls/new", methods=["GET", "POST"])
def new_poll() -> ResponseReturnValue:
    form = _poll_form(NewPollForm, None)
    if request.method == "GET":
        return _render_poll_form(None, form)
    if not form.validate():
        return _render_poll_form(None, form, form.first_error())
    spec = form.spec(form.new_slug())
    session["tz"] = form.zone_name()  # the zone the organizer works in, for showing times too
    try:
        poll = polls.create_poll(spec, actor=actor())
    except VotingError as exc:
        return _render_poll_form(None, form, exc.message)
    flash(f"Created the draft poll {poll.title!r} with {len(poll.choices)} projects.", "ok")
    return redirect(url_for("admin.poll", slug=poll.slug), code=303)


@bp.route("/polls/<slug>/edit", methods=["GET", "POST"])
def edit_poll(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    status = polls.effective_status(poll)
    if status != PollStatus.DRAFT:
        flash(f"This poll is {status}; only a draft poll can be edited.", "error")
        return redirect(url_for("admin.poll", slug=slug), code=303)
    form = _poll_form(PollForm, poll)
    if request.method == "GET":
        return _render_poll_form(poll, form)
    if not form.validate():
        return _render_poll_form(poll, form, form.first_error())
    spec = form.spec(slug)
    session["tz"] = form.zone_name()
    try:
        polls.update_poll(slug, spec, actor=actor())
    except VotingError as exc:
        return _render_poll_form(polls.get_poll(slug), form, exc.message)
    flash("Saved the poll's settings.", "ok")
    return redirect(url_for("admin.poll", slug=slug), code=303)


def _poll_context(poll: Poll) -> dict[str, Any]:
    live = live_context(poll)
    return {
        **live,
        "steps": lifecycle_steps(poll, live["status"], live["doc"]["turnout"], live["shown"]),
        "batches": exports.token_batches(poll),
        "overlay_url": overlay.overlay_url(poll),
        "ballot_url": public_url("public.ballot", slug=poll.slug),
        "results_url": public_url("public.results_page", slug=poll.slug),
        "claim_url": public_url("claim.claim", slug=poll.slug),
        "join_url": public_url("claim.join", slug=poll.slug),
        "choices": poll.choices,
    }


@bp.get("/polls/<slug>")
def poll(slug: str) -> ResponseReturnValue:
    return render_template("admin/poll.html", **_poll_context(polls.get_poll(slug)))


@bp.get("/polls/<slug>/live")
def live(slug: str) -> ResponseReturnValue:
    """The live section alone, for the page's script to swap in (stream event or timer)."""
    return render_template("admin/_live.html", **live_context(polls.get_poll(slug)))
